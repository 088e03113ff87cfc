"""The container image, checked statically (there is no Docker engine in CI): a multi-stage build that
installs the project with pip, runs its console script as a fixed non-root UID, needs no writable
root filesystem, and reads its configuration where the Helm chart mounts it."""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART_DIR = ROOT / "deploy/helm/emr-serverless-exporter"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, flags=re.IGNORECASE)
            assert match, f"cannot parse FROM {args}"
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), match.group(1))
            stages.append(Stage(base=base, name=match.group(2)))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = args.partition("=")
            global_args[name] = default.strip('"')
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), args
    return value


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return values


def test_multi_stage_on_python_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.base == "python:3.12-slim" for stage in stages)
    assert stages[0].name, "the builder stage is named"


def test_builder_installs_the_project_with_pip(stages: list[Stage]) -> None:
    runs = " && ".join(run for stage in stages[:-1] for run in stage.all("RUN"))
    assert re.search(r"\bpip install (?:[^&;]* )?\.(\s|$)", runs), "no `pip install .` of the project"
    copied = " ".join(stages[0].all("COPY"))
    for needed in ("pyproject.toml", "README.md", "exporter"):
        assert needed in copied, f"{needed} is not copied into the builder"


def test_final_stage_copies_the_venv_from_the_builder(stages: list[Stage], final: Stage) -> None:
    builder = stages[0].name
    copies = [args for args in final.all("COPY") if args.startswith(f"--from={builder} ")]
    assert copies, "the final stage copies nothing from the builder"
    assert not any("pip install" in run for run in final.all("RUN")), "the final stage installs packages"
    venv = copies[0].split()[1]
    assert any(f"{venv}/bin" in env for env in final.all("ENV")), "the venv is not on PATH"


def test_runs_as_a_fixed_numeric_non_root_user(final: Stage) -> None:
    user = final.last("USER")
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    assert match, f"USER {user} is not numeric (Kubernetes runAsNonRoot needs a numeric UID)"
    assert int(match.group(1)) == 65532
    assert match.group(2) is None or int(match.group(2)) != 0


def test_user_matches_the_chart(final: Stage) -> None:
    uid = int(final.last("USER").split(":")[0])
    values = chart_values()
    assert values["podSecurityContext"]["runAsUser"] == uid
    assert values["securityContext"]["runAsUser"] == uid


def test_exposes_the_default_port(final: Stage) -> None:
    assert final.last("EXPOSE").split() == ["9865"]


def test_entrypoint_is_the_console_script(final: Stage, pyproject: dict[str, Any]) -> None:
    scripts = pyproject["project"]["scripts"]
    assert exec_form(final.last("ENTRYPOINT")) == ["emr-serverless-exporter"]
    assert "emr-serverless-exporter" in scripts


def test_cmd_reads_the_config_where_the_chart_mounts_it(final: Stage) -> None:
    cmd = exec_form(final.last("CMD"))
    assert cmd == ["--config.file=/etc/emr-serverless-exporter/config.yaml"]
    config_path = cmd[0].split("=", 1)[1]
    deployment = (CHART_DIR / "templates/deployment.yaml").read_text()
    helpers = (CHART_DIR / "templates/_helpers.tpl").read_text()
    config_dir = re.search(r'define "emr-serverless-exporter.configDir" -}}\s*(\S+)', helpers)
    assert config_dir and f"{config_dir.group(1)}/config.yaml" == config_path
    assert "--config.file={{ $configDir }}/config.yaml" in deployment
    assert "mountPath: {{ $configDir }}" in deployment
    # The image carries a default file there, so it also starts without the chart.
    assert any(args.split()[-1] == config_path for args in final.all("COPY"))


def test_needs_no_writable_root_filesystem(final: Stage) -> None:
    env = " ".join(final.all("ENV"))
    assert re.search(r"\bPYTHONDONTWRITEBYTECODE=1\b", env)
    assert not final.all("VOLUME"), "a VOLUME would hide writes the read-only root filesystem forbids"


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest(stages: list[Stage]) -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for stage in stages
        for args in stage.all("COPY")
        if not args.startswith("--from=")
        for source in args.split()[:-1]
        if not source.startswith("--")
    ]
    assert sources
    for source in sources:
        assert not dockerignored(source, patterns), f"{source} is COPY'd but .dockerignore excludes it"
        assert (ROOT / source).exists(), f"{source} does not exist"
    for junk in (".venv", ".git", "tests", "exporter/__pycache__/x.pyc"):
        assert dockerignored(junk, patterns), f"{junk} would be sent to the Docker daemon"
