"""Configuration: defaults, the documented example, and one clear error per bad key."""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.schema import Config, ConfigError, load_config, parse_config, tag_label_name

ROOT = Path(__file__).resolve().parents[2]


def test_empty_file_means_all_defaults() -> None:
    assert parse_config("") == Config()
    assert parse_config("# only a comment\n") == Config()


def test_missing_default_file_means_defaults_but_a_named_file_must_exist(tmp_path: Path) -> None:
    assert load_config(tmp_path / "config.yaml", missing_ok=True) == Config()
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")


def test_example_config_holds_every_key_with_its_default() -> None:
    text = (ROOT / "config.yaml").read_text()
    assert load_config(ROOT / "config.yaml") == Config()

    def keys(cls: type[Any], prefix: str = "") -> set[str]:
        found = set()
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            path = f"{prefix}{f.name}"
            found.add(path)
            hint = hints[f.name]
            inner = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
            if dataclasses.is_dataclass(inner):
                found |= keys(typing.cast(type[Any], inner), f"{path}.")
        return found

    def yaml_keys(data: Any, prefix: str = "") -> set[str]:
        found = set()
        for key, value in data.items():
            found.add(f"{prefix}{key}")
            if isinstance(value, dict):
                found |= yaml_keys(value, f"{prefix}{key}.")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                found |= yaml_keys(value[0], f"{prefix}{key}.")
        return found

    assert yaml_keys(yaml.safe_load(text)) == keys(Config)
    for line in text.splitlines():
        is_leaf_key = ":" in line and not line.lstrip().startswith("#") and not line.rstrip().endswith(":")
        if is_leaf_key:
            assert "#" in line, f"config.yaml key without a one-line comment: {line!r}"


def test_values_are_read() -> None:
    config = parse_config(
        """
targets:
  - region: eu-west-1
    endpoint_url: http://127.0.0.1:1234
    name: prod
  - region: us-east-1
discovery:
  application_ids: [a1, a2]
  application_name_regex: "analytics-.*"
  application_states: [STARTED, STOPPED]
  terminated_session_max_age_seconds: 600
metrics:
  tag_labels: [team, "aws:cloudformation:stack-name"]
  tags_info_metric: false
  prices:
    currency: EUR
    table:
      - {region: eu-central-1, architecture: ARM64, vcpu_hour: 0.05, memory_gb_hour: 0.005, storage_gb_hour: 0.0001}
aws: {max_concurrency: 32, max_attempts: 3, connect_timeout_seconds: 1.5, read_timeout_seconds: 2}
collection: {timeout_seconds: 9, min_interval_seconds: 5}
"""
    )
    assert [t.region for t in config.targets] == ["eu-west-1", "us-east-1"]
    assert config.targets[0].name == "prod"
    assert config.discovery.application_ids == ("a1", "a2")
    assert config.discovery.terminated_session_max_age_seconds == 600.0
    assert config.metrics.tag_labels == ("team", "aws:cloudformation:stack-name")
    assert config.metrics.tags_info_metric is False
    prices = config.metrics.prices
    assert prices.currency == "EUR"
    assert [(p.region, p.architecture, p.vcpu_hour, p.memory_gb_hour, p.storage_gb_hour) for p in prices.table] == [
        ("eu-central-1", "ARM64", 0.05, 0.005, 0.0001)
    ]
    assert config.aws.max_concurrency == 32 and config.aws.read_timeout_seconds == 2.0
    assert config.collection.min_interval_seconds == 5.0


ARN = "arn:aws:iam::210987654321:role/r"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # types and unknown keys
        ("targets:\n  - region: 5\n", "targets[0].region: expected a string, got an integer"),
        ("targets:\n  - region: us-east-1\n  - regoin: x\n", "targets[1].regoin: unknown key"),
        ("targets: {}\n", "targets: expected a list, got a mapping"),
        ("discovery:\n  application_ids: a1\n", "discovery.application_ids: expected a list, got a string"),
        ("metrics:\n  tags_info_metric: 'yes'\n", "metrics.tags_info_metric: expected true or false, got a string"),
        ("aws:\n  max_concurrency: 2.5\n", "aws.max_concurrency: expected an integer, got a number"),
        ("aws:\n  max_attempts: true\n", "aws.max_attempts: expected an integer, got a boolean"),
        ("aws:\n  read_timeout_seconds: fast\n", "aws.read_timeout_seconds: expected a number, got a string"),
        ("aws:\n  read_timeout_seconds: 2024-01-01\n", "aws.read_timeout_seconds: expected a number, got a date"),
        ("colection: {}\n", "colection: unknown key"),
        ("discovery: {7: x}\n", "discovery.7: unknown key"),
        ('metrics: {"a\\nb": x}\n', "metrics.'a\\nb': unknown key"),
        ("- a\n- b\n", "configuration: expected a mapping, got a list"),
        # prices
        ("metrics: {prices: {currency: usd}}\n", "metrics.prices.currency: expected a currency code like USD"),
        ("metrics: {prices: {table: [{architecture: ARM64}]}}\n", "metrics.prices.table[0].region: must be set"),
        ("metrics: {prices: {table: [{region: mars}]}}\n", "metrics.prices.table[0].region: 'mars' is not an AWS"),
        ("metrics: {prices: {table: [{region: us-east-1, architecture: arm}]}}\n",
         "metrics.prices.table[0].architecture: expected one of X86_64, ARM64, got 'arm'"),
        ("metrics: {prices: {table: [{region: us-east-1, vcpu_hour: -0.1}]}}\n",
         "metrics.prices.table[0].vcpu_hour: must be from 0 to 100"),
        ("metrics: {prices: {table: [{region: us-east-1, memory_gb_hour: .nan}]}}\n",
         "metrics.prices.table[0].memory_gb_hour: must be a finite number from 0 to 100"),
        ("metrics: {prices: {table: [{region: us-east-1}, {region: us-east-1, architecture: X86_64}]}}\n",
         "metrics.prices.table[1]: us-east-1 X86_64 is also priced by table[0]"),
        ("metrics: {prices: {table: {}}}\n", "metrics.prices.table: expected a list, got a mapping"),
        # targets
        ("targets: []\n", "targets: must list at least one target"),
        ("targets:\n  - region: ''\n", "targets[0].region: must not be empty"),
        ("targets:\n  - region: eu west 1\n", "targets[0].region: 'eu west 1' is not an AWS region name"),
        ("targets:\n  - region: EU-WEST-1\n", "targets[0].region: 'EU-WEST-1' is not an AWS region name"),
        ("targets:\n  - region: us-east-\u0661\n", "targets[0].region: 'us-east-\u0661' is not an AWS region"),
        ("targets:\n  - endpoint_url: not a url\n", "targets[0].endpoint_url: expected an http:// or https://"),
        ("targets:\n  - endpoint_url: 'http://[::1'\n", "targets[0].endpoint_url: not a valid URL"),
        ("targets:\n  - endpoint_url: http://h:99999\n", "targets[0].endpoint_url: not a valid URL"),
        ("targets:\n  - endpoint_url: http://h:0\n", "targets[0].endpoint_url: the port must be from 1 to 65535"),
        ("targets:\n  - endpoint_url: ftp://h\n", "targets[0].endpoint_url: expected an http:// or https://"),
        ("targets:\n  - endpoint_url: 'https://'\n", "targets[0].endpoint_url: expected a URL with a host"),
        ("targets:\n  - endpoint_url: 'http://h/?token=x'\n", "targets[0].endpoint_url: must not have a query"),
        ("targets:\n  - endpoint_url: 'http://a_b.example'\n", "targets[0].endpoint_url: not a valid endpoint URL"),
        ("targets:\n  - role_arn: arn:aws:iam::1:role/x\n", "targets[0].role_arn: expected an IAM role ARN"),
        ("targets:\n  - external_id: abc\n", "targets[0].external_id: needs targets[0].role_arn"),
        (f"targets:\n  - role_arn: {ARN}\n    external_id: 'a b'\n", "targets[0].external_id: expected 2 to 1224"),
        (f"targets:\n  - role_arn: {ARN}\n    external_id: ext-\u00e9\n", "targets[0].external_id: expected 2 to"),
        ("targets:\n  - name: a\n  - name: a\n", "targets[1].name: 'a' is also the name of targets[0]"),
        ("targets:\n  - name: \"a\\tb\"\n", "targets[0].name: must not contain control characters"),
        ("targets:\n  - region: us-east-1\n  - region: us-east-1\n    endpoint_url: http://vpce.example\n",
         "targets[1]: collects the exporter's own account in region us-east-1 under the same default name as "
         "targets[0]; give each of them a distinct name"),
        ("targets:\n  - {}\n  - {}\n", "targets[1]: collects the exporter's own account in the default region"),
        (f"targets:\n  - {{region: eu-west-1, role_arn: {ARN}}}\n  - {{region: eu-west-1, role_arn: {ARN}x}}\n",
         "targets[1]: collects account 210987654321 in region eu-west-1 under the same default name"),
        (f"targets:\n  - {{region: eu-west-1, role_arn: {ARN}}}\n  - {{name: 210987654321/eu-west-1}}\n",
         "targets[1].name: '210987654321/eu-west-1' is also the default name of targets[0]"),
        ("targets:\n" + "  - {}\n" * 257, "targets: must have at most 256 entries, got 257"),
        # discovery
        ("discovery:\n  application_states: [RUNNING]\n", "discovery.application_states: unknown value 'RUNNING'"),
        ("discovery:\n  application_ids: [ok1, Bad-Id]\n", "discovery.application_ids[1]: expected an application ID"),
        ("discovery:\n  application_name_regex: '('\n", "discovery.application_name_regex: invalid regular"),
        ("discovery:\n  application_name_regex: 'a{99999999999}'\n", "application_name_regex: invalid regular"),
        ("discovery:\n  application_name_regex: '" + "(" * 600 + ")" * 600 + "'\n",
         "discovery.application_name_regex: must be at most 1000 characters long"),
        ("discovery:\n  terminated_session_max_age_seconds: -1\n",
         "discovery.terminated_session_max_age_seconds: must be from 0 to 2592000 (30 days)"),
        ("discovery:\n  terminated_session_max_age_seconds: 1000000000000\n",
         "terminated_session_max_age_seconds: must be from 0 to"),
        ("discovery:\n  terminated_session_max_age_seconds: .nan\n",
         "terminated_session_max_age_seconds: must be a finite number"),
        # metrics
        ("metrics:\n  tag_labels: [a-b, a.b]\n", "metrics.tag_labels: tag keys 'a-b' and 'a.b' both map to"),
        ("metrics:\n  tag_labels: [" + ", ".join(f"t{i}" for i in range(51)) + "]\n",
         "metrics.tag_labels: must have at most 50 entries, got 51"),
        ("metrics:\n  tag_labels: [" + "k" * 129 + "]\n", "metrics.tag_labels[0]: must be at most 128 characters"),
        # aws
        ("aws:\n  max_concurrency: 0\n", "aws.max_concurrency: must be from 1 to 256"),
        ("aws:\n  max_concurrency: " + "9" * 40 + "\n", "aws.max_concurrency: must be from 1 to 256"),
        ("aws:\n  max_attempts: 21\n", "aws.max_attempts: must be from 1 to 20"),
        ("aws:\n  connect_timeout_seconds: 61\n", "aws.connect_timeout_seconds: must be greater than 0 and at most 60"),
        ("aws:\n  read_timeout_seconds: -.inf\n", "aws.read_timeout_seconds: must be a finite number"),
        # collection
        ("collection:\n  timeout_seconds: 0\n", "collection.timeout_seconds: must be greater than 0 and at most 300"),
        ("collection:\n  timeout_seconds: .inf\n", "collection.timeout_seconds: must be a finite number"),
        ("collection:\n  timeout_seconds: 1.0e+30\n", "collection.timeout_seconds: must be greater than 0"),
        ("collection:\n  timeout_seconds: " + "9" * 400 + "\n", "collection.timeout_seconds: number too large"),
        ("collection:\n  min_interval_seconds: .inf\n", "collection.min_interval_seconds: must be a finite number"),
        ("collection:\n  min_interval_seconds: 3601\n", "collection.min_interval_seconds: must be from 0 to 3600"),
        # the YAML itself
        ("targets: [\n", "invalid YAML at line"),
        ("aws: {max_attempts: 1}\naws: {max_attempts: 2}\n", "invalid YAML at line 2, column 1: duplicate key 'aws'"),
        ("a: !!python/object:os.system x\n", "invalid YAML at line 1, column 4: could not determine a constructor"),
        ("a: \x01\n", "invalid YAML"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "invalid YAML: nested deeper than 32 levels"),
        ("a: &a [*a]\n", "invalid YAML: more than 100000 values"),
        ("".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(10)),
         "invalid YAML: more than 100000 values (aliases expanded)"),
        ("aws:\n  max_attempts: " + "9" * 5000 + "\n", "invalid YAML"),
        # YAML 1.1 reads 1e-4 as text: the message says how to write the number
        ("collection:\n  timeout_seconds: 1e1\n",
         "collection.timeout_seconds: expected a number, got the string '1e1' (YAML 1.1 reads an exponent"),
    ],
)
def test_bad_configuration_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-2", "ap-southeast-5", "us-gov-west-1", "cn-north-1", "us-isob-east-1",
               "eusc-de-east-1", "il-central-1"],
)
def test_every_partition_s_region_names_are_accepted(region: str) -> None:
    assert parse_config(f"targets:\n  - region: {region}\n").targets[0].region == region


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1234", "https://emr-serverless.eu-west-1.amazonaws.com", "http://[::1]:8080/",
            "https://vpce-1.emr-serverless.us-east-1.vpce.amazonaws.com/prefix", "http://user:pass@localhost:80"],
)
def test_endpoint_urls_that_botocore_takes_are_accepted(url: str) -> None:
    assert parse_config(f"targets:\n  - endpoint_url: '{url}'\n").targets[0].endpoint_url == url


def test_targets_with_distinct_names_or_accounts_may_share_a_region() -> None:
    config = parse_config(f"""
targets:
  - {{region: us-east-1, name: a}}
  - {{region: us-east-1, name: b, endpoint_url: http://vpce.example}}
  - {{region: us-east-1}}
  - {{region: us-east-1, role_arn: {ARN}}}
  - {{region: us-east-1, role_arn: arn:aws:iam::123456789012:role/r}}
  - {{region: eu-west-1}}
""")
    assert len(config.targets) == 6


def test_a_bad_endpoint_url_is_never_echoed() -> None:
    # urllib's own message would show the "port", which here is the password of a URL missing its host.
    with pytest.raises(ConfigError) as caught:
        parse_config("targets:\n  - endpoint_url: 'http://user:hunter2hunter2'\n")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config("targets:\n  - role_arn: arn:aws:iam::210987654321:role/r\n    external_id: 'hunter2 x'\n")
    assert "hunter2" not in str(caught.value)


def test_yaml_anchors_within_the_limits_are_fine() -> None:
    config = parse_config("""
targets: [&eu {region: eu-west-1, name: a}]
metrics:
  tag_labels: &tags [team, owner]
discovery:
  application_states: &states [STARTED]
""")
    assert config.targets[0].region == "eu-west-1" and config.metrics.tag_labels == ("team", "owner")


def test_the_file_must_be_a_readable_regular_file_of_utf8_text(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading must not wait for a writer
    cases = {
        fifo: "not a regular file (a device, FIFO or socket)",
        Path("/dev/zero"): "not a regular file (a device, FIFO or socket)",
        tmp_path: "not a regular file (a directory)",
    }
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 30_000)
    cases[big] = "larger than 256 KiB"
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"targets:\n  - name: caf\xe9\n")
    cases[latin1] = "not UTF-8 text (byte 22)"
    for path, reason in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_config(path, missing_ok=True)
        assert str(caught.value) == f"{path}: cannot read: {reason}"


def test_a_symlinked_file_is_read(tmp_path: Path) -> None:
    # Kubernetes mounts a ConfigMap's keys as symlinks.
    (tmp_path / "real.yaml").write_text("aws: {max_attempts: 3}\n")
    (tmp_path / "config.yaml").symlink_to(tmp_path / "real.yaml")
    assert load_config(tmp_path / "config.yaml").aws.max_attempts == 3


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("aws:\n  max_attempts: many\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: aws\.max_attempts: expected an integer"):
        load_config(path)


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("aws:cloudformation:stack-name", "tag_aws_cloudformation_stack_name"),
        ("team", "tag_team"),
        ("Cost Center", "tag_Cost_Center"),
        ("1st", "tag_1st"),
        ("équipe", "tag__quipe"),
    ],
)
def test_tag_label_names(key: str, label: str) -> None:
    assert tag_label_name(key) == label


def test_the_default_region_is_checked_when_the_targets_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    from exporter.wiring import build_runner

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu west 1")
    with pytest.raises(ConfigError, match=r"^targets\[0\]\.region: the default region 'eu west 1' is not an AWS"):
        build_runner(parse_config(""))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(ConfigError, match=r"^targets\[1\]: collects the exporter's own account in region eu-west-1"):
        build_runner(parse_config("targets: [{}, {region: eu-west-1}]"))


# --- defaults that keep the exporter inside AWS's quotas ---------------------------------------------------

# What AWS documents per account and region (requests per second, burst); ListSessions and GetSession have none.
DOCUMENTED_QUOTAS = {"ListApplications": (10, 50), "GetApplication": (10, 50), "ListJobRuns": (1, 25),
                     "GetJobRun": (10, 50)}


def test_default_rate_limits_take_half_of_each_documented_quota_and_leave_the_others_free() -> None:
    limits = Config().aws.rate_limits.by_operation()
    assert set(limits) == {*DOCUMENTED_QUOTAS, "ListSessions", "GetSession"}
    for operation, (rate, burst) in DOCUMENTED_QUOTAS.items():
        assert limits[operation].requests_per_second == rate / 2, operation
        assert 1 <= limits[operation].burst <= burst / 2, operation
    assert limits["ListSessions"].requests_per_second == limits["GetSession"].requests_per_second == 0


def test_by_default_scrapes_a_few_seconds_apart_share_one_collection() -> None:
    assert 1 <= Config().collection.min_interval_seconds <= 10


def test_a_rate_limit_key_left_out_keeps_the_operation_s_default() -> None:
    limits = parse_config("""
aws:
  rate_limits:
    ListApplications: {burst: 40}
    GetApplication: {requests_per_second: 8}
    ListJobRuns: {requests_per_second: 0}
    GetSession: {requests_per_second: 2}
""").aws.rate_limits
    assert (limits.ListApplications.requests_per_second, limits.ListApplications.burst) == (5, 40)
    assert (limits.GetApplication.requests_per_second, limits.GetApplication.burst) == (8, 25)
    assert limits.ListJobRuns.requests_per_second == 0  # off
    assert (limits.GetSession.requests_per_second, limits.GetSession.burst) == (2, 10)
    assert limits.GetJobRun == Config().aws.rate_limits.GetJobRun


# --- a section or a list left empty (its keys commented out) -----------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "discovery:\n",
        "discovery:\n  # application_ids: []\n  # session_lookback_seconds: 86400\n",
        "aws:\n",
        "aws:\n  rate_limits:\n",
        "aws:\n  rate_limits:\n    GetApplication:\n    ListSessions: null\n",
        "metrics:\n",
        "metrics:\n  prices:\n",
        "metrics:\n  prices:\n    table:\n",
        "metrics:\n  tag_labels:\n",
        "collection:\n",
        "targets:\n",
        "targets:\n#  - region: eu-west-1\n",
        "discovery: ~\naws: ~\nmetrics: ~\ncollection: ~\n",
    ],
)
def test_a_section_or_list_left_empty_takes_its_defaults(text: str) -> None:
    assert parse_config(text) == Config()


def test_the_example_with_every_key_commented_out_is_the_default() -> None:
    # What a user does with the shipped file: comment out keys, keep the section headers.
    header = re.compile(r"\s*[A-Za-z_]+:\s*(#.*)?")
    lines = (ROOT / "config.yaml").read_text().splitlines()
    commented = [line if not line.strip() or line.lstrip().startswith("#") or header.fullmatch(line) else f"# {line}"
                 for line in lines]
    assert any(line.startswith("# ") and ":" in line for line in commented)
    assert parse_config("\n".join(commented)) == Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("collection:\n  timeout_seconds:\n", "collection.timeout_seconds: expected a number, got null"),
        ("aws:\n  rate_limits:\n    GetSession: {burst: null}\n",
         "aws.rate_limits.GetSession.burst: expected an integer, got null"),
        ("metrics:\n  tags_info_metric:\n", "metrics.tags_info_metric: expected true or false, got null"),
    ],
)
def test_a_value_left_empty_is_still_an_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text)

