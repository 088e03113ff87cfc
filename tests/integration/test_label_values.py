"""Any string AWS returns makes a valid exposition (issue 7, SPEC section 4).

Session names, tag keys and tag values are drawn from all of Unicode: C0 and C1 controls, DEL, lone
surrogates (sent as JSON ``\\udc80`` escapes, which are valid JSON), quotes, backslashes, braces and very
long strings. They go through the exporter (the real boto3 client against ``tests.helpers.hostile_endpoint``,
then the exporter's own exposition, text and OpenMetrics) and the result must:

- pass ``promtool check metrics`` with no finding, parse with prometheus-client's parsers, and hold no
  raw control character and no invalid UTF-8;
- carry every label value in its sanitized form: a line feed kept (escaped as ``\\n``), other Cc characters
  and lone surrogates replaced by U+FFFD, truncated to 1,024 characters; tag keys named ``tag_`` + every
  character outside ``[a-zA-Z0-9_]`` -> ``_``;
- leave out a session whose name or tags are longer than botocore's service model allows (256 characters
  for a name or tag value, 128 for a tag key), counted in ``emr_serverless_invalid_objects_total``.

A real Prometheus scraping such an exporter sees the target up and the sessions with those labels. A line
feed reads back equal in every format the exporter answers in, by prometheus-client's parsers and by a real
Prometheus.
"""

from __future__ import annotations

import http.server
import itertools
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.config.schema import parse_config, tag_label_name
from exporter.wiring import build_exposition, build_runner
from tests.helpers.hostile_endpoint import HostileEndpoint, JsonObject, World, make_application, make_session
from tests.helpers.prometheus_server import PrometheusServer
from tests.helpers.service_model import bound
from tests.helpers.support import MAX_LABEL_LENGTH, sanitized, serving

APP = "00labelapplication01"
TAG_LABELS = ("team", "cost center")  # configured as tag_team and tag_cost_center
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
CAMEL_CASE = re.compile("[a-z][A-Z]")  # promtool's lint rule for metric and label names
CAMEL_CASE_FINDING = "label names should be written in 'snake_case' not 'camelCase'"
SPECIALS = "\r\n\t\x00\x1b\x7f\x85\x9f\u2028\ufeff\"\\{}=,# \udc80\ud800"
NAME_MAX = bound("Session", "name")
TAGS_MAX = bound("Session", "tags")
TAG_KEY_MAX = bound("TagKey")
TAG_VALUE_MAX = bound("TagValue")

_ids = itertools.count(1)



# --- strategies -----------------------------------------------------------------------------------------

any_char = st.one_of(
    st.characters(exclude_categories=()),  # all of Unicode but surrogates, controls included
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),  # lone surrogates
    st.sampled_from(SPECIALS),
)
short_text = st.text(any_char, max_size=24)
# Around the model's bounds (a name or tag value at most 256 characters), and far past them.
anything = st.one_of(short_text, short_text, st.text(any_char, min_size=250, max_size=262),
                     st.text(any_char, min_size=1000, max_size=1300))
tag_keys = st.one_of(st.sampled_from(TAG_LABELS), st.text(any_char, min_size=1, max_size=20))
tags = st.dictionaries(tag_keys, anything, max_size=4)


@st.composite
def sessions(draw: st.DrawFn) -> list[JsonObject]:
    """One exposition's worth: several sessions of one application, each with random strings."""
    now = time.time()
    out = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        session_id = f"00label{next(_ids):013d}"
        name = draw(st.one_of(st.none(), anything))
        out.append(make_session(APP, session_id, name, "IDLE", now - 60, idleSince=now - 30, tags=draw(tags)))
    return out


# --- what the exporter must make of them ----------------------------------------------------------------


def within_model(session: JsonObject) -> bool:
    """The session's name and tags are as long as botocore's model allows: else it is an invalid object."""
    tags = session.get("tags") or {}
    return (len(session.get("name") or "") <= NAME_MAX and len(tags) <= TAGS_MAX
            and all(len(key) <= TAG_KEY_MAX and len(value) <= TAG_VALUE_MAX for key, value in tags.items()))


def expected_info_labels(session: JsonObject) -> dict[str, str]:
    session_tags = session.get("tags") or {}
    labels = {"session_name": sanitized(session.get("name") or "")}
    for key in TAG_LABELS:
        labels[tag_label_name(key)] = sanitized(session_tags.get(key, ""))
    return labels


def expected_tag_labels(session: JsonObject) -> dict[str, str]:
    """The tags info metric: every tag as tag_<key>; of keys that collide, the first in sorted order wins."""
    labels: dict[str, str] = {}
    session_tags = session.get("tags") or {}
    for key in sorted(session_tags):
        labels.setdefault(tag_label_name(key), sanitized(session_tags[key]))
    return labels


def samples_by_session(families: Any, name: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for family in families:
        for sample in family.samples:
            if sample.name == name:
                assert sample.labels["session_id"] not in found, f"duplicate {name} series"
                found[sample.labels["session_id"]] = dict(sample.labels)
    return found


def promtool(text: str) -> str:
    result = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True,
                            timeout=30, check=False)
    findings = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    return findings if findings or result.returncode == 0 else f"exit {result.returncode}"


def check_exposition(body: bytes, content_type: str, world: list[JsonObject]) -> None:
    text = body.decode("utf-8")  # strict: invalid UTF-8 in the exposition is a failure
    raw = RAW_CONTROL.search(text)
    assert raw is None, f"raw control character: {text[max(0, raw.start() - 60):raw.end() + 20]!r}"
    if content_type.startswith("application/openmetrics-text"):
        families = list(parse_openmetrics(text))  # type: ignore[no-untyped-call]
    else:
        families = list(parse_text(text))
        findings = promtool(text)
        if any(CAMEL_CASE.search(tag_label_name(key)) for session in world for key in session.get("tags") or {}):
            # SPEC section 3 names a tag key's label tag_<key> as it is, so a key such as "costCenter"
            # gives a label promtool's lint calls camelCase: test_camel_case_tag_key_and_promtool.
            findings = "\n".join(line for line in findings.splitlines() if CAMEL_CASE_FINDING not in line)
        assert not findings, findings[:2000]
    info = samples_by_session(families, "emr_serverless_session_info")
    tag_series = samples_by_session(families, "emr_serverless_session_tags")
    valid = [s for s in world if within_model(s)]
    assert set(info) == {s["sessionId"] for s in valid}, "every valid session is exported, once"
    invalid = [sample.value for family in families for sample in family.samples
               if sample.name == "emr_serverless_invalid_objects_total" and sample.labels["kind"] == "session"]
    assert invalid == [len(world) - len(valid)], "every session over the model's bounds is counted invalid"
    for session in valid:
        labels = info[session["sessionId"]]
        for label, value in expected_info_labels(session).items():
            assert labels.get(label) == value, (label, labels.get(label), value)
        for label, value in labels.items():
            assert len(value) <= MAX_LABEL_LENGTH and not RAW_CONTROL.search(value), label
        got = {k: v for k, v in tag_series[session["sessionId"]].items() if k.startswith("tag_")}
        assert got == expected_tag_labels(session)


# --- the property ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[HostileEndpoint]:
    with HostileEndpoint(World([], {})) as served:
        yield served


def exporter_config(url: str) -> str:
    return yaml.safe_dump({
        "targets": [{"region": "us-east-1", "endpoint_url": url, "name": "labels"}],
        "metrics": {"tag_labels": list(TAG_LABELS)},
        "aws": {"max_attempts": 1, "connect_timeout_seconds": 1, "read_timeout_seconds": 5},
        "collection": {"timeout_seconds": 10},
    })


# No shrinking: each example is a collection over HTTP, and a failure's example already names the
# offending label and value; a failing example is replayed first from Hypothesis' database next time.
@settings(max_examples=20, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(world=sessions())
def test_any_string_from_aws_gives_a_valid_exposition(endpoint: HostileEndpoint, world: list[JsonObject]) -> None:
    endpoint.world = World([make_application(APP, "labels", time.time() - 3600)], {APP: world})
    for body, content_type in rendered(endpoint.url, {"text": "", "openmetrics": OPENMETRICS}).values():
        check_exposition(body, content_type, world)


def rendered(url: str, accepts: dict[str, str]) -> dict[str, tuple[bytes, str]]:
    """One collection from ``url`` (the target up), rendered for each of ``accepts`` (name -> Accept header):
    name -> (body, content type)."""
    config = parse_config(exporter_config(url))
    runner = build_runner(config)
    try:
        results = runner.collect()
        assert results[0].up, results[0].errors
        exposition = build_exposition(runner, config)
        return {name: exposition.render(accept) for name, accept in accepts.items()}
    finally:
        runner.close()


# --- a real Prometheus -----------------------------------------------------------------------------------

NASTY_NAMES = [
    "carriage\rreturn", "new\nline", "nul\x00byte", "tab\tdel\x7fnel\x85", "lone \udc80 surrogate",
    'quote " backslash \\ brace } comma , equals =', "emoji 🚀 and 東京", "x" * 256,
]
NASTY_TAGS = [
    {"team": "data\r\nops", "cost center": "\x00"},
    {"team": "\ud800", "weird key\n\x01": "v\x9f"},
    {"team": "é" * 256},
    {},
]


def test_a_real_prometheus_scrapes_nasty_labels(tmp_path: Path) -> None:
    now = time.time()
    world = [
        make_session(APP, f"00nasty{index:013d}", name, "IDLE", now - 60, idleSince=now - 30,
                     tags=NASTY_TAGS[index % len(NASTY_TAGS)])
        for index, name in enumerate(NASTY_NAMES)
    ]
    with HostileEndpoint(World([make_application(APP, "app\r\nname", now - 3600)], {APP: world})) as endpoint:
        config_path = tmp_path / "config.yaml"
        config_path.write_text(exporter_config(endpoint.url))
        with serving("--config.file", str(config_path), "--log.format", "json") as exporter, \
                PrometheusServer(targets=[exporter.address]) as prometheus:
            up = prometheus.wait_for('up{job="emr-serverless-exporter"} == 1 and on() emr_serverless_up == 1', 15)
            assert up
            series = prometheus.wait_for(f"count(emr_serverless_session_info) == {len(world)}", 15)
            assert series
            info = {s["metric"]["session_id"]: s["metric"] for s in prometheus.query("emr_serverless_session_info")}
            tag_series = {s["metric"]["session_id"]: s["metric"]
                          for s in prometheus.query("emr_serverless_session_tags")}
            health = prometheus.targets_status()
    assert [target["health"] for target in health] == ["up"], health
    for session in world:
        labels = info[session["sessionId"]]
        for label, value in expected_info_labels(session).items():
            # Prometheus stores no empty label: a session without the tag has no tag_ label there.
            assert labels.get(label, "") == value, (label, labels.get(label), value)
        assert labels["application_name"] == sanitized("app\r\nname")
        got = {k: v for k, v in tag_series[session["sessionId"]].items() if k.startswith("tag_")}
        assert got == expected_tag_labels(session)


@pytest.mark.xfail(reason="SPEC section 3 (tag_<key> keeps a key's case) and section 4 (promtool finds nothing) "
                          "disagree for a tag key such as costCenter: a contract decision, not a bug", strict=False)
def test_camel_case_tag_key_and_promtool() -> None:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    Gauge("emr_serverless_session_tags", "tags", [tag_label_name("costCenter")], registry=registry).labels("x").set(1)
    assert promtool(generate_latest(registry).decode()) == ""


# --- a line feed, format by format -----------------------------------------------------------------------

# Every format the exporter answers in, by the Accept header that asks for it: the direct writer's text 0.0.4,
# text 1.0.0 and OpenMetrics 1.0.0, and prometheus-client's generic path (escaping=values).
FORMATS = {
    "text-0.0.4": "text/plain;version=0.0.4",
    "text-1.0.0": "text/plain;version=1.0.0",
    "openmetrics-1.0.0": OPENMETRICS,
    "generic-text-1.0.0-values": "text/plain;version=1.0.0;escaping=values",
}
LINE_FEED_NAMES = ["two\nlines", "\nleading and trailing\n", "crlf\r\nmixed\x00\x85\u2028end", "\n"]
LINE_FEED_TAGS = [{"team": "data\nops"}, {"team": "\r\n"}, {"team": "x\n\ny"}, {}]


def line_feed_world(now: float) -> list[JsonObject]:
    return [
        make_session(APP, f"00linefeed{index:010d}", name, "IDLE", now - 60, idleSince=now - 30,
                     tags=LINE_FEED_TAGS[index])
        for index, name in enumerate(LINE_FEED_NAMES)
    ]


@pytest.fixture
def line_feed_bodies() -> Iterator[tuple[list[JsonObject], dict[str, tuple[bytes, str]]]]:
    """The exporter's exposition of sessions whose names and tags hold line feeds, in every format:
    format -> (body, content type)."""
    now = time.time()
    world = line_feed_world(now)
    with HostileEndpoint(World([make_application(APP, "app\nname", now - 3600)], {APP: world})) as served:
        bodies = rendered(served.url, FORMATS)
    yield world, bodies


def info_and_tags(families: Any) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    info: dict[str, dict[str, str]] = {}
    tag_series: dict[str, dict[str, str]] = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("session_info"):
                info[sample.labels["session_id"]] = dict(sample.labels)
            elif sample.name.endswith("session_tags"):
                tag_series[sample.labels["session_id"]] = dict(sample.labels)
    return info, tag_series


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_line_feed_reads_back_equal_with_prometheus_client(
    line_feed_bodies: tuple[list[JsonObject], dict[str, tuple[bytes, str]]], fmt: str
) -> None:
    world, bodies = line_feed_bodies
    body, content_type = bodies[fmt]
    assert content_type.startswith("application/openmetrics-text" if "openmetrics" in fmt else "text/plain")
    text = body.decode()
    parser = parse_openmetrics if "openmetrics" in fmt else parse_text
    info, tag_series = info_and_tags(parser(text))
    for session in world:
        labels = info[session["sessionId"]]
        assert labels["session_name"] == sanitized(session["name"])
        assert "\n" in labels["session_name"]  # kept, not U+FFFD
        assert labels["tag_team"] == sanitized(session["tags"].get("team", ""))
        assert labels["application_name"] == "app\nname"
        assert tag_series[session["sessionId"]].get("tag_team", "") == sanitized(session["tags"].get("team", ""))
    assert RAW_CONTROL.search(text) is None


class _Bodies(http.server.BaseHTTPRequestHandler):
    """Answers /<format> with that format's body and content type, as the exporter rendered them."""

    bodies: ClassVar[dict[str, tuple[bytes, str]]] = {}

    def do_GET(self) -> None:
        body, content_type = self.bodies[self.path.strip("/")]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_line_feed_reads_back_equal_in_a_real_prometheus(
    line_feed_bodies: tuple[list[JsonObject], dict[str, tuple[bytes, str]]]
) -> None:
    """Prometheus (2.42 has no scrape_protocols) parses a body by its content type: each format's body is
    served as the exporter rendered it, one scrape job per format, and the label values queried back."""
    world, bodies = line_feed_bodies
    handler = type("Handler", (_Bodies,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    jobs = [{"job_name": fmt, "metrics_path": f"/{fmt}", "static_configs": [{"targets": [address]}]}
            for fmt in FORMATS]
    try:
        with PrometheusServer(targets=[address], metrics_path="/text-0.0.4", extra_jobs=jobs[1:],
                              job="text-0.0.4") as prometheus:
            prometheus.wait_for(f"count(emr_serverless_session_info) == {len(world) * len(FORMATS)}", 20)
            found = prometheus.query("emr_serverless_session_info")
            health = {target["labels"]["job"]: target["health"] for target in prometheus.targets_status()}
    finally:
        server.shutdown()
        server.server_close()
    assert health == dict.fromkeys(FORMATS, "up"), health
    by_format: dict[str, dict[str, dict[str, str]]] = {}
    for sample in found:
        by_format.setdefault(sample["metric"]["job"], {})[sample["metric"]["session_id"]] = sample["metric"]
    assert set(by_format) == set(FORMATS)
    for fmt, info in by_format.items():
        for session in world:
            labels = info[session["sessionId"]]
            assert labels["session_name"] == sanitized(session["name"]), fmt
            # Prometheus stores no empty label: a session without the tag has no tag_team there.
            assert labels.get("tag_team", "") == sanitized(session["tags"].get("team", "")), fmt
            assert labels["application_name"] == "app\nname", fmt
