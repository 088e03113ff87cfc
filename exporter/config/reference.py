"""The configuration reference of docs/configuration.md, made from the schema and the example file.

Each fact has one source: the dataclasses of ``exporter.config.schema`` give every key, its type and
its default; the repository's ``config.yaml`` (the documented example, held to the schema by
tests/unit/test_config.py) gives what the key is for and its range, in the comment on the key's line
or the comment lines just above it. A new field with its line in ``config.yaml`` is a new row.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from exporter.config.schema import Config


@dataclass(frozen=True)
class ReferenceRow:
    key: str  # the key path, ``[]`` for any entry of a list: ``targets[].region``
    type: str
    default: str  # as YAML writes it: ``null``, ``[]``, ``3600``
    description: str


def config_reference(example: str, schema: type[Any] = Config) -> list[ReferenceRow]:
    """Every key of ``schema`` in its order; ``example`` is the text of ``config.yaml``."""
    root = yaml.compose(example, Loader=yaml.SafeLoader)
    mapping = root if isinstance(root, yaml.MappingNode) else None
    return list(_rows(schema, mapping, "", example.splitlines()))


def _rows(cls: type[Any], node: yaml.MappingNode | None, prefix: str, lines: list[str]) -> Iterator[ReferenceRow]:
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        hint = hints[field.name]
        key_node, value_node = _entry(node, field.name)
        description = _comment(lines, key_node) if key_node else ""
        default = getattr(defaults, field.name)
        section = _section_class(hint)
        written_inline = isinstance(value_node, yaml.MappingNode) and value_node.flow_style
        if section is None or written_inline:
            yield ReferenceRow(key, _type_name(hint), _yaml_text(default), description)
            continue
        is_list = typing.get_origin(hint) is tuple
        if description or is_list:
            yield ReferenceRow(key, _type_name(hint), _yaml_text(default) if is_list else "", description)
        inner = value_node
        if isinstance(inner, yaml.SequenceNode):
            inner = inner.value[0] if inner.value else None
        yield from _rows(section, inner if isinstance(inner, yaml.MappingNode) else None,
                         f"{key}[]." if is_list else f"{key}.", lines)


def _entry(node: yaml.MappingNode | None, name: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    for key_node, value_node in node.value if node else ():
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == name:
            return key_node, value_node
    return None, None


def _comment(lines: list[str], key_node: yaml.Node) -> str:
    """The comment on the key's line, after the comment lines just above it at the same indentation."""
    line = key_node.start_mark.line
    column = key_node.start_mark.column
    above: list[str] = []
    for previous in reversed(lines[:line]):
        stripped = previous.strip()
        if not stripped.startswith("#") or len(previous) - len(previous.lstrip()) != column:
            break
        above.insert(0, stripped.lstrip("#").strip())
    return " ".join([*above, _trailing_comment(lines[line])]).strip()


def _trailing_comment(line: str) -> str:
    """The text after a ``#`` that starts a YAML comment: outside quotes, after a blank."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[index + 1 :].strip()
    return ""


def _section_class(hint: Any) -> type[Any] | None:
    """The dataclass of a section (``X``) or of a list of them (``tuple[X, ...]``), else None."""
    inner = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
    return typing.cast(type[Any], inner) if dataclasses.is_dataclass(inner) else None


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_name(hint: Any, *, plural: bool = False) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return _type_name(inner, plural=plural)
    if origin is tuple:
        return f"list of {_type_name(args[0], plural=True)}"
    name = "mapping" if dataclasses.is_dataclass(hint) else _TYPE_NAMES.get(hint, str(hint))
    return f"{name}s" if plural else name


def _yaml_text(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value else '""'
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = (f"{f.name}: {_yaml_text(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return "{" + ", ".join(items) + "}"
    if isinstance(value, tuple):
        if value and all(dataclasses.is_dataclass(item) for item in value):
            if all(item == type(item)() for item in value):
                return "[" + ", ".join("{}" for _ in value) + "]"  # entries with every default
            return f"{len(value)} entries, as in config.yaml"
        return "[" + ", ".join(_yaml_text(item) for item in value) + "]"
    return str(value)
