"""Configuration: defaults, the documented example, and one clear error per bad key."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import Config, ConfigError, load_config, parse_config, tag_label_name

ROOT = Path(__file__).resolve().parent.parent


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
    assert config.aws.max_concurrency == 32 and config.aws.read_timeout_seconds == 2.0
    assert config.collection.min_interval_seconds == 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("targets:\n  - region: 5\n", "targets[0].region: expected a string, got an integer"),
        ("targets:\n  - region: us-east-1\n  - regoin: x\n", "targets[1].regoin: unknown key"),
        ("targets: {}\n", "targets: expected a list, got a mapping"),
        ("targets: []\n", "targets: must list at least one target"),
        ("targets:\n  - region: ''\n", "targets[0].region: must not be empty"),
        ("targets:\n  - role_arn: arn:aws:iam::1:role/x\n", "targets[0].role_arn: expected an IAM role ARN"),
        ("targets:\n  - external_id: abc\n", "targets[0].external_id: needs targets[0].role_arn"),
        ("targets:\n  - name: a\n  - name: a\n", "targets: two targets share the name 'a'"),
        ("discovery:\n  application_states: [RUNNING]\n", "discovery.application_states: unknown value 'RUNNING'"),
        ("discovery:\n  application_name_regex: '('\n", "discovery.application_name_regex: invalid regular"),
        ("discovery:\n  application_ids: a1\n", "discovery.application_ids: expected a list, got a string"),
        ("discovery:\n  terminated_session_max_age_seconds: -1\n", "terminated_session_max_age_seconds: must not be"),
        ("metrics:\n  tags_info_metric: 'yes'\n", "metrics.tags_info_metric: expected true or false, got a string"),
        ("metrics:\n  tag_labels: [a-b, a.b]\n", "metrics.tag_labels: tag keys 'a-b' and 'a.b' both map to"),
        ("aws:\n  max_concurrency: 0\n", "aws.max_concurrency: must be greater than 0"),
        ("aws:\n  max_concurrency: 2.5\n", "aws.max_concurrency: expected an integer, got a number"),
        ("aws:\n  max_attempts: true\n", "aws.max_attempts: expected an integer, got a boolean"),
        ("aws:\n  read_timeout_seconds: fast\n", "aws.read_timeout_seconds: expected a number, got a string"),
        ("collection:\n  timeout_seconds: 0\n", "collection.timeout_seconds: must be greater than 0"),
        ("colection: {}\n", "colection: unknown key"),
        ("- a\n- b\n", "configuration: expected a mapping, got a list"),
        ("targets: [\n", "invalid YAML at line"),
    ],
)
def test_bad_configuration_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


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
