"""The tables docs/ is generated from: the flags table from the parser, the configuration reference from
the schema and config.yaml's comments, and their rewriting between markers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exporter.cli import DEFAULT_CONFIG, build_parser, flags_table, parse_args, read_config
from exporter.config.reference import ReferenceRow, config_reference
from exporter.config.schema import Config, ConfigError
from exporter.docs import DocsError, markdown_table, regenerate

ROOT = Path(__file__).resolve().parents[2]


# --- flags ------------------------------------------------------------------------------------------------


def test_every_flag_is_in_the_table_with_the_default_the_parser_applies() -> None:
    rows = {flag.split(", ")[-1].split(" ")[0]: (default, meaning) for flag, default, meaning in flags_table()}
    flags = {action.option_strings[-1] for action in build_parser()._actions}
    assert set(rows) == flags
    applied = vars(parse_args([]))
    for action in build_parser()._actions:
        default, meaning = rows[action.option_strings[-1]]
        assert meaning, f"{action.option_strings[-1]} has no help text"
        if action.dest in applied:
            value = applied[action.dest]
            assert default == ("off" if value is False else "none" if value is None else str(value))


def test_a_flag_with_an_argument_shows_it_and_a_choice_lists_them() -> None:
    rows = {flag: (default, meaning) for flag, default, meaning in flags_table()}
    assert rows["--web.listen-address HOST:PORT"][0] == ":9865"
    assert rows["--demo"][0] == "off"
    assert rows["--web.config.file PATH"][0] == "none"
    assert rows["-h, --help"][0] == ""
    assert "debug, info, warn, error" in rows["--log.level LEVEL"][1]


def test_the_config_file_default_is_read_only_when_the_flag_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    absent = parse_args([])
    assert absent.config_file == "config.yaml" and absent.config_file is DEFAULT_CONFIG
    assert read_config(absent) == Config()  # no config.yaml here: all defaults
    with pytest.raises(ConfigError, match=r"^config\.yaml: file not found"):
        read_config(parse_args(["--config.file", "config.yaml"]))  # named, so it must exist
    (tmp_path / "config.yaml").write_text("aws: {max_attempts: 3}\n")
    assert read_config(absent).aws.max_attempts == 3


# --- the configuration reference --------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    rate: float = 0
    burst: int = 10


@dataclass(frozen=True)
class Entry:
    region: str | None = None
    weight: float = 1.5


@dataclass(frozen=True)
class Section:
    names: tuple[str, ...] = ()
    limit: Limit = Limit()
    new_key: bool = True


@dataclass(frozen=True)
class Schema:
    entries: tuple[Entry, ...] = field(default=(Entry(),))
    section: Section = Section()


EXAMPLE = """\
# a header that describes no key

entries:                # one per region
  - region: null        # a region name like "eu-west-1 # not a comment"
    weight: 1.5         # how much it counts
section:
  names: []             # only these; empty: all
  limit: {rate: 0, burst: 10}   # rate 0: no limit
  # Said above the key, on two
  # lines.
  new_key: true
"""


def test_the_reference_reads_types_and_defaults_from_the_schema_and_meanings_from_the_example() -> None:
    assert config_reference(EXAMPLE, Schema) == [
        ReferenceRow("entries", "list of mappings", "[{}]", "one per region"),
        ReferenceRow("entries[].region", "string", "null", 'a region name like "eu-west-1 # not a comment"'),
        ReferenceRow("entries[].weight", "number", "1.5", "how much it counts"),
        ReferenceRow("section.names", "list of strings", "[]", "only these; empty: all"),
        ReferenceRow("section.limit", "mapping", "{rate: 0, burst: 10}", "rate 0: no limit"),
        ReferenceRow("section.new_key", "boolean", "true", "Said above the key, on two lines."),
    ]


def test_a_new_key_is_a_new_row_even_before_its_comment() -> None:
    grown = dataclasses.make_dataclass("Grown", [("extra_seconds", float, field(default=60.0))], bases=(Schema,),
                                       frozen=True)
    rows = config_reference(EXAMPLE, grown)
    assert rows[-1] == ReferenceRow("extra_seconds", "number", "60", "")


def test_the_reference_of_the_real_configuration_covers_every_top_level_section() -> None:
    rows = config_reference((ROOT / "config.yaml").read_text())
    sections = {row.key.split(".")[0].split("[")[0] for row in rows}
    assert sections == {f.name for f in dataclasses.fields(Config)}
    assert all(row.description for row in rows), [row.key for row in rows if not row.description]


# --- rewriting between markers ----------------------------------------------------------------------------


PAGE = """# Page

<!-- generated: things by a command -->
| old |
<!-- /generated: things -->

after
"""


def test_a_table_is_replaced_between_its_markers_and_nothing_else_moves() -> None:
    table = markdown_table(("a", "b"), [("1", "x | y")])
    assert table == "| a | b |\n| --- | --- |\n| 1 | x \\| y |\n"
    assert markdown_table(("a",), [("tag_<key> or `tag_<key>`",)]).endswith("| tag_&lt;key> or `tag_<key>` |\n")
    new = regenerate("page.md", PAGE, {"things": table})
    assert new == PAGE.replace("| old |\n", table)
    assert regenerate("page.md", new, {"things": table}) == new


def test_lost_markers_are_an_error_naming_the_page_and_table() -> None:
    with pytest.raises(DocsError, match=r"page\.md: no <!-- generated: others -->"):
        regenerate("page.md", PAGE, {"others": "| x |\n"})
