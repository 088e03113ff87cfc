"""The container image, checked statically (there is no Docker engine in CI): a multi-stage build that
installs the project with pip as the README does, runs its console script as a fixed non-root UID,
needs no writable root filesystem, reads its configuration where the Helm chart mounts it, carries
the OCI labels, and has a HEALTHCHECK (its command and the build's version check are run here)."""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.metadata
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.helpers.certs import make_authority
from tests.helpers.support import serving

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART_DIR = ROOT / "deploy/helm/emr-serverless-exporter"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, flags=re.IGNORECASE)
            assert match, f"cannot parse FROM {args}"
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), match.group(1))
            stages.append(Stage(base=base, name=match.group(2)))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = args.partition("=")
            global_args[name] = default.strip('"')
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), args
    return value


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return values


def test_multi_stage_on_python_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.base == "python:3.12-slim" for stage in stages)
    assert stages[0].name, "the builder stage is named"


def test_builder_installs_the_project_with_pip(stages: list[Stage]) -> None:
    runs = " && ".join(run for stage in stages[:-1] for run in stage.all("RUN"))
    assert re.search(r"\bpip install (?:[^&;]* )?\.(\s|$)", runs), "no `pip install .` of the project"
    copied = " ".join(stages[0].all("COPY"))
    for needed in ("pyproject.toml", "README.md", "exporter", "emr_serverless_simulator"):
        assert needed in copied, f"{needed} is not copied into the builder"


def test_final_stage_copies_the_venv_from_the_builder(stages: list[Stage], final: Stage) -> None:
    builder = stages[0].name
    copies = [args for args in final.all("COPY") if args.startswith(f"--from={builder} ")]
    assert copies, "the final stage copies nothing from the builder"
    assert not any("pip install" in run for run in final.all("RUN")), "the final stage installs packages"
    venv = copies[0].split()[1]
    assert any(f"{venv}/bin" in env for env in final.all("ENV")), "the venv is not on PATH"


def test_runs_as_a_fixed_numeric_non_root_user(final: Stage) -> None:
    user = final.last("USER")
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    assert match, f"USER {user} is not numeric (Kubernetes runAsNonRoot needs a numeric UID)"
    assert int(match.group(1)) == 65532
    assert match.group(2) is None or int(match.group(2)) != 0


def test_user_matches_the_chart(final: Stage) -> None:
    uid = int(final.last("USER").split(":")[0])
    values = chart_values()
    assert values["podSecurityContext"]["runAsUser"] == uid
    assert values["securityContext"]["runAsUser"] == uid


def test_exposes_the_default_port(final: Stage) -> None:
    assert final.last("EXPOSE").split() == ["9865"]


def test_entrypoint_is_the_console_script(final: Stage, pyproject: dict[str, Any]) -> None:
    scripts = pyproject["project"]["scripts"]
    assert exec_form(final.last("ENTRYPOINT")) == ["emr-serverless-exporter"]
    assert "emr-serverless-exporter" in scripts


def test_cmd_reads_the_config_where_the_chart_mounts_it(final: Stage) -> None:
    cmd = exec_form(final.last("CMD"))
    assert cmd == ["--config.file=/etc/emr-serverless-exporter/config.yaml"]
    config_path = cmd[0].split("=", 1)[1]
    deployment = (CHART_DIR / "templates/deployment.yaml").read_text()
    helpers = (CHART_DIR / "templates/_helpers.tpl").read_text()
    config_dir = re.search(r'define "emr-serverless-exporter.configDir" -}}\s*(\S+)', helpers)
    assert config_dir and f"{config_dir.group(1)}/config.yaml" == config_path
    assert "--config.file={{ $configDir }}/config.yaml" in deployment
    assert "mountPath: {{ $configDir }}" in deployment
    # The image carries a default file there, so it also starts without the chart.
    assert any(args.split()[-1] == config_path for args in final.all("COPY"))


def test_needs_no_writable_root_filesystem(final: Stage) -> None:
    env = " ".join(final.all("ENV"))
    assert re.search(r"\bPYTHONDONTWRITEBYTECODE=1\b", env)
    assert not final.all("VOLUME"), "a VOLUME would hide writes the read-only root filesystem forbids"


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest(stages: list[Stage]) -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for stage in stages
        for args in stage.all("COPY")
        if not args.startswith("--from=")
        for source in args.split()[:-1]
        if not source.startswith("--")
    ]
    assert sources
    for source in sources:
        assert not dockerignored(source, patterns), f"{source} is COPY'd but .dockerignore excludes it"
        assert (ROOT / source).exists(), f"{source} does not exist"
    for junk in (".venv", ".git", "tests", "exporter/__pycache__/x.pyc"):
        assert dockerignored(junk, patterns), f"{junk} would be sent to the Docker daemon"


# --- release metadata, health, user, install -----------------------------------------------------------


def labels(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for args in stage.all("LABEL"):
        for token in shlex.split(args):
            key, sep, value = token.partition("=")
            assert sep, f"LABEL {token} is not key=value"
            found[key] = value
    return found


def args_of(stage: Stage) -> dict[str, str]:
    return {name: default.strip('"') for name, _, default in (args.partition("=") for args in stage.all("ARG"))}


def position(stage: Stage, keyword: str) -> int:
    return next(index for index, (kw, _) in enumerate(stage.instructions) if kw == keyword)


def test_oci_labels(final: Stage, pyproject: dict[str, Any]) -> None:
    found = labels(final)
    prefix = "org.opencontainers.image."
    assert found == {
        f"{prefix}title": pyproject["project"]["name"],
        f"{prefix}description": pyproject["project"]["description"],
        f"{prefix}licenses": pyproject["project"]["license"],
        f"{prefix}source": "${SOURCE}",
        f"{prefix}version": "${VERSION}",
        f"{prefix}revision": "${REVISION}",
    }
    # source, version and revision are build arguments of this stage, declared before the LABEL; the
    # release workflow passes them (tests/deploy/test_release.py). A plain `docker build` labels no version
    # rather than a wrong one.
    declared = args_of(final)
    assert declared["VERSION"] == "" and declared["REVISION"] == ""
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", declared["SOURCE"])
    arg_positions = [index for index, (kw, _) in enumerate(final.instructions) if kw == "ARG"]
    assert max(arg_positions) < position(final, "LABEL")


def test_a_version_build_arg_must_be_the_package_version(stages: list[Stage], tmp_path: Path) -> None:
    """The builder refuses VERSION=X when the package it installed is not X: the image's version label
    and tag cannot disagree with `emr-serverless-exporter --version`. Its check runs here as it runs
    in the build, with this environment's python and installed package."""
    builder = stages[0]
    assert "VERSION" in args_of(builder)
    checks = [run for run in builder.all("RUN") if "${VERSION}" in run]
    assert len(checks) == 1
    installed = importlib.metadata.version("emr-serverless-exporter")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def build_with(version: str) -> int:
        return subprocess.run(["sh", "-c", checks[0]], env={**env, "VERSION": version}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False).returncode

    assert build_with(installed) == 0
    assert build_with("") == 0
    assert build_with(f"{installed}.1") != 0


def healthcheck(final: Stage) -> tuple[dict[str, str], list[str]]:
    options, sep, command = final.last("HEALTHCHECK").partition("CMD ")
    assert sep, "HEALTHCHECK has no CMD"
    parsed = dict(option.removeprefix("--").split("=", 1) for option in options.split())
    return parsed, exec_form(command)


def env_of(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for args in stage.all("ENV"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            found[key] = value
    return found


def test_healthcheck_fetches_healthz_with_the_image_python(final: Stage) -> None:
    options, command = healthcheck(final)
    assert set(options) == {"interval", "timeout", "start-period", "retries"}
    assert command[:2] == ["python", "-c"] and len(command) == 3
    timeout = re.search(r"timeout=(\d+)", command[2])
    assert timeout and int(timeout.group(1)) < int(options["timeout"].rstrip("s")), "urlopen gives up first"
    # The default URL is the default listen address's port; -e HEALTHCHECK_URL=... follows a changed one.
    port = final.last("EXPOSE")
    assert env_of(final)["HEALTHCHECK_URL"] == f"http://127.0.0.1:{port}/healthz"
    assert "os.environ['HEALTHCHECK_URL']" in command[2]


def run_healthcheck(final: Stage, url: str) -> subprocess.CompletedProcess[str]:
    code = healthcheck(final)[1][2]
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "HEALTHCHECK_URL": url},
                          capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def demo_exporter(tmp_path: Path, *args: str, scheme: str = "http") -> Iterator[str]:
    with serving("--demo", *args, ready="/healthz", scheme=scheme, context=ssl._create_unverified_context(),
                 cwd=tmp_path, timeout=60) as served:
        yield served.url


def test_healthcheck_passes_while_the_exporter_serves_and_fails_when_it_does_not(
    final: Stage, tmp_path: Path
) -> None:
    with demo_exporter(tmp_path) as url:
        result = run_healthcheck(final, f"{url}/healthz")
        assert result.returncode == 0, result.stderr
    # Docker reads 1 as unhealthy (2 is reserved): an uncaught exception exits 1.
    assert run_healthcheck(final, f"{url}/healthz").returncode == 1
    assert run_healthcheck(final, f"{url}/no-such-path").returncode == 1


def test_healthcheck_over_tls_with_basic_auth(final: Stage, tmp_path: Path) -> None:
    """With --web.config.file serving TLS, HEALTHCHECK_URL=https://...: the certificate is not verified
    (loopback) and /healthz needs no credentials."""
    server = make_authority(tmp_path).issue("server", server=True)
    password_hash = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(server.cert), "key_file": str(server.key)},
        "basic_auth_users": {"prometheus": password_hash},
    }))
    with demo_exporter(tmp_path, "--web.config.file", str(web), scheme="https") as url:
        assert run_healthcheck(final, f"{url}/healthz").returncode == 0
        plain = url.replace("https://", "http://")
        assert run_healthcheck(final, f"{plain}/healthz").returncode == 1


def test_final_stage_creates_the_user_it_runs_as(final: Stage) -> None:
    user = final.last("USER")
    assert len(final.all("USER")) == 1, "one USER: nothing switches back to root"
    uid, _, gid = user.partition(":")
    created = " ".join(final.all("RUN"))
    assert re.search(rf"useradd\b[^&]*--uid {uid}\b[^&]*--gid {gid}\b", created)
    assert re.search(rf"groupadd\b[^&]*--gid {gid}\b", created)
    # Everything after USER runs (and the HEALTHCHECK checks) as that user: no RUN needs root there.
    assert all(kw != "RUN" for kw, _ in final.instructions[position(final, "USER"):])


def test_installs_the_package_the_way_the_readme_does(stages: list[Stage]) -> None:
    """The image, the README's install and `make demo` install the same thing: the package with its
    runtime dependencies and no extra."""
    installs = [
        match.group(0)
        for stage in stages
        for run in stage.all("RUN")
        for match in re.finditer(r"\bpip install [^&;]*", run)
    ]
    assert [install.strip() for install in installs] == ["pip install ."]
    readme = (ROOT / "README.md").read_text()
    running = readme.split("## Running it against AWS", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^pip install \.$", running, re.M), "the README's install for AWS"
    assert ".venv/bin/pip install . &&" in readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    deployment = (ROOT / "docs/deployment.md").read_text()
    image = deployment.split("## Container image", 1)[1].split("\n## ", 1)[0]
    assert "`pip install .`" in image
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\t\$\(BIN\)/python -m pip install --quiet -e \.$", makefile, re.M), "make demo's install"
