"""The README's metric table is the code's metric table."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.metrics.collector import metric_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_metric_table_equals_the_code() -> None:
    text = README.read_text()
    block = re.search(r"<!-- metric-table:.*?-->\n(.*?)<!-- /metric-table -->", text, re.S)
    assert block, "README.md lost its metric-table markers"
    rows = [line for line in block.group(1).splitlines() if line.startswith("| `")]
    documented = [tuple(cell.strip() for cell in row.strip("|").split(" | ")) for row in rows]
    expected = [(f"`{name}`", kind, labels, help_text) for name, kind, labels, help_text in metric_table()]
    missing = "\n".join("| {} | {} | {} | {} |".format(*row) for row in expected if row not in documented)
    assert documented == expected, f"README metric table differs from the code; expected rows:\n{missing}"
