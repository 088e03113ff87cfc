"""Exposition lines written directly, byte for byte as prometheus-client writes them.

For a family prometheus-client would hold as a ``GaugeMetricFamily`` or ``CounterMetricFamily``, the
text format 0.0.4 (``prometheus_client.exposition.generate_latest``) and OpenMetrics 1.0.0
(``prometheus_client.openmetrics.exposition.generate_latest``) differ only in the family's header:

- a counter declared as ``x_total`` is the family ``x``: text writes ``# HELP x_total`` and
  ``# TYPE x_total counter``, OpenMetrics ``# HELP x`` and ``# TYPE x counter``; the samples are
  ``x_total`` in both. A counter without a created time (none of ours has one) has no ``x_created``
  sample in either format;
- ``# HELP`` escapes backslash and newline; OpenMetrics escapes the double quote too;
- a family with a unit (``x_seconds`` in ``seconds``) has ``# UNIT x_seconds seconds`` after its ``# TYPE``
  line in OpenMetrics, which requires the unit to be the name's suffix; the text format has no unit;
- OpenMetrics ends the exposition with ``# EOF`` (the caller writes it, once, at the very end).

A sample line is the same in both: ``name{labels} value``, labels sorted by name, each value with
backslash, newline and double quote escaped, the value as Go formats a float (``floatToGoString``:
``1.0``, ``1.7e+09``, ``+Inf``, ``NaN``). Because sample lines do not depend on the format, one
rendering of a session serves every format; only headers are per format.

Names are legacy Prometheus names without colons (``[a-zA-Z_][a-zA-Z0-9_]*``): the escaping schemes
``underscores``, ``allow-utf-8`` and ``values`` leave them as they are in both formats. ``dots`` renames
them: ``exporter.render.exposition`` sends it to prometheus-client's generic path.
tests/unit/test_lineformat.py compares this module with prometheus-client on generated families.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from prometheus_client.utils import floatToGoString

Syntax = Literal["text", "openmetrics"]
MetricType = Literal["gauge", "counter"]
SYNTAXES: tuple[Syntax, ...] = ("text", "openmetrics")
OPENMETRICS_EOF = b"# EOF\n"

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# prometheus-client's own float formatting: exact by construction.
format_value: Callable[[float], str] = floatToGoString


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a legacy Prometheus name without colons: {name!r}")
    return name


def escape_value(value: str) -> str:
    """A label value between double quotes: backslash, newline and double quote escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def sample_name(name: str, type: MetricType) -> str:
    """The name on a family's sample lines: a counter's always ends in ``_total``."""
    check_name(name)
    return name if type != "counter" or name.endswith("_total") else name + "_total"


def header(syntax: Syntax, name: str, type: MetricType, help: str, unit: str = "") -> bytes:
    """The ``# HELP``, ``# TYPE`` (and in OpenMetrics ``# UNIT``) lines of a family, as prometheus-client
    writes them in ``syntax``."""
    check_name(name)
    family = name[: -len("_total")] if type == "counter" and name.endswith("_total") else name
    if unit and not family.endswith("_" + check_name(unit)):
        # prometheus-client would append the unit to the name; OpenMetrics wants it as the suffix.
        raise ValueError(f"the unit {unit!r} is not the suffix of {name!r}")
    if syntax == "text":
        shown = family + "_total" if type == "counter" else family
        text = help.replace("\\", "\\\\").replace("\n", "\\n")
    else:
        shown = family
        text = escape_value(help)
    unit_line = f"# UNIT {shown} {unit}\n" if unit and syntax == "openmetrics" else ""
    return f"# HELP {shown} {text}\n# TYPE {shown} {type}\n{unit_line}".encode()


def label_pairs(names: Sequence[str], values: Sequence[str]) -> str:
    """``{a="x",b="y"}`` for labels in any order (empty when there are none): sorted by name."""
    if not names:
        return ""
    pairs = sorted(zip(names, values, strict=True))
    return "{" + ",".join([f'{name}="{escape_value(value)}"' for name, value in pairs]) + "}"


class SharedLabels:
    """Label names that every family of one kind of object carries (a session's ``S`` labels), so that
    an object's label text is escaped and joined once for all its families (``FamilyLabels``)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(check_name(name) for name in names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate label names: {self.names}")
        self.order = tuple(sorted(range(len(self.names)), key=self.names.__getitem__))
        self.sorted_names = tuple(self.names[i] for i in self.order)
        self._runs: dict[tuple[int, int], int] = {}  # (start, end) in sorted order -> index in runs()

    def run(self, start: int, end: int) -> int:
        """Register a run of consecutive names (in sorted order) that some family writes together."""
        return self._runs.setdefault((start, end), len(self._runs))

    def runs(self, values: Sequence[str]) -> list[str]:
        """Every registered run's text, ``a="x",b="y"``, for one object's label values."""
        pairs = [f'{self.sorted_names[k]}="{escape_value(values[i])}"' for k, i in enumerate(self.order)]
        return [",".join(pairs[start:end]) for start, end in self._runs]


class FamilyLabels:
    """The label text of one family's samples: the shared labels with the family's own merged in,
    sorted by name as prometheus-client sorts them."""

    def __init__(self, shared: SharedLabels, own: Sequence[str]) -> None:
        self.own = tuple(check_name(name) for name in own)
        names = [*shared.sorted_names, *self.own]
        if len(set(names)) != len(names):
            raise ValueError(f"label names repeat: {names}")
        # In sorted order: (run, "", -1) for a run of shared labels, (-1, 'name="', k) for own label k.
        self.pieces: list[tuple[int, str, int]] = []
        merged = sorted([(name, False, k) for k, name in enumerate(shared.sorted_names)]
                        + [(name, True, k) for k, name in enumerate(self.own)])
        start: int | None = None
        for position, (name, is_own, k) in enumerate(merged):
            if is_own:
                self.pieces.append((-1, f'{name}="', k))
                continue
            start = k if start is None else start
            if position + 1 == len(merged) or merged[position + 1][1]:  # the run ends here
                self.pieces.append((shared.run(start, k + 1), "", -1))
                start = None
        # A family without labels of its own writes one run of shared labels, or no labels at all.
        self.only_shared: int | None = None
        if not self.own:
            self.only_shared = self.pieces[0][0] if self.pieces else -1

    def text(self, runs: Sequence[str], own_values: Sequence[str]) -> str:
        """``{...}`` for one sample, given its object's ``SharedLabels.runs`` and the own label values."""
        parts = [
            runs[run] if run >= 0 else prefix + escape_value(own_values[k]) + '"'
            for run, prefix, k in self.pieces
        ]
        return "{" + ",".join(parts) + "}" if parts else ""


class FamilyWriter:
    """One family's header per format and its sample lines, over objects whose shared labels are
    given as ``SharedLabels.runs``."""

    def __init__(
        self, name: str, type: MetricType, help: str, shared: SharedLabels, own: Sequence[str] = (), unit: str = ""
    ) -> None:
        self.name = sample_name(name, type)
        self.labels = FamilyLabels(shared, own)
        self.headers: dict[Syntax, bytes] = {syntax: header(syntax, name, type, help, unit) for syntax in SYNTAXES}

    def lines(self, runs: Sequence[str], samples: Iterable[tuple[Sequence[str], float]]) -> str:
        """The sample lines of one object: ``samples`` are (own label values, value)."""
        name, labels = self.name, self.labels
        if labels.only_shared is not None:
            text = "{" + runs[labels.only_shared] + "}" if labels.only_shared >= 0 else ""
            return "".join([f"{name}{text} {format_value(value)}\n" for _, value in samples])
        return "".join([f"{name}{labels.text(runs, own)} {format_value(value)}\n" for own, value in samples])
