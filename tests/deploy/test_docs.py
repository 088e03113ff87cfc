"""The docs say what the code does: the generated tables are the code's, and every link, path, module,
configuration key, metric and alert the README and docs/ name exists."""

from __future__ import annotations

import dataclasses
import importlib
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.schema import Config
from exporter.docs import diff, updates
from exporter.metrics.collector import metric_table

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
CHART_README = ROOT / "deploy/helm/emr-serverless-exporter/README.md"
PAGES = [ROOT / "README.md", *DOCS, CHART_README]
# docs/performance.md records measurements as they were taken, under the names of their day.
CURRENT = [page for page in PAGES if page.name != "performance.md"]
RULES_FILE = ROOT / "deploy/prometheus/emr-serverless-exporter.rules.yaml"

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def test_generated_tables_equal_the_code() -> None:
    stale = [diff(page, old, new) for page, (old, new) in updates(ROOT).items() if old != new]
    assert not stale, "tables out of date: run `.venv/bin/python -m exporter.docs`\n" + "".join(stale)


# --- links ------------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", prose(page.read_text()), re.M):
        anchor, count = slug(heading), 1
        while anchor in found:  # a repeated heading gets -1, -2, ...
            anchor, count = f"{slug(heading)}-{count}", count + 1
        found.add(anchor)
    return found


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_text, _, anchor = target.partition("#")
        path = (page.parent / path_text).resolve() if path_text else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{name(page)}: " + "; ".join(broken)


def test_the_slug_is_githubs() -> None:
    assert slug("TLS and basic auth: `--web.config.file`") == "tls-and-basic-auth---webconfigfile"
    assert slug("AWS credentials: IRSA or EKS Pod Identity") == "aws-credentials-irsa-or-eks-pod-identity"


# --- names of things in the repository ------------------------------------------------------------------

REPO_PATH = re.compile(
    r"(?<![\w/.-])(?:exporter|emr_serverless_simulator|tests|deploy|docs|benchmarks|\.github|\.ci)/[\w./-]*"
)
MODULE_NAME = re.compile(r"(?<![\w/.-])exporter(?:\.[A-Za-z_]\w*)+")


@pytest.mark.parametrize("page", CURRENT, ids=name)
def test_every_repository_path_named_exists(page: Path) -> None:
    named = {match.rstrip(".,") for match in REPO_PATH.findall(page.read_text())}
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"{name(page)} names paths that do not exist: {missing}"


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


@pytest.mark.parametrize("page", CURRENT, ids=name)
def test_every_module_and_attribute_named_exists(page: Path) -> None:
    named = {match.rstrip(".") for match in MODULE_NAME.findall(page.read_text())}
    missing = sorted(dotted for dotted in named if not resolves(dotted))
    assert not missing, f"{name(page)} names modules or attributes that do not exist: {missing}"


def config_keys(cls: type[Any] = Config, prefix: str = "") -> Iterator[str]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        is_list = typing.get_origin(hint) is tuple
        inner = typing.get_args(hint)[0] if is_list else hint
        key = f"{prefix}{field.name}"
        yield key
        if dataclasses.is_dataclass(inner):
            yield from config_keys(typing.cast(type[Any], inner), f"{key}[]." if is_list else f"{key}.")


CONFIG_KEY = re.compile(r"(?:targets|discovery|metrics|aws|collection)(?:\[\d*\])?(?:\.[\w<>]+(?:\[\d*\])?)+")


def is_config_key(written: str, keys: set[str]) -> bool:
    pattern = re.escape(re.sub(r"\[\d*\]", "[]", written))
    pattern = re.sub(r"<[\w]+>", r"[^.]+", pattern.replace(r"\<", "<").replace(r"\>", ">"))
    return any(re.fullmatch(pattern, key) for key in keys)


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=name)
def test_every_configuration_key_named_exists(page: Path) -> None:
    keys = set(config_keys())
    written = {match.group(0) for span in CODE_SPAN.findall(prose(page.read_text()))
               if (match := CONFIG_KEY.match(span.split(":")[0].split(" ")[0]))
               and match.group(0) == span.split(":")[0].split(" ")[0]}
    missing = sorted(key for key in written if not is_config_key(key, keys))
    assert not missing, f"{name(page)} names configuration keys that do not exist: {missing}"


def test_the_key_check_reads_placeholders_and_indexes() -> None:
    keys = set(config_keys())
    assert is_config_key("targets[0].region", keys)
    assert is_config_key("aws.rate_limits.<operation>.requests_per_second", keys)
    assert not is_config_key("aws.rate_limit", keys)
    assert not is_config_key("discovery.session_max_age_seconds", keys)


METRIC_NAME = re.compile(r"(?<![\w:])emr_serverless_[a-z0-9_]*(?![\w:])(\*?)")


@pytest.mark.parametrize("page", CURRENT, ids=name)
def test_every_metric_named_exists(page: Path) -> None:
    metrics = {row[0] for row in metric_table()}
    unknown = set()
    for match in METRIC_NAME.finditer(page.read_text()):
        written = match.group(0).rstrip("*")
        if written == "emr_serverless_simulator":  # the package
            continue
        is_prefix = match.group(1) == "*" or written.endswith("_")
        if not (any(metric.startswith(written) for metric in metrics) if is_prefix else written in metrics):
            unknown.add(match.group(0))
    assert not unknown, f"{name(page)} names metrics the exporter does not have: {sorted(unknown)}"


# --- the alert table --------------------------------------------------------------------------------------


def test_the_alert_table_lists_every_alert_with_its_severity() -> None:
    rules = yaml.safe_load(RULES_FILE.read_text())
    alerts = {rule["alert"]: rule["labels"]["severity"]
              for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    page = (ROOT / "docs/alerts-and-dashboard.md").read_text()
    table = page[page.index("## Alerts") : page.index("## Recording rules")]
    documented = dict(re.findall(r"^\| `(\w+)` \| (\w+) \|", table, re.M))
    assert documented == alerts, (
        f"docs/alerts-and-dashboard.md's alert table differs from {name(RULES_FILE)}: "
        f"missing {sorted(alerts.keys() - documented.keys())}, extra {sorted(documented.keys() - alerts.keys())}, "
        f"severity {sorted(a for a in alerts.keys() & documented.keys() if alerts[a] != documented[a])}"
    )
