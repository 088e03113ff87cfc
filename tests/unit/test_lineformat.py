"""The direct line formatter writes what prometheus-client writes, byte for byte, on generated families."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from exporter.model.session import label_safe
from exporter.render.lineformat import (
    OPENMETRICS_EOF,
    FamilyWriter,
    SharedLabels,
    Syntax,
    check_name,
    format_value,
    header,
    label_pairs,
)

ESCAPINGS = ("underscores", "allow-utf-8")


class Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def reference(syntax: Syntax, escaping: str, families: Iterable[Metric]) -> bytes:
    if syntax == "text":
        return generate_text(Families(families), escaping=escaping)
    body: bytes = generate_openmetrics(Families(families), escaping=escaping)  # type: ignore[no-untyped-call]
    return body


names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
label_names = names.filter(lambda name: not name.startswith("__"))  # reserved by prometheus-client
metric_names = names.filter(lambda name: name.removesuffix("_total") != "")
# OpenMetrics units: the name's suffix; the exporter's own, and generated ones.
units = st.one_of(st.just(""), st.sampled_from(["seconds", "bytes", "byte_seconds"]), names.map(str.lower))
label_values = st.text(max_size=40).map(label_safe)  # any Unicode, as exporter.model.session lets it through
help_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e300, max_value=1e300),
    st.integers(min_value=-(10**20), max_value=10**20).map(float),
    st.sampled_from([0.0, -0.0, 1.0, 1e6, 1e-7, 123456.7, 1234567.0, 1e16, 1.5e22, 5e-324, 1.7976931348623157e308]),
)


@st.composite
def families(draw: Any) -> dict[str, Any]:
    all_labels = draw(st.lists(label_names, unique=True, max_size=8))
    split = draw(st.integers(min_value=0, max_value=len(all_labels)))
    shared, own = all_labels[:split], all_labels[split:]
    samples = draw(st.lists(
        st.tuples(
            st.lists(label_values, min_size=len(shared), max_size=len(shared)),
            st.lists(label_values, min_size=len(own), max_size=len(own)),
            values,
        ),
        max_size=6,
    ))
    name, kind, unit = draw(metric_names), draw(st.sampled_from(["gauge", "counter"])), draw(units)
    if unit:  # the unit as the name's suffix, before a counter's _total or not
        name = f"{name.removesuffix('_total')}_{unit}" + ("_total" if kind == "counter" and draw(st.booleans()) else "")
    return {
        "name": name, "type": kind, "help": draw(help_texts), "unit": unit,
        "shared": shared, "own": own, "samples": samples,
    }


def client_family(family: dict[str, Any]) -> Metric:
    labels = [*family["shared"], *family["own"]]
    cls = CounterMetricFamily if family["type"] == "counter" else GaugeMetricFamily
    metric = cls(family["name"], family["help"], labels=labels, unit=family["unit"])
    for shared, own, value in family["samples"]:
        metric.add_metric([*shared, *own], value)
    return metric


def direct(syntax: Syntax, families: list[dict[str, Any]]) -> bytes:
    body = b""
    for family in families:
        shared = SharedLabels(family["shared"])
        writer = FamilyWriter(family["name"], family["type"], family["help"], shared, family["own"], family["unit"])
        body += writer.headers[syntax]
        for shared_values, own_values, value in family["samples"]:
            body += writer.lines(shared.runs(shared_values), [(own_values, value)]).encode()
    return body + (OPENMETRICS_EOF if syntax == "openmetrics" else b"")


@pytest.mark.parametrize("escaping", ESCAPINGS)
@pytest.mark.parametrize("syntax", ["text", "openmetrics"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=st.lists(families(), max_size=3, unique_by=lambda f: f["name"].removesuffix("_total")))
def test_families_are_written_as_prometheus_client_writes_them(
    syntax: Syntax, escaping: str, generated: list[dict[str, Any]]
) -> None:
    expected = reference(syntax, escaping, [client_family(family) for family in generated])
    assert direct(syntax, generated) == expected


@pytest.mark.parametrize("escaping", ESCAPINGS)
@pytest.mark.parametrize("syntax", ["text", "openmetrics"])
@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(st.dictionaries(label_names, label_values, max_size=6), max_size=4),
    value=values,
)
def test_labels_that_differ_from_sample_to_sample(
    syntax: Syntax, escaping: str, samples: list[dict[str, str]], value: float
) -> None:
    """The tags family: each session has its own label names."""
    metric = Metric("emr_serverless_session_tags", "Tags.", "gauge")
    for labels in samples:
        metric.samples.append(Sample("emr_serverless_session_tags", labels, value))
    body = header(syntax, "emr_serverless_session_tags", "gauge", "Tags.")
    for labels in samples:
        body += f"emr_serverless_session_tags{label_pairs(list(labels), list(labels.values()))} ".encode()
        body += f"{format_value(value)}\n".encode()
    assert body + (OPENMETRICS_EOF if syntax == "openmetrics" else b"") == reference(syntax, escaping, [metric])


def test_awkward_values_by_example() -> None:
    shared = SharedLabels(["target", "account_id"])
    writer = FamilyWriter("x_seconds_total", "counter", 'say "hi"\\\nbye', shared, ["state", "b"])
    runs = shared.runs(['a"b', "back\\slash\nnewline"])
    assert writer.headers["text"] == b'# HELP x_seconds_total say "hi"\\\\\\nbye\n# TYPE x_seconds_total counter\n'
    assert writer.headers["openmetrics"] == b'# HELP x_seconds say \\"hi\\"\\\\\\nbye\n# TYPE x_seconds counter\n'
    line = writer.lines(runs, [(["IDLE", ""], 1.764e9)])
    assert line == (
        'x_seconds_total{account_id="back\\\\slash\\nnewline",b="",state="IDLE",target="a\\"b"} 1.764e+09\n'
    )
    assert [format_value(v) for v in (1.0, 0.5, 1e6, float("inf"), float("-inf"), float("nan"), -2e20)] == [
        "1.0", "0.5", "1e+06", "+Inf", "-Inf", "NaN", "-2e+20",
    ]


def test_units_by_example() -> None:
    shared = SharedLabels(["target"])
    writer = FamilyWriter("x_byte_seconds_total", "counter", "Use.", shared, unit="byte_seconds")
    assert writer.headers["text"] == b"# HELP x_byte_seconds_total Use.\n# TYPE x_byte_seconds_total counter\n"
    assert writer.headers["openmetrics"] == (
        b"# HELP x_byte_seconds Use.\n# TYPE x_byte_seconds counter\n# UNIT x_byte_seconds byte_seconds\n"
    )
    # prometheus-client would rename the family; OpenMetrics wants the unit as the name's suffix.
    with pytest.raises(ValueError, match="suffix"):
        header("openmetrics", "x_seconds_total", "counter", "Use.", "bytes")


@pytest.mark.parametrize("name", ["", "1x", "a:b", "a-b", "é"])
def test_names_outside_the_legacy_set_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


# --- label values that hold a line feed ---------------------------------------------------------------

any_unicode = st.text(st.one_of(
    st.characters(exclude_categories=()),  # all of Unicode but surrogates, controls included
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),  # lone surrogates
    st.sampled_from("\n\r\t\x00\x85\u2028\"\\{}="),
), max_size=40)


def kept(value: str) -> str:
    """What a label value must read back as: a line feed kept, every other control character (Cc) and
    lone surrogate as U+FFFD, at most 1,024 characters."""
    out = "".join(
        "\ufffd" if (unicodedata.category(char) == "Cc" and char != "\n") or 0xD800 <= ord(char) <= 0xDFFF else char
        for char in value
    )
    return out[:1024]


@settings(max_examples=300, deadline=None)
@given(value=any_unicode)
def test_label_safe_keeps_a_line_feed_and_replaces_other_controls(value: str) -> None:
    assert label_safe(value) == kept(value)


def test_label_safe_by_example() -> None:
    assert label_safe("two\nlines") == "two\nlines"
    assert label_safe("crlf\r\nnul\x00tab\tnel\x85") == "crlf\ufffd\nnul\ufffdtab\ufffdnel\ufffd"


def parse(kind: Syntax, body: bytes) -> list[Metric]:
    text = body.decode("utf-8")
    if kind == "openmetrics":
        return list(parse_openmetrics(text))  # type: ignore[no-untyped-call]
    return list(parse_text(text))


def written_by_prometheus_client(kind: Syntax, escaping: str, name: str, labels: dict[str, str]) -> bytes:
    metric = GaugeMetricFamily(name, "Values.", labels=list(labels))
    metric.add_metric(list(labels.values()), 1.0)
    return reference(kind, escaping, [metric])


# Each format the exporter answers in: the direct writer's text (served as text 0.0.4 and as text 1.0.0,
# whose escaping=underscores leaves these names as they are) and OpenMetrics 1.0.0, and prometheus-client's
# generic path (escaping=values, which the direct writer does not serve), each read back by its parser.
FORMATS = [
    ("text-0.0.4", "text", "direct"),
    ("text-1.0.0", "text", "underscores"),
    ("openmetrics-1.0.0", "openmetrics", "direct"),
    ("generic-text-1.0.0-values", "text", "values"),
    ("generic-openmetrics-1.0.0-values", "openmetrics", "values"),
]


@pytest.mark.parametrize(("kind", "writer"), [(kind, writer) for _, kind, writer in FORMATS],
                         ids=[name for name, _, _ in FORMATS])
@settings(max_examples=100, deadline=None)
@given(name=any_unicode, team=any_unicode)
@example(name="two\nlines", team="crlf\r\nend\n")
def test_a_label_value_reads_back_as_kept_in_every_format(kind: Syntax, writer: str, name: str, team: str) -> None:
    labels = {"session_name": label_safe(name), "tag_team": label_safe(team)}
    if writer == "direct":
        shared = SharedLabels(list(labels))
        family = FamilyWriter("emr_serverless_session_info", "gauge", "Values.", shared)
        body = family.headers[kind] + family.lines(shared.runs(list(labels.values())), [((), 1.0)]).encode()
        body += OPENMETRICS_EOF if kind == "openmetrics" else b""
        assert body == written_by_prometheus_client(kind, "underscores", "emr_serverless_session_info", labels)
    else:
        body = written_by_prometheus_client(kind, writer, "emr_serverless_session_info", labels)
    # HELP, TYPE, the sample (and OpenMetrics' EOF), one line each: every line feed in a value is escaped.
    assert body.count(b"\n") == (4 if kind == "openmetrics" else 3)
    # (prometheus-client's OpenMetrics with escaping=values escapes a sample's name but not its family's:
    # the sample is read as a family of its own. Its labels are what this test is about.)
    [sample] = [sample for family_read in parse(kind, body) for sample in family_read.samples]
    assert sample.labels == {"session_name": kept(name), "tag_team": kept(team)}
