"""The YAML configuration (SPEC section 3): defaults, validation, one clear error per problem.

Each section is a frozen dataclass; a field's type says what YAML type it takes and its
``check`` metadata says which values are valid. ``load_config`` walks the dataclasses, so a new key
is one field, and every error names its key path (``targets[0].region: expected a string``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

APPLICATION_STATES = ("CREATING", "CREATED", "STARTING", "STARTED", "STOPPING", "STOPPED", "TERMINATED")
SESSION_STATES = ("SUBMITTED", "STARTING", "STARTED", "IDLE", "BUSY", "FAILED", "TERMINATING", "TERMINATED")
TERMINAL_SESSION_STATES = ("FAILED", "TERMINATED")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line naming the key path and the reason."""


# --- value checks: each returns an error text, or None when the value is fine ---------------------


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _regex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as err:
        return f"invalid regular expression: {err}"
    return None


def _one_of(allowed: tuple[str, ...]) -> Callable[[tuple[str, ...]], str | None]:
    def check(values: tuple[str, ...]) -> str | None:
        bad = [value for value in values if value not in allowed]
        return f"unknown value {bad[0]!r}, expected one of {', '.join(allowed)}" if bad else None

    return check


def _role_arn(value: str | None) -> str | None:
    if value is None or re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/.+", value):
        return None
    return "expected an IAM role ARN like arn:aws:iam::123456789012:role/NAME"


def _unique_label_names(keys: tuple[str, ...]) -> str | None:
    seen: dict[str, str] = {}
    for key in keys:
        name = tag_label_name(key)
        if name in seen:
            return f"tag keys {seen[name]!r} and {key!r} both map to label {name!r}"
        seen[name] = key
    return None


def _check(check: Callable[[Any], str | None]) -> dict[str, Any]:
    return {"check": check}


def tag_label_name(tag_key: str) -> str:
    """``aws:cloudformation:stack-name`` -> ``tag_aws_cloudformation_stack_name`` (SPEC section 3)."""
    return "tag_" + re.sub(r"[^a-zA-Z0-9_]", "_", tag_key)


# --- the configuration tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetConfig:
    region: str | None = None
    endpoint_url: str | None = None
    role_arn: str | None = field(default=None, metadata=_check(_role_arn))
    external_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class DiscoveryConfig:
    application_ids: tuple[str, ...] = ()
    application_name_regex: str | None = field(default=None, metadata=_check(_regex))
    application_states: tuple[str, ...] = field(default=(), metadata=_check(_one_of(APPLICATION_STATES)))
    terminated_session_max_age_seconds: float = field(default=3600, metadata=_check(_not_negative))
    # The first listing after a start looks back this far on creation time: how long a session can live.
    session_lookback_seconds: float = field(default=86400, metadata=_check(_not_negative))


@dataclass(frozen=True)
class MetricsConfig:
    tag_labels: tuple[str, ...] = field(default=(), metadata=_check(_unique_label_names))
    tags_info_metric: bool = True


@dataclass(frozen=True)
class RateLimitConfig:
    requests_per_second: float = field(default=0, metadata=_check(_not_negative))  # 0: no limit
    burst: int = field(default=10, metadata=_check(_positive))


@dataclass(frozen=True)
class RateLimitsConfig:
    """Per operation, named as AWS names it (and as the `operation` label shows it)."""

    ListApplications: RateLimitConfig = RateLimitConfig()  # AWS's operation names
    ListSessions: RateLimitConfig = RateLimitConfig()
    GetSession: RateLimitConfig = RateLimitConfig()

    def by_operation(self) -> dict[str, RateLimitConfig]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class AwsConfig:
    max_concurrency: int = field(default=16, metadata=_check(_positive))
    max_attempts: int = field(default=5, metadata=_check(_positive))
    connect_timeout_seconds: float = field(default=5, metadata=_check(_positive))
    read_timeout_seconds: float = field(default=10, metadata=_check(_positive))
    max_pages: int = field(default=1000, metadata=_check(_positive))
    rate_limits: RateLimitsConfig = RateLimitsConfig()


@dataclass(frozen=True)
class CollectionConfig:
    timeout_seconds: float = field(default=25, metadata=_check(_positive))
    min_interval_seconds: float = field(default=0, metadata=_check(_not_negative))
    # 0: collect on each scrape; more: collect in the background this often, scrapes serve the snapshot.
    interval_seconds: float = field(default=0, metadata=_check(_not_negative))


@dataclass(frozen=True)
class Config:
    targets: tuple[TargetConfig, ...] = (TargetConfig(),)
    discovery: DiscoveryConfig = DiscoveryConfig()
    metrics: MetricsConfig = MetricsConfig()
    aws: AwsConfig = AwsConfig()
    collection: CollectionConfig = CollectionConfig()


# --- loading ----------------------------------------------------------------------------------------


def load_config(path: str | Path, *, missing_ok: bool = False) -> Config:
    """Read and validate a configuration file; raises ConfigError naming the file and key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return Config()
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    try:
        return parse_config(text)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def parse_config(text: str) -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"invalid YAML{where}: {problem}") from None
    if data is None:
        return Config()
    config: Config = _build(Config, data, "")
    if not config.targets:
        raise ConfigError("targets: must list at least one target (omit the key for the default)")
    for index, target in enumerate(config.targets):
        if target.external_id and not target.role_arn:
            raise ConfigError(f"targets[{index}].external_id: needs targets[{index}].role_arn")
    names = [target.name for target in config.targets if target.name]
    if len(names) != len(set(names)):
        raise ConfigError(f"targets: two targets share the name {next(n for n in names if names.count(n) > 1)!r}")
    return config


def _build(cls: type[Any], data: object, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'configuration'}: expected a mapping, got {_yaml_type(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            where = f"{path}." if path else ""
            raise ConfigError(f"{where}{key}: unknown key (known keys: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in data:
            continue
        value = _convert(hints[name], data[name], key_path)
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{key_path}: {problem}")
        values[name] = value
    return cls(**values)


def _convert(hint: Any, value: object, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (inner,) = (arg for arg in args if arg is not type(None))
        return _convert(inner, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_yaml_type(value)}")
        return tuple(_convert(args[0], item, f"{path}[{index}]") for index, item in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_yaml_type(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_yaml_type(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_yaml_type(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_yaml_type(value)}")
        if not value:
            raise ConfigError(f"{path}: must not be empty")
        return value
    raise TypeError(f"unsupported configuration type {hint!r}")  # a programming error, not user input


def _yaml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    return names.get(type(value), type(value).__name__)
