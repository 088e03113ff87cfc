"""botocore's service model of emr-serverless as the judge of a JSON answer: what the simulator and the
hostile endpoint's good answers must hold to (tests/integration/test_simulator_contract.py,
tests/integration/test_hostile.py)."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
from botocore.model import Shape

MODEL = botocore.session.get_session().get_service_model("emr-serverless")
MADE_UP_STATE = "SUSPENDED"  # a state AWS might add one day; the only value allowed outside an enum


def validate(shape: Shape, value: Any, path: str = "$") -> list[str]:
    """Problems of ``value`` as the JSON of ``shape`` (rest-json: timestamps as epoch numbers)."""
    problems: list[str] = []
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object for {shape.name}, got {type(value).__name__}"]
        members = shape.members  # type: ignore[attr-defined]
        for name in meta.get("required", []):
            if name not in value:
                problems.append(f"{path}: required member {name} of {shape.name} missing")
        for name, item in value.items():
            if name not in members:
                problems.append(f"{path}: unknown member {name} in {shape.name}")
            else:
                problems += validate(members[name], item, f"{path}.{name}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        problems += _length(meta, len(value), path)
        for i, item in enumerate(value):
            problems += validate(shape.member, item, f"{path}[{i}]")  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        problems += _length(meta, len(value), path)
        for key, item in value.items():
            problems += validate(shape.key, key, f"{path}<key {key!r}>")  # type: ignore[attr-defined]
            problems += validate(shape.value, item, f"{path}[{key!r}]")  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {type(value).__name__}"]
        enum = shape.enum  # type: ignore[attr-defined]
        if enum and value not in enum and value != MADE_UP_STATE:
            problems.append(f"{path}: {value!r} not in enum {shape.name}")
        problems += _length(meta, len(value), path)
        # Smithy patterns are not anchored: they must match somewhere in the value.
        if "pattern" in meta and not re.search(meta["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']!r}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected an integer, got {value!r}"]
        if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            problems.append(f"{path}: {value} outside [{meta.get('min')}, {meta.get('max')}]")
    elif kind in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected a number, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")
    elif kind == "timestamp":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected epoch seconds, got {value!r}")
    else:
        problems.append(f"{path}: shape type {kind} not handled by this test")
    return problems


def _length(meta: dict[str, Any], length: int, path: str) -> list[str]:
    if "min" in meta and length < meta["min"]:
        return [f"{path}: length {length} < min {meta['min']}"]
    if "max" in meta and length > meta["max"]:
        return [f"{path}: length {length} > max {meta['max']}"]
    return []


def bound(shape: str, *path: str) -> int:
    """The model's ``max`` of a shape or of a member under it (a path of members; ``key`` or ``value`` of a
    map): characters of a string, entries of a map or list."""
    found = MODEL.shape_for(shape)
    for step in path:
        found = getattr(found, step) if step in ("key", "value") else found.members[step]  # type: ignore[attr-defined]
    return int(found.metadata["max"])
