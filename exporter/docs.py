"""The tables in docs/ that are made from the code, and the command that rewrites them.

    python -m exporter.docs            # rewrite the tables in place, from the repository's root
    python -m exporter.docs --check    # exit 1 with a diff when a table is out of date

Each table sits between ``<!-- generated: NAME ... -->`` and ``<!-- /generated: NAME -->`` in its page:
the metric table (``exporter.metrics.collector.metric_table``), the flags table
(``exporter.cli.flags_table``) and the configuration reference (``exporter.config.reference``, which
reads the schema and ``config.yaml``). tests/deploy/test_docs.py runs the check. Not part of the
exporter's runtime: it only reads the code and writes Markdown.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from exporter.cli import flags_table
from exporter.config.reference import config_reference
from exporter.metrics.collector import metric_table

# Which page holds which generated table.
PAGES = {
    "docs/metrics.md": ("metric-table",),
    "docs/configuration.md": ("flags-table", "config-reference"),
}


class DocsError(Exception):
    """A page lost a table's markers: one line naming the page and the table."""


def markdown_cell(text: str) -> str:
    """``text`` as one table cell: ``|`` escaped, and ``<`` outside code spans too, where it would open an
    HTML tag (``tag_<key>``)."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(part if index % 2 else part.replace("<", "&lt;") for index, part in enumerate(parts))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(markdown_cell(cell) for cell in cells) + " |\n"

    return line(header) + line("---" for _ in header) + "".join(line(row) for row in rows)


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def metric_markdown() -> str:
    rows = ((f"`{name}`", kind, labels, help_text) for name, kind, labels, help_text in metric_table())
    return markdown_table(("metric", "type", "labels", "meaning"), rows)


def flags_markdown() -> str:
    rows = ((", ".join(_code(name) for name in flag.split(", ")),
             default if default in ("", "off", "none") else _code(default), meaning)
            for flag, default, meaning in flags_table())
    return markdown_table(("flag", "default", "meaning"), rows)


def config_markdown(root: Path) -> str:
    rows = ((_code(row.key), row.type, _code(row.default), row.description)
            for row in config_reference((root / "config.yaml").read_text()))
    return markdown_table(("key", "type", "default", "meaning and range"), rows)


def tables(root: Path) -> dict[str, Callable[[], str]]:
    return {
        "metric-table": metric_markdown,
        "flags-table": flags_markdown,
        "config-reference": lambda: config_markdown(root),
    }


def regenerate(page: str, text: str, made: Mapping[str, str]) -> str:
    """``text`` with each named table between its markers replaced by ``made[name]``."""
    for name, table in made.items():
        quoted = re.escape(name)
        found = re.search(rf"<!-- generated: {quoted}\b[^\n]*-->\n(.*?)<!-- /generated: {quoted} -->", text, re.S)
        if not found:
            raise DocsError(f"{page}: no <!-- generated: {name} --> ... <!-- /generated: {name} --> markers")
        text = text[: found.start(1)] + table + text[found.end(1) :]
    return text


def updates(root: Path) -> dict[str, tuple[str, str]]:
    """Page -> (text now, text with fresh tables), for every page with generated tables."""
    makers = tables(root)
    found = {}
    for page, names in PAGES.items():
        text = (root / page).read_text()
        found[page] = (text, regenerate(page, text, {name: makers[name]() for name in names}))
    return found


def diff(page: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), page, f"{page} (from the code)"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.docs",
                                     description="Rewrite the tables in docs/ that are made from the code.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff when out of date")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        found = updates(args.root)
    except (DocsError, OSError) as err:
        print(f"python -m exporter.docs: {err}", file=sys.stderr)
        return 2
    stale = {page: texts for page, texts in found.items() if texts[0] != texts[1]}
    for page, (old, new) in stale.items():
        if args.check:
            sys.stdout.write(diff(page, old, new))
        else:
            (args.root / page).write_text(new)
            print(f"rewrote {page}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
