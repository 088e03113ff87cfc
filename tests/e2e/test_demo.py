"""The README's two commands: CI runs exactly its test command, and `make demo` installs only what running
needs (the package and its runtime dependencies), under 100 MB on a fresh clone, enough to run the demo."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

from exporter import __version__
from tests.helpers.support import serving

ROOT = Path(__file__).resolve().parents[2]
DEMO_LIMIT_BYTES = 100 * 1024 * 1024


def test_ci_runs_exactly_the_readme_test_command() -> None:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick_start, re.S)
    assert block
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "exec make test"


def make_dry_run(target: str, venv: Path) -> list[str]:
    result = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(ROOT), f"VENV={venv}", target],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.splitlines()


def test_demo_installs_the_package_without_the_test_extra(tmp_path: Path) -> None:
    demo = make_dry_run("demo", tmp_path / "venv")
    installs = [line for line in demo if " pip install " in line and "--upgrade pip" not in line]
    assert installs == [f"{tmp_path}/venv/bin/python -m pip install --quiet -e ."]
    assert demo[-1] == f"{tmp_path}/venv/bin/emr-serverless-exporter --demo"
    test = make_dry_run("test", tmp_path / "venv")
    assert f"{tmp_path}/venv/bin/python -m pip install --quiet -e '.[test]'" in test


def directory_size(path: Path) -> int:
    return sum(entry.lstat().st_size for entry in path.rglob("*") if entry.is_file() or entry.is_symlink())


def test_the_demo_environment_is_small_and_runs_the_demo(tmp_path: Path) -> None:
    """What `make demo` installs on a fresh clone, installed for real (from the package index, as the
    README's command does): under 100 MB, and enough to run the demo: no runtime import of a test tool."""
    venv = tmp_path / ".venv"
    result = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", f"{venv}/.installed-run"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    size = directory_size(venv)
    assert size < DEMO_LIMIT_BYTES, f"the demo's environment is {size / 2**20:.0f} MiB"
    with serving("--demo", command=[str(venv / "bin/emr-serverless-exporter")], timeout=120) as demo:
        with urllib.request.urlopen(demo.url + "/metrics", timeout=30) as response:
            body = response.read().decode()
        assert "emr_serverless_session_state{" in body
        assert re.search(rf'^emr_serverless_build_info{{[^}}]*[{{,]version="{re.escape(__version__)}"', body, re.M)
