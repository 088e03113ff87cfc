"""The YAML configuration: defaults, validation, one clear error per problem.

Each section is a frozen dataclass; a field's type says what YAML type it takes and its
``check`` metadata says which values are valid. ``load_config`` walks the dataclasses, so a new key
is one field, and every error names its key path (``targets[0].region: expected a string``).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import re
import stat
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.utils
import yaml

from exporter.model.kinds import APPLICATION_STATES, JOB_RUN_MODES, ObjectKind


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line naming the key path and the reason."""

    def __init__(self, message: str) -> None:
        # One line whatever a key or a library put in it: a log line or a terminal line stays whole.
        super().__init__(" ".join(message.split()))


# --- limits on the file as a whole ------------------------------------------------------------------

MAX_FILE_BYTES = 256 * 1024  # a configuration of 256 targets is 60 KiB; YAML parsing time grows with size
MAX_YAML_NODES = 100_000  # values after expanding aliases: a "billion laughs" file stops here
MAX_YAML_DEPTH = 32  # nesting; the configuration itself is 4 levels deep

# --- value checks: each returns an error text, or None when the value is fine ---------------------
#
# A check on a list may name one of its items: a text starting with "[" or "." continues the key path
# (``targets`` + ``[1].name: ...``).

Check = Callable[[Any], "str | None"]

# AWS's region names in every partition (aws, aws-cn, aws-us-gov, aws-iso*, aws-eusc): us-east-1,
# cn-north-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1. ASCII: \d and \w would take any script's.
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}", re.ASCII)
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
EXTERNAL_ID_PATTERN = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)  # AWS's own constraint (sts:AssumeRole)
APPLICATION_ID_PATTERN = re.compile(r"[0-9a-z]{1,64}")  # the emr-serverless API's constraint
MAX_REGEX_LENGTH = 1000
MAX_TAG_KEY_LENGTH = 128  # AWS's limit on a tag key
MAX_TERMINATED_PER_APPLICATION = 100_000
# A metric name (Prometheus' legacy charset): an entry of metrics.allowlist / denylist written so is an exact
# family name, anything else a regular expression.
METRIC_NAME_PATTERN = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
MAX_FAMILY_LIST_ENTRIES = 500


def _all(*checks: Check) -> Check:
    """Several checks on one value, the first problem wins."""

    def check(value: Any) -> str | None:
        for one in checks:
            problem = one(value)
            if problem:
                return problem
        return None

    return check


def _between(low: float, high: float, *, low_open: bool = False, unit: str = "") -> Check:
    """A number in [low, high] (or (low, high]); NaN and infinities are never in range."""
    text = (f"greater than {_number(low)} and at most {_number(high)}{unit}" if low_open
            else f"from {_number(low)} to {_number(high)}{unit}")

    def check(value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number {text}"
        in_range = (low < value if low_open else low <= value) and value <= high
        return None if in_range else f"must be {text}"

    return check


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _at_most_items(limit: int) -> Check:
    def check(values: tuple[object, ...]) -> str | None:
        return f"must have at most {limit} entries, got {len(values)}" if len(values) > limit else None

    return check


def _each(item_check: Check) -> Check:
    def check(values: tuple[object, ...]) -> str | None:
        for index, item in enumerate(values):
            problem = item_check(item)
            if problem:
                return f"[{index}]: {problem}"
        return None

    return check


def _max_length(limit: int) -> Check:
    def check(value: str | None) -> str | None:
        too_long = value is not None and len(value) > limit
        return f"must be at most {limit} characters long" if too_long else None

    return check


def _printable(value: str | None) -> str | None:
    return None if value is None or value.isprintable() else "must not contain control characters"


def _matches(pattern: re.Pattern[str], expected: str) -> Check:
    def check(value: str | None) -> str | None:
        return None if value is None or pattern.fullmatch(value) else f"expected {expected}"

    return check


def region_problem(value: str | None) -> str | None:
    """Why ``value`` is not an AWS region name, or None."""
    if value is None or (len(value) <= 32 and REGION_PATTERN.fullmatch(value)):
        return None
    return f"{_quote(value)} is not an AWS region name like us-east-1"


def _endpoint_url(value: str | None) -> str | None:
    # Never echo the URL or urllib's message: either may hold the userinfo's password.
    if value is None:
        return None
    if len(value) > 2048:
        return "must be at most 2048 characters long"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "not a valid URL (a bad port or IPv6 address)"
    if parts.scheme not in ("http", "https"):
        return "expected an http:// or https:// URL"
    if not parts.hostname:
        return "expected a URL with a host, like https://HOST[:PORT]"
    if port == 0:
        return "the port must be from 1 to 65535"
    if parts.query or parts.fragment:
        return "must not have a query or a fragment"
    # botocore's own test, or boto3 rejects it when the client is made
    if not (botocore.utils.is_valid_endpoint_url(value) or botocore.utils.is_valid_ipv6_endpoint_url(value)):
        return "not a valid endpoint URL (a bad host name)"
    return None


def _regex(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_REGEX_LENGTH:
        return f"must be at most {MAX_REGEX_LENGTH} characters long"
    try:
        re.compile(value)
    except (re.error, OverflowError, RecursionError, ValueError) as err:  # a{99999999999} overflows
        return f"invalid regular expression: {err}"
    return None


def _one_of(allowed: tuple[str, ...]) -> Check:
    def check(values: tuple[str, ...]) -> str | None:
        bad = [value for value in values if value not in allowed]
        return f"unknown value {_quote(bad[0])}, expected one of {', '.join(allowed)}" if bad else None

    return check


def _unique_label_names(keys: tuple[str, ...]) -> str | None:
    seen: dict[str, str] = {}
    for key in keys:
        name = tag_label_name(key)
        if name in seen:
            return f"tag keys {_quote(seen[name])} and {_quote(key)} both map to label {_quote(name)}"
        seen[name] = key
    return None


def _targets(targets: tuple[TargetConfig, ...]) -> str | None:
    if not targets:
        return "must list at least one target (omit the key for the default)"
    for index, target in enumerate(targets):
        if target.external_id and not target.role_arn:
            return f"[{index}].external_id: needs targets[{index}].role_arn"
    return duplicate_target(targets, default_region=None)


def duplicate_target(targets: Sequence[TargetConfig], *, default_region: str | None) -> str | None:
    """Two targets that would export the same ``target`` label, and so the same series, or None.

    A target without a name is called "<account_id>/<region>": the account of its role_arn, or of the
    exporter's own credentials when it has none. Both are known here but the latter's number.
    """
    named: dict[str, int] = {}
    unnamed: dict[tuple[str | None, str | None], int] = {}
    for index, target in enumerate(targets):
        if target.name is not None:
            if target.name in named:
                return f"[{index}].name: {_quote(target.name)} is also the name of targets[{named[target.name]}]"
            named[target.name] = index
            continue
        region = target.region or default_region
        account = target.role_arn.split(":")[4] if target.role_arn else None
        if (region, account) in unnamed:
            where = f"region {region}" if region else "the default region"
            whose = f"account {account}" if account else "the exporter's own account"
            return (f"[{index}]: collects {whose} in {where} under the same default name as "
                    f"targets[{unnamed[region, account]}]; give each of them a distinct name")
        unnamed[region, account] = index
    for (region, account), index in unnamed.items():
        default_name = f"{account}/{region}"
        if account and region and default_name in named:
            return (f"[{named[default_name]}].name: {_quote(default_name)} is also the default name of "
                    f"targets[{index}]")
    return None


def _check(check: Check) -> dict[str, Any]:
    return {"check": check}


def _quote(value: object, limit: int = 60) -> str:
    """A value in an error line: quoted, escaped, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tag_label_name(tag_key: str) -> str:
    """``aws:cloudformation:stack-name`` -> ``tag_aws_cloudformation_stack_name``."""
    return "tag_" + re.sub(r"[^a-zA-Z0-9_]", "_", tag_key)


# --- the configuration tree -------------------------------------------------------------------------
#
# Bounds are documented in config.yaml and the README. Every number has an upper bound: past it a
# value is a typo, and an unbounded one crashes or hangs later (a timeout of 1e30 overflows a timer).


@dataclass(frozen=True)
class TargetConfig:
    region: str | None = field(default=None, metadata=_check(region_problem))
    endpoint_url: str | None = field(default=None, metadata=_check(_endpoint_url))
    role_arn: str | None = field(default=None, metadata=_check(
        _matches(ROLE_ARN_PATTERN, "an IAM role ARN like arn:aws:iam::123456789012:role/NAME")))
    external_id: str | None = field(default=None, metadata=_check(
        _matches(EXTERNAL_ID_PATTERN, "2 to 1224 letters, digits or characters of +=,.@:/-")))
    name: str | None = field(default=None, metadata=_check(_all(_max_length(128), _printable)))


@dataclass(frozen=True)
class DiscoveryConfig:
    application_ids: tuple[str, ...] = field(default=(), metadata=_check(_all(
        _at_most_items(1000), _each(_matches(APPLICATION_ID_PATTERN, "an application ID like 00f1abcdef012345")))))
    application_name_regex: str | None = field(default=None, metadata=_check(_regex))
    application_states: tuple[str, ...] = field(default=(), metadata=_check(_one_of(APPLICATION_STATES)))
    terminated_session_max_age_seconds: float = field(default=3600, metadata=_check(
        _between(0, 30 * 86400, unit=" (30 days)")))
    # The first listing after a start looks back this far on creation time: how long a session can live.
    session_lookback_seconds: float = field(default=86400, metadata=_check(
        _between(0, 30 * 86400, unit=" (30 days)")))
    sessions: bool = True  # collect interactive sessions (false: no ListSessions or GetSession call at all)
    job_runs: bool = True  # collect batch and streaming job runs (false: no ListJobRuns or GetJobRun call at all)
    job_run_modes: tuple[str, ...] = field(default=(), metadata=_check(_one_of(JOB_RUN_MODES)))  # empty: both
    terminated_job_run_max_age_seconds: float = field(default=3600, metadata=_check(
        _between(0, 30 * 86400, unit=" (30 days)")))
    # How long a job run can live before it ends (a streaming run lives for days: set it longer where they do).
    job_run_lookback_seconds: float = field(default=86400, metadata=_check(
        _between(0, 30 * 86400, unit=" (30 days)")))
    # Per application, the most recently ended final objects exported; the others are neither fetched nor kept.
    max_terminated_sessions_per_application: int = field(default=1000, metadata=_check(
        _between(0, MAX_TERMINATED_PER_APPLICATION)))
    max_terminated_job_runs_per_application: int = field(default=1000, metadata=_check(
        _between(0, MAX_TERMINATED_PER_APPLICATION)))

    # A kind's keys, as its declaration (exporter.model.kinds) names them.
    def collects(self, kind: ObjectKind[Any, Any]) -> bool:
        return bool(getattr(self, kind.enabled_key))

    def max_age_seconds(self, kind: ObjectKind[Any, Any]) -> float:
        return float(getattr(self, kind.max_age_key))

    def listing_filter(self, kind: ObjectKind[Any, Any]) -> tuple[tuple[str, str], ...]:
        """More request members of the kind's listing: the one mode to list, where only one is wanted."""
        modes = set(getattr(self, kind.modes_key)) if kind.modes_key else set()
        return (("mode", modes.pop()),) if len(modes) == 1 else ()

    def max_terminated(self, kind: ObjectKind[Any, Any]) -> int:
        """Final objects of the kind exported per application at most (0: none)."""
        return int(getattr(self, kind.max_terminated_key))

    def lookback_seconds(self, kind: ObjectKind[Any, Any]) -> float:
        """At least the max age: a restart must find every final object still to be exported."""
        return max(float(getattr(self, kind.lookback_key)), self.max_age_seconds(kind))


ARCHITECTURES = ("X86_64", "ARM64")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")  # ISO 4217, as the currency label shows it


def _one_architecture(value: str) -> str | None:
    return None if value in ARCHITECTURES else f"expected one of {', '.join(ARCHITECTURES)}, got {_quote(value)}"


def _unique_prices(entries: tuple[PriceConfig, ...]) -> str | None:
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        if not entry.region:
            return f"[{index}].region: must be set"
        key = (entry.region, entry.architecture)
        if key in seen:
            return f"[{index}]: {entry.region} {entry.architecture} is also priced by table[{seen[key]}]"
        seen[key] = index
    return None


# A price per hour: 0 (free, or not billed to you) up to 100 in any currency, far above any list price.
_PRICE = _check(_between(0, 100))


@dataclass(frozen=True)
class PriceConfig:
    region: str = field(default="", metadata=_check(region_problem))  # required: checked by PricesConfig
    architecture: str = field(default="X86_64", metadata=_check(_one_architecture))
    vcpu_hour: float = field(default=0, metadata=_PRICE)
    memory_gb_hour: float = field(default=0, metadata=_PRICE)
    storage_gb_hour: float = field(default=0, metadata=_PRICE)


# The default price table, an ESTIMATE: AWS's public on-demand list prices for EMR Serverless in USD
# per hour, as we read them on 2026-11-26 at https://aws.amazon.com/emr/pricing/. Not a quote: check
# the page, and set metrics.prices.table for your regions, currency and discounts.
_LIST_PRICES = {"X86_64": (0.052624, 0.0057785, 0.000111), "ARM64": (0.042094, 0.004628, 0.000111)}
DEFAULT_PRICES = tuple(
    PriceConfig(region, architecture, *hourly)
    for region in ("us-east-1", "us-east-2", "us-west-2")
    for architecture, hourly in _LIST_PRICES.items()
)


@dataclass(frozen=True)
class PricesConfig:
    currency: str = field(default="USD", metadata=_check(_matches(CURRENCY_PATTERN, "a currency code like USD")))
    # Setting the table replaces the default one as a whole.
    table: tuple[PriceConfig, ...] = field(default=DEFAULT_PRICES, metadata=_check(
        _all(_at_most_items(1000), _unique_prices)))


def is_metric_name(entry: str) -> bool:
    """An entry of metrics.allowlist / denylist that names one family exactly, not a regular expression."""
    return METRIC_NAME_PATTERN.fullmatch(entry) is not None


_FAMILY_LIST = _check(_all(_at_most_items(MAX_FAMILY_LIST_ENTRIES), _each(_regex)))


@dataclass(frozen=True)
class MetricsConfig:
    tag_labels: tuple[str, ...] = field(default=(), metadata=_check(_all(
        _at_most_items(50), _each(_max_length(MAX_TAG_KEY_LENGTH)), _unique_label_names)))
    tags_info_metric: bool = True
    prices: PricesConfig = PricesConfig()
    # Which families are exported: names or full-match regular expressions, one list or the other. That each
    # entry selects a family is checked where the families are known (``exporter.metrics.selection``).
    allowlist: tuple[str, ...] = field(default=(), metadata=_FAMILY_LIST)
    denylist: tuple[str, ...] = field(default=(), metadata=_FAMILY_LIST)


def _one_family_list(metrics: MetricsConfig) -> str | None:
    if metrics.allowlist and metrics.denylist:
        return ".denylist: cannot be set together with metrics.allowlist (one or the other, as in kube-state-metrics)"
    return None


@dataclass(frozen=True)
class RateLimitConfig:
    requests_per_second: float = field(default=0, metadata=_check(_between(0, 10_000)))  # 0: no limit
    burst: int = field(default=10, metadata=_check(_between(1, 10_000)))


# Half of what AWS documents per account and region, with half its burst: the exporter leaves the other
# half to what else spends the same quota (consoles, schedulers polling their job runs). An operation
# AWS documents no quota for (ListSessions, GetSession) has no limit: the collection's own bounds hold it
# (one pass per collection.min_interval_seconds at most, aws.max_concurrency calls in flight).
_HALF_OF_10_PER_SECOND_BURST_50 = RateLimitConfig(requests_per_second=5, burst=25)
_HALF_OF_1_PER_SECOND_BURST_25 = RateLimitConfig(requests_per_second=0.5, burst=12)
_NO_LIMIT = RateLimitConfig()


@dataclass(frozen=True)
class RateLimitsConfig:
    """Per operation, named as AWS names it (and as the `operation` label shows it). A key left out of an
    operation's entry keeps that operation's default (``_build``)."""

    ListApplications: RateLimitConfig = _HALF_OF_10_PER_SECOND_BURST_50  # AWS's operation names
    ListSessions: RateLimitConfig = _NO_LIMIT
    GetSession: RateLimitConfig = _NO_LIMIT
    GetApplication: RateLimitConfig = _HALF_OF_10_PER_SECOND_BURST_50
    ListJobRuns: RateLimitConfig = _HALF_OF_1_PER_SECOND_BURST_25
    GetJobRun: RateLimitConfig = _HALF_OF_10_PER_SECOND_BURST_50

    def by_operation(self) -> dict[str, RateLimitConfig]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class AwsConfig:
    max_concurrency: int = field(default=16, metadata=_check(_between(1, 256)))
    max_attempts: int = field(default=5, metadata=_check(_between(1, 20)))
    connect_timeout_seconds: float = field(default=5, metadata=_check(_between(0, 60, low_open=True)))
    read_timeout_seconds: float = field(default=10, metadata=_check(_between(0, 300, low_open=True)))
    max_pages: int = field(default=1000, metadata=_check(_between(1, 100_000)))
    rate_limits: RateLimitsConfig = RateLimitsConfig()


@dataclass(frozen=True)
class CollectionConfig:
    timeout_seconds: float = field(default=25, metadata=_check(_between(0, 300, low_open=True)))
    # Scrapes closer together than this (start to start) share one collection: a scrape storm, a
    # misconfigured scrape interval or an HA pair costs AWS at most one collection per this many seconds.
    min_interval_seconds: float = field(default=5, metadata=_check(_between(0, 3600)))
    # 0: collect on each scrape; more: collect in the background this often, scrapes serve the snapshot.
    interval_seconds: float = field(default=0, metadata=_check(_between(0, 3600)))


@dataclass(frozen=True)
class Config:
    targets: tuple[TargetConfig, ...] = field(default=(TargetConfig(),), metadata=_check(
        _all(_at_most_items(256), _targets)))
    discovery: DiscoveryConfig = DiscoveryConfig()
    metrics: MetricsConfig = field(default=MetricsConfig(), metadata=_check(_one_family_list))
    aws: AwsConfig = AwsConfig()
    collection: CollectionConfig = CollectionConfig()

    def secrets(self) -> list[str]:
        """Values never to show: external IDs and the userinfo of endpoint URLs."""
        found = []
        for target in self.targets:
            if target.external_id:
                found.append(target.external_id)
            userinfo = urlsplit(target.endpoint_url).netloc.rpartition("@")[0] if target.endpoint_url else ""
            found += [userinfo, userinfo.partition(":")[2]] if userinfo else []
        return [secret for secret in found if secret]


# --- loading ----------------------------------------------------------------------------------------


def load_config(path: str | Path, *, missing_ok: bool = False) -> Config:
    """Read and validate a configuration file; raises ConfigError naming the file and key."""
    try:
        text = _read_text(Path(path))
    except FileNotFoundError:
        if missing_ok:
            return Config()
        raise ConfigError(f"{path}: file not found") from None
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    try:
        return parse_config(text)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _read_text(path: Path) -> str:
    # Opened without blocking and checked before reading: a FIFO would hang the start, /dev/zero would
    # never end, a directory is no file.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
            raise ConfigError(f"cannot read: not a regular file ({kind})")
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"cannot read: larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"cannot read: not UTF-8 text (byte {err.start})") from None


def parse_config(text: str) -> Config:
    """Validate a configuration text; raises ConfigError naming the key. Pure: whoever runs the
    configuration registers its secrets for redaction (``exporter.wiring.build_runner``)."""
    data = _load_yaml(text)
    return Config() if data is None else _build(Config, data, "")


def _load_yaml(text: str) -> object:
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(f"larger than {MAX_FILE_BYTES // 1024} KiB")
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count_nodes(node, 0, {})
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels") from None
    except (ValueError, OverflowError) as err:  # PyYAML's int() and date() on absurd scalars
        raise ConfigError(f"invalid YAML: {err}") from None
    finally:
        loader.dispose()


# libyaml when PyYAML has it (its wheels do): ten times faster, and it caps nesting depth itself.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _count_nodes(node: yaml.Node, depth: int, counted: dict[int, int]) -> int:
    """Values under ``node`` with aliases expanded; raises ConfigError past the limits."""
    if depth > MAX_YAML_DEPTH:
        raise ConfigError(f"invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels")
    if id(node) in counted:
        return counted[id(node)]
    counted[id(node)] = MAX_YAML_NODES + 1  # met again while counting its own children: a cycle
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
        _no_duplicate_keys(node)
    total = 1
    for child in children:
        total += _count_nodes(child, depth + 1, counted)
        if total > MAX_YAML_NODES:
            raise ConfigError(f"invalid YAML: more than {MAX_YAML_NODES} values (aliases expanded)")
    counted[id(node)] = total
    return total


def _no_duplicate_keys(node: yaml.MappingNode) -> None:
    # PyYAML keeps the last of two equal keys: a second "aws:" section would silently replace the first.
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            if (key.tag, key.value) in seen:
                mark = key.start_mark
                raise ConfigError(f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: "
                                  f"duplicate key {_quote(key.value)}")
            seen.add((key.tag, key.value))


def _build(cls: type[Any], data: object, path: str, base: Any = None) -> Any:
    """An instance of ``cls`` from ``data``: the keys given, the rest from ``base`` (a section's default
    where it is not the class's own, as for each operation's rate limit) or else the class's defaults."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'configuration'}: expected a mapping, got {_yaml_type(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            where = f"{path}." if path else ""
            raise ConfigError(f"{where}{_key_text(key)}: unknown key (known keys: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in data or (data[name] is None and _null_means_default(hints[name])):
            continue
        section_default = f.default if dataclasses.is_dataclass(f.default) else None
        value = _convert(hints[name], data[name], key_path, section_default)
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            sep = "" if problem.startswith(("[", ".")) else ": "
            raise ConfigError(f"{key_path}{sep}{problem}")
        values[name] = value
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def _null_means_default(hint: Any) -> bool:
    """A section or a list left empty in YAML (null: ``discovery:`` with every key commented out) takes
    its default, as an omitted one does. A scalar left empty stays an error: it is more likely a value
    forgotten than one meant to be the default."""
    return dataclasses.is_dataclass(hint) or typing.get_origin(hint) is tuple


def _key_text(key: object) -> str:
    """A key as the user wrote it when it reads as one, else quoted (a number, a long or odd text)."""
    if isinstance(key, str) and key.isprintable() and 0 < len(key) <= 60 and not key.isspace():
        return key
    return _quote(key)


def _convert(hint: Any, value: object, path: str, section_default: Any = None) -> Any:
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
        return _build(typing.cast(type[Any], hint), value, path, section_default)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_yaml_type(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_yaml_type(value)}")
        return value
    if hint is float:
        if isinstance(value, str) and _YAML11_TEXT_NUMBER.fullmatch(value):
            # YAML 1.1 (PyYAML) reads 1e-4 as text, YAML 1.2 and Prometheus' own configs as a number.
            raise ConfigError(f"{path}: expected a number, got the string {value!r} "
                              f"(YAML 1.1 reads an exponent without a decimal point as text: write 1.0e-4)")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_yaml_type(value)}")
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ConfigError(f"{path}: number too large") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_yaml_type(value)}")
        if not value:
            raise ConfigError(f"{path}: must not be empty")
        return value
    raise TypeError(f"unsupported configuration type {hint!r}")  # a programming error, not user input


_YAML11_TEXT_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+")


def _yaml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    return names.get(type(value), type(value).__name__)
