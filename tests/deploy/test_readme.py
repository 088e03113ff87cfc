"""The README is the front page: short, linking every page of docs/, its examples valid, and its IAM
policy exactly what the exporter calls; the chart's README links to that text instead of repeating it."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.config.schema import parse_config
from exporter.model.kinds import KINDS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CHART_README = ROOT / "deploy/helm/emr-serverless-exporter/README.md"
FRONT_PAGE_BYTES = 12 * 1024  # node_exporter's and YACE's front pages are about this long
# In the policy ahead of job-run collection, so that an upgrade needs no IAM change.
JOB_RUN_ACTIONS = {"ListJobRuns", "GetJobRun"}


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"^#{1,3} ", text[start + len(heading) :], re.M)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def test_the_readme_is_a_front_page() -> None:
    size = len(README.read_bytes())
    assert size <= FRONT_PAGE_BYTES, f"README.md is {size} bytes: move detail to docs/"


def test_the_readme_links_every_page_of_the_docs() -> None:
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", section(README.read_text(), "## Documentation")))
    pages = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert linked == pages, f"the README's documentation map misses {sorted(pages - linked)}"


def test_the_configuration_examples_are_valid() -> None:
    for page in (README, ROOT / "docs/configuration.md"):
        blocks = re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S)
        examples = [block for block in blocks if re.match(r"(#[^\n]*\n)*targets:", block)]
        assert examples, f"{page.name} lost its configuration example"
        for example in examples:
            parse_config(example)  # raises ConfigError naming the key


def called_actions() -> set[str]:
    """Every boto3 emr-serverless operation the exporter calls, by its IAM action name: those called by name in
    exporter/aws/calls.py, and each kind's listing and detail call."""
    source = (ROOT / "exporter/aws/calls.py").read_text()
    called = {"".join(part.title() for part in op.split("_")) for op in re.findall(r"self\._client\.([a-z_]+)", source)}
    return called | {operation for kind in KINDS for operation in (kind.list_operation, kind.get_operation)}


def test_the_iam_policy_is_what_the_exporter_calls() -> None:
    called = called_actions()
    assert called >= {"ListApplications", "ListSessions", "GetSession"}
    policy = section(README.read_text(), "### IAM permissions")
    granted = set(re.findall(r'"emr-serverless:([A-Za-z]+)"', policy))
    assert granted == called | JOB_RUN_ACTIONS, "the README's policy and the calls in exporter/aws/calls.py differ"
    assert all(action.startswith(("List", "Get")) for action in granted), "the exporter only reads"
    assert "ListTagsForResource" not in called
    assert '"sts:AssumeRole"' in policy


def test_the_chart_readme_links_the_shared_text_instead_of_repeating_it() -> None:
    chart = CHART_README.read_text()
    assert not re.findall(r"emr-serverless:[A-Za-z]+", chart), "the chart README repeats the IAM actions"
    assert "create-pod-identity-association" not in chart, "the chart README repeats the Pod Identity steps"
    assert "../../../README.md#iam-permissions" in chart
    assert "../../../docs/deployment.md#aws-credentials-irsa-or-eks-pod-identity" in chart
