"""Backfill's refusals: a build that cannot be installed, and one that is not the build it is named as."""

import os
import subprocess
import sys
import zipfile

from conftest import make_project, snapshot


def fake_torch_wheel(directory, version, commit):
    """A real, installable wheel named torch whose build names ``commit``: enough for the
    identity check, which must refuse it before anything is benchmarked."""
    path = os.path.join(directory, f"torch-{version}-py3-none-any.whl")
    files = {
        "torch/__init__.py": f"__version__ = {version!r}\nfrom . import cuda, version\n",
        "torch/version.py": f"git_version = {commit!r}\ncuda = None\n",
        "torch/cuda.py": "def is_available():\n    return False\n",
        f"torch-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"torch-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = f"torch-{version}.dist-info/RECORD"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(record, "\n".join(f"{name},," for name in [*files, record]) + "\n")
    return path


def backfill(project, *builds):
    return subprocess.run(
        [sys.executable, "-m", "torch_overhead", "backfill", *builds, "--device", "cpu",
         "--machine", "ci-cpu", "--project-root", project],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, HOME=project),
    )


def test_a_wheel_whose_commit_differs_from_its_label_is_refused(tmp_path):
    project = make_project(tmp_path / "project")
    wheel = fake_torch_wheel(str(tmp_path), "2.13.0", "1" * 40)
    result = backfill(project, f"{wheel}@2222222")
    assert result.returncode == 1
    assert "labelled 2222222 but torch 2.13.0 was built from 111111111111" in result.stderr
    assert snapshot(project) == {}  # nothing recorded, no index entry


def test_a_version_that_cannot_be_installed_is_reported_and_skipped(tmp_path):
    project = make_project(tmp_path / "project")
    result = backfill(project, "0.0.1")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "pip install torch==0.0.1 failed" in errors[0]
    assert snapshot(project) == {}


def test_a_spec_that_is_not_a_build_is_refused(tmp_path):
    project = make_project(tmp_path / "project")
    result = backfill(project, "latest-nightly")
    assert result.returncode == 1
    assert "neither a torch version, a .whl file nor a directory of wheels" in result.stderr
