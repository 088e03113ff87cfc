"""A configuration cannot crash the exporter: whatever the file holds, it starts or exits 2 with one line.

Generated YAML documents (hypothesis) go through ``load_config``, the CLI's path, then through
``build_runner`` when valid; a handful of representative files go through the real process.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import subprocess
import sys
import time
import typing
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emr_serverless_simulator import Simulator, Store
from exporter.config.schema import (
    Config,
    ConfigError,
    RateLimitsConfig,
    TargetConfig,
    _key_text,
    _SafeLoader,
    load_config,
    parse_config,
)
from exporter.model.kinds import APPLICATION_STATES
from exporter.wiring import build_exposition, build_runner
from tests.helpers.support import aws_env, free_port


def _section_class(section: dataclasses.Field[Any]) -> type[Any]:
    hint = typing.get_type_hints(Config)[section.name]
    return typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint  # type: ignore[no-any-return]


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                            HealthCheck.too_slow]
)

# Every key of the configuration, from its dataclasses: a key added later is generated too.
SECTIONS: dict[str, list[str]] = {
    section.name: [f.name for f in dataclasses.fields(_section_class(section))]
    for section in dataclasses.fields(Config)
}
ALL_KEYS = [*SECTIONS, *(key for keys in SECTIONS.values() for key in keys)]

# Values that once crashed or hung the exporter, and values near the edges of the valid ones.
INTERESTING = [
    "eu west 1", "us-east-1", "us-gov-west-1", "not a url", "http://[::1", "http://h:99999", "http://h:0",
    "http://user:pass@127.0.0.1:1", "https://", "a{99999999999}", "(", "analytics-.*",
    "arn:aws:iam::210987654321:role/r",
    "STARTED", "RUNNING", "ext-42", "", " ", "\x00", "\u202e", "東京", "a" * 1001, ".inf", "~",
    0, -1, 1, 256, 257, 20, 21, 300, 300.0001, 2592000, 2592001, 1e12, 10**30, 10**400, -(10**30),
    math.nan, math.inf, -math.inf, 5e-324, True, False, None,
]

keys = st.one_of(st.sampled_from(ALL_KEYS), st.text(max_size=12), st.integers(), st.booleans(), st.none())
scalars = st.one_of(
    *[st.sampled_from(INTERESTING)] * 3,
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


# A field's value: a plausible one, or one scalar or a list of them, or any structure.
odd_values = st.one_of(scalars, scalars, st.lists(scalars, max_size=4), values)
ARNS = ["arn:aws:iam::210987654321:role/r", "arn:aws-us-gov:iam::123456789012:role/path/r"]


def _seconds(high: float, *, above_zero: bool = False) -> st.SearchStrategy[float | int]:
    return st.one_of(st.floats(0, high, exclude_min=above_zero), st.integers(1 if above_zero else 0, int(high)))


PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "region": st.sampled_from([None, "us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1"]),
    "endpoint_url": st.sampled_from([None, "http://127.0.0.1:1", "https://vpce.example:443/p", "http://u:p@[::1]:8"]),
    "role_arn": st.sampled_from([None, *ARNS]),
    "external_id": st.sampled_from([None, "ext-42", "a=b,c.d@e:f/g-h"]),
    "name": st.one_of(st.none(), st.text(min_size=1, max_size=10)),
    "application_ids": st.lists(st.from_regex(r"[0-9a-z]{1,20}", fullmatch=True), max_size=3),
    "application_name_regex": st.sampled_from([None, ".*", "analytics-.*", "(a|b)+"]),
    "application_states": st.lists(st.sampled_from(APPLICATION_STATES), max_size=3),
    "terminated_session_max_age_seconds": _seconds(30 * 86400),
    "tag_labels": st.lists(st.text(min_size=1, max_size=10), max_size=3),
    "tags_info_metric": st.booleans(),
    "max_concurrency": st.integers(1, 256),
    "max_attempts": st.integers(1, 20),
    "connect_timeout_seconds": _seconds(60, above_zero=True),
    "read_timeout_seconds": _seconds(300, above_zero=True),
    "timeout_seconds": _seconds(300, above_zero=True),
    "min_interval_seconds": _seconds(3600),
    # Rates and bursts that keep the two collections of an example quick (no wait for a token is long).
    "rate_limits": st.dictionaries(
        st.sampled_from([f.name for f in dataclasses.fields(RateLimitsConfig)]),
        st.one_of(st.none(), st.fixed_dictionaries({}, optional={
            "requests_per_second": st.sampled_from([0, 5, 50, 10_000]), "burst": st.sampled_from([2, 10, 10_000])})),
        max_size=3),
}


@st.composite
def config_shaped(draw: Callable[[Any], Any]) -> Any:
    """Mostly the real shape with odd values, now and then a junk key; sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(values)

    def junk(mapping: dict[Any, Any]) -> dict[Any, Any]:
        if draw(st.integers(0, 7)) == 0:
            mapping[draw(keys)] = draw(values)
        return mapping

    def section_map(section: str) -> dict[Any, Any]:
        names = draw(st.lists(st.sampled_from(SECTIONS[section]), unique=True))
        return junk({name: draw(st.one_of(*[PLAUSIBLE.get(name, odd_values)] * 2, odd_values)) for name in names})

    document: dict[Any, Any] = {}
    for section in draw(st.lists(st.sampled_from(list(SECTIONS)), unique=True)):
        if section == "targets":
            document[section] = [section_map(section) for _ in range(draw(st.sampled_from([1, 1, 2, 3, 0])))]
        else:
            document[section] = section_map(section)
    return junk(document)


def dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True)


def check_outcome(path: Path, document: Any, simulator: Simulator) -> None:
    try:
        config = load_config(path)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and "\r" not in message, message
        assert message.startswith(f"{path}: "), message
        rest = message.removeprefix(f"{path}: ")
        # ConfigError folds whitespace runs into one space, so the key it names is folded too.
        top_keys = [" ".join(_key_text(key).split()) for key in document] if isinstance(document, dict) else []
        named = rest.startswith(("invalid YAML", "cannot read", "configuration: ", *top_keys))
        assert named and ": " in rest, message
        event(f"error: {rest.split(':')[0][:20]}")
        return
    assert isinstance(config, Config)
    event("valid")
    session = _session()
    # What loads must also run. The targets as configured: clients, credentials, pools.
    try:
        build_runner(config, session=session).close()
    except ConfigError as err:  # targets that only collide once the default region is known
        assert "\n" not in str(err) and str(err).startswith("targets")
        return
    # Everything else as configured (timeouts, ages, concurrency, filters, labels) against the simulator:
    # collected twice (min_interval) and rendered.
    local = replace(config, targets=(TargetConfig(region="us-east-1", endpoint_url=simulator.url, name="sim"),))
    runner = build_runner(local, session=session)
    try:
        runner.collect()
        runner.collect(timeout=5)
        parts, _ = build_exposition(runner, local).render_parts()
        assert b"emr_serverless_up{" in b"".join(parts)
    finally:
        runner.close()


@functools.cache
def _session() -> boto3.Session:
    return boto3.Session()  # one for every example: its clients share botocore's loaded service models


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    store = Store(account_id="123456789012")
    app = store.add_application(name="analytics-1")
    store.add_session(app, state="IDLE", tags={"team": "data", "aws:cloudformation:stack-name": "s"})
    now = time.time()
    store.add_session(app, state="TERMINATED", created_at=now - 7200, started_at=now - 7100, ended_at=now - 600)
    with Simulator(store, port=0) as sim:
        yield sim


@PROPERTY_SETTINGS
@given(document=config_shaped())
def test_generated_documents_load_or_fail_with_one_line_naming_the_key(
    tmp_path: Path, simulator: Simulator, document: Any
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(dump(document), encoding="utf-8")
    check_outcome(path, document, simulator)


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(document=config_shaped(), cut=st.integers(0, 400), junk=st.text(max_size=8))
def test_damaged_yaml_fails_with_one_line(
    tmp_path: Path, simulator: Simulator, document: Any, cut: int, junk: str
) -> None:
    text = dump(document)
    text = text[:cut] + junk + text[cut:]  # anything, also broken YAML, anchors, tabs, tags
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        damaged = yaml.load(text, Loader=_SafeLoader)  # the loader the exporter uses
    except Exception:  # the loader under test must say what the library only raises
        damaged = None
    check_outcome(path, damaged, simulator)


# Where a section or a list may be left empty: each top-level key, and the sections and lists inside them.
EMPTIABLE = [(section,) for section in SECTIONS] + [
    ("aws", "rate_limits"), ("metrics", "prices"), ("metrics", "prices", "table"), ("metrics", "tag_labels"),
    ("discovery", "application_ids"), ("discovery", "application_states"),
]


@PROPERTY_SETTINGS
@given(document=config_shaped(), emptied=st.sets(st.sampled_from(EMPTIABLE)))
def test_a_section_or_list_left_empty_is_the_same_as_one_left_out(
    document: Any, emptied: set[tuple[str, ...]]
) -> None:
    """``discovery:`` with every key commented out is YAML null: it must mean what leaving it out means."""

    def rewrite(data: Any, path: tuple[str, ...], keep_key: bool) -> Any:
        if not isinstance(data, dict):
            return data
        rewritten = {}
        for key, value in data.items():
            here = (*path, key)
            if here not in emptied:
                rewritten[key] = rewrite(value, here, keep_key)
            elif keep_key:
                rewritten[key] = None
        return rewritten

    def outcome(data: Any) -> Config | str:
        try:
            return parse_config(dump(data))
        except ConfigError as err:
            return str(err)

    assert outcome(rewrite(document, (), keep_key=True)) == outcome(rewrite(document, (), keep_key=False))


# --- the real process -------------------------------------------------------------------------------

def _dead_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: connections are refused at once


VALID_FAST = {"aws": {"max_attempts": 1, "connect_timeout_seconds": 1, "read_timeout_seconds": 1}}

PROCESS_CASES: list[tuple[str, Any, str | None]] = [
    # (id, configuration: a YAML text or a path, expected text of the one line; None: valid). A few cases
    # of issue 8 that crashed or hung the process; test_config.py has them all, in-process.
    ("region", "targets: [{region: eu west 1}]", "targets[0].region: 'eu west 1' is not an AWS region name"),
    ("regex", "discovery: {application_name_regex: 'a{99999999999}'}", "application_name_regex: invalid regular"),
    ("inf", "collection: {timeout_seconds: .inf}", "collection.timeout_seconds: must be a finite number"),
    ("bomb", "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(10)),
     "invalid YAML: more than 100000 values"),
    ("zero", Path("/dev/zero"), "cannot read: not a regular file"),
    ("fifo", "fifo", "cannot read: not a regular file"),
    ("valid", "valid", None),
]


def _run(case: tuple[str, Any, str | None], tmp_path: Path) -> tuple[str, subprocess.CompletedProcess[str]]:
    name, config, _ = case
    if isinstance(config, Path):
        path = config
    elif config == "fifo":
        path = tmp_path / "fifo.yaml"
        os.mkfifo(path)
    else:
        path = tmp_path / f"{name}.yaml"
        if config == "valid":
            config = yaml.safe_dump({"targets": [{"endpoint_url": _dead_endpoint(), "name": "dead"}], **VALID_FAST})
        path.write_text(config)
    result = subprocess.run([sys.executable, "-m", "exporter", "--config.file", str(path), "--once"],
                            capture_output=True, text=True, env=aws_env(), timeout=60, check=False)
    return str(path), result


def test_the_process_exits_2_with_one_line_or_runs(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:  # each process mostly waits for imports
        outcomes = list(pool.map(lambda case: _run(case, tmp_path), PROCESS_CASES))
    for (name, _, expected), (path, result) in zip(PROCESS_CASES, outcomes, strict=True):
        assert "Traceback" not in result.stderr, (name, result.stderr)
        if expected is None:
            assert result.returncode == 1, (name, result.stderr)  # ran, and the target is down
            assert 'emr_serverless_up{' in result.stdout
            continue
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and len(lines) == 1, (name, result.returncode, result.stderr)
        assert lines[0].startswith(f"emr-serverless-exporter: {path}: "), (name, lines[0])
        assert expected in lines[0], (name, lines[0])


def test_an_invalid_default_region_from_the_environment_exits_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "exporter", "--once"], capture_output=True, text=True,
                            env=aws_env(AWS_DEFAULT_REGION="eu west 1"), cwd=tmp_path, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "emr-serverless-exporter: targets[0].region: the default region 'eu west 1' is not an AWS region name "
        "like us-east-1"
    ]


def test_an_empty_config_file_path_exits_2_instead_of_reading_the_default_file(tmp_path: Path) -> None:
    # A template's unset variable (--config.file "$CONFIG") must not quietly read ./config.yaml instead.
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"targets": [{"endpoint_url": _dead_endpoint()}],
                                                          **VALID_FAST}))

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "exporter", *args, "--once"], capture_output=True, text=True,
                              env=aws_env(), cwd=tmp_path, timeout=60, check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, [["--config.file", ""], ["--config.file="]]))
    for result in results:
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert result.stderr.splitlines() == ["emr-serverless-exporter: --config.file: the path is empty ('')"]
