"""The validation boundary holds objects to the length bounds of botocore's service model of emr-serverless:
a member at the model's bound is accepted, one character (or entry) more makes the object invalid.

The bounds are read here from the model itself (tests.helpers.service_model), not from the exporter.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from exporter.model.session import (
    Application,
    ApplicationDetail,
    InvalidObject,
    Session,
    SessionSummary,
    convert,
)
from tests.helpers.service_model import bound

NOW = datetime(2025, 11, 24, tzinfo=timezone.utc)
ACCOUNT = "123456789012"
APP_ARN = f"arn:aws:emr-serverless:us-east-1:{ACCOUNT}:/applications/app1"
SESSION_ARN = f"{APP_ARN}/sessions/s1"

APPLICATION = {"id": "app1", "arn": APP_ARN, "state": "STARTED", "createdAt": NOW, "updatedAt": NOW,
               "name": "etl", "type": "Spark", "releaseLabel": "emr-7.1.0", "architecture": "X86_64",
               "stateDetails": "fine"}
SUMMARY = {"applicationId": "app1", "sessionId": "s1", "arn": SESSION_ARN, "state": "IDLE", "createdAt": NOW,
           "updatedAt": NOW, "stateDetails": "Session is idle"}
SESSION = {**SUMMARY, "name": "notebook", "releaseLabel": "emr-7.1.0",
           "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/Role", "createdBy": f"arn:aws:iam::{ACCOUNT}:user/a",
           "tags": {"team": "data"}}
DETAIL = {"applicationId": "app1", "updatedAt": NOW, "stateDetails": "fine",
          "maximumCapacity": {"cpu": "400 vCPU", "memory": "3000 GB", "disk": "20000 GB"},
          "initialCapacity": {"Driver": {"workerCount": 1,
                                         "workerConfiguration": {"cpu": "4 vCPU", "memory": "16 GB", "disk": "20 GB"}}}}


def text(length: int, fill: str = "x") -> str:
    return (fill * length)[:length]


def put(*keys: str) -> Callable[[dict[str, Any], Any], None]:
    def apply(raw: dict[str, Any], value: Any) -> None:
        for key in keys[:-1]:
            raw = raw[key]
        raw[keys[-1]] = value

    return apply


def capacity(unit: str) -> Callable[[int], str]:
    """A valid capacity of exactly ``length`` characters: the number, blanks, the unit."""
    return lambda length: "4" + " " * (length - 1 - len(unit)) + unit


def worker_types(count: int) -> dict[str, Any]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return {f"Worker{letters[i // 26]}{letters[i % 26]}": {"workerCount": 1} for i in range(count)}


# (kind, its valid raw object, the model's bound, how a value of a given size is made, where it goes)
CASES: dict[str, tuple[type[Any], dict[str, Any], int, Callable[[int], Any], Callable[[dict[str, Any], Any], None]]] = {
    "application-arn": (Application, APPLICATION, bound("ApplicationSummary", "arn"), text, put("arn")),
    "application-name": (Application, APPLICATION, bound("ApplicationSummary", "name"), text, put("name")),
    "application-type": (Application, APPLICATION, bound("ApplicationSummary", "type"), text, put("type")),
    "application-releaseLabel": (Application, APPLICATION, bound("ApplicationSummary", "releaseLabel"), text,
                                 put("releaseLabel")),
    "application-stateDetails": (Application, APPLICATION, bound("ApplicationSummary", "stateDetails"), text,
                                 put("stateDetails")),
    "summary-stateDetails": (SessionSummary, SUMMARY, bound("SessionSummary", "stateDetails"), text,
                             put("stateDetails")),
    "session-arn": (Session, SESSION, bound("Session", "arn"), text, put("arn")),
    "session-name": (Session, SESSION, bound("Session", "name"), text, put("name")),
    "session-name-non-ascii": (Session, SESSION, bound("Session", "name"), lambda n: text(n, "東"), put("name")),
    "session-releaseLabel": (Session, SESSION, bound("Session", "releaseLabel"), text, put("releaseLabel")),
    "session-executionRoleArn": (Session, SESSION, bound("Session", "executionRoleArn"), text,
                                 put("executionRoleArn")),
    "session-createdBy": (Session, SESSION, bound("Session", "createdBy"), text, put("createdBy")),
    "session-stateDetails": (Session, SESSION, bound("Session", "stateDetails"), text, put("stateDetails")),
    "session-tag-key": (Session, SESSION, bound("Session", "tags", "key"), lambda n: {text(n): "v"}, put("tags")),
    "session-tag-value": (Session, SESSION, bound("Session", "tags", "value"), lambda n: {"team": text(n)},
                          put("tags")),
    "session-tags-entries": (Session, SESSION, bound("Session", "tags"), lambda n: {f"k{i}": "v" for i in range(n)},
                             put("tags")),
    "detail-stateDetails": (ApplicationDetail, DETAIL, bound("Application", "stateDetails"), text,
                            put("stateDetails")),
    "detail-worker-types": (ApplicationDetail, DETAIL, bound("Application", "initialCapacity"), worker_types,
                            put("initialCapacity")),
    "detail-worker-type-name": (ApplicationDetail, DETAIL, bound("Application", "initialCapacity", "key"),
                                lambda n: {text(n, "W"): {"workerCount": 1}}, put("initialCapacity")),
    "detail-maximum-cpu": (ApplicationDetail, DETAIL, bound("MaximumAllowedResources", "cpu"), capacity("vCPU"),
                           put("maximumCapacity", "cpu")),
    "detail-maximum-memory": (ApplicationDetail, DETAIL, bound("MaximumAllowedResources", "memory"),
                              capacity("GB"), put("maximumCapacity", "memory")),
    "detail-maximum-disk": (ApplicationDetail, DETAIL, bound("MaximumAllowedResources", "disk"), capacity("GB"),
                            put("maximumCapacity", "disk")),
    "detail-worker-cpu": (ApplicationDetail, DETAIL, bound("WorkerResourceConfig", "cpu"), capacity("vCPU"),
                          put("initialCapacity", "Driver", "workerConfiguration", "cpu")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_member_at_the_models_bound_is_valid_and_one_more_is_not(case: str) -> None:
    kind, valid, limit, make, place = CASES[case]
    at_bound = copy.deepcopy(valid)
    place(at_bound, make(limit))
    convert(at_bound, kind)
    over = copy.deepcopy(valid)
    place(over, make(limit + 1))
    with pytest.raises(InvalidObject):
        convert(over, kind)


def test_the_bounds_named_in_the_contract() -> None:
    """The figures the issue names, as today's botocore has them: a failed object's stateDetails is short."""
    assert bound("ApplicationSummary", "stateDetails") == 256
    assert bound("Session", "name") == 256 and bound("Session", "tags", "value") == 256
    assert bound("Session", "tags", "key") == 128


@pytest.mark.parametrize(("kind", "valid"), [(Application, APPLICATION), (SessionSummary, SUMMARY),
                                             (Session, SESSION), (ApplicationDetail, DETAIL)])
def test_ten_megabytes_of_state_details_is_invalid(kind: type[Any], valid: dict[str, Any]) -> None:
    with pytest.raises(InvalidObject, match="stateDetails"):
        convert({**valid, "stateDetails": "x" * 10_000_000}, kind)


def test_state_details_is_checked_not_kept() -> None:
    assert convert(SESSION, Session).state_details is None
    assert convert(APPLICATION, Application).state_details is None
