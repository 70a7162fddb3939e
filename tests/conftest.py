"""Shared fixtures: a throwaway copy of the asv project, and a way to run the main command on it."""

import glob
import os
import shutil
import signal
import subprocess
import sys

import pytest

from torch_overhead.lib import builds
from torch_overhead.lib.main_command import copy_project

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEWER_BUILD = "f" * 40  # a build in the index that no test installs
BENCHMARK = "runtime_overhead.RuntimeOverhead.time_add1"


def make_project(path, benchmarks_from=None):
    """This repository's asv project copied to ``path``: results, index and html land there."""
    return copy_project(ROOT, path, benchmarks_from)


def committed(dest, *paths):
    """Extract ``paths`` as committed in this checkout's HEAD into ``dest``: tests read the
    committed results, never what a user has recorded since (``make bench`` before ``make test``)."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", "HEAD", *paths], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return str(dest)


def results_file(project):
    """The one results file of the ``ci-cpu`` machine in ``project``."""
    (path,) = [p for p in glob.glob(os.path.join(project, "results", "ci-cpu", "*.json"))
               if not p.endswith("machine.json")]
    return path


def one_error_line(result):
    """The command's single ``error:`` line (bad input says what to do in one line)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stdout[-2000:] + result.stderr
    return errors[0]


def run_main(project, *args, env=None):
    """``python -m torch_overhead run`` on ``project``, isolated from the user's asv machine file."""
    full_env = dict(os.environ, HOME=str(project), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "torch_overhead", "run", "--project-root", project, "--machine", "ci-cpu", *args],
        capture_output=True, text=True, env=full_env, timeout=900,
    )


def terminal_job(command, env):
    """Start ``command`` as a terminal's foreground job, for a test to interrupt with ``ctrl_c``:
    its own process group, and SIGINT's default action. A job started in the background of a
    non-interactive shell (``cmd &``, nohup) inherits SIGINT ignored, and Python then never
    raises KeyboardInterrupt; the test would see the run finish instead."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def ctrl_c(proc):
    """SIGINT to the whole process group, as a terminal's Ctrl-C."""
    os.killpg(proc.pid, signal.SIGINT)


def snapshot(project):
    """Every file under results/ and the build index, with its bytes: to prove nothing changed."""
    files = {}
    for top in ("results",):
        for dirpath, _, names in os.walk(os.path.join(project, top)):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, project)] = f.read()
    index = os.path.join(project, "builds.json")
    if os.path.exists(index):
        with open(index, "rb") as f:
            files["builds.json"] = f.read()
    return files


@pytest.fixture
def recorded_results(recorded_project, tmp_path):
    """The shared recorded run's results and build index, copied for a test that may break them."""
    source, _ = recorded_project
    shutil.copytree(os.path.join(source, "results"), tmp_path / "results")
    shutil.copy(os.path.join(source, "builds.json"), tmp_path / "builds.json")
    return str(tmp_path)


@pytest.fixture(scope="session")
def recorded_project(tmp_path_factory):
    """One real quick run of the whole suite on the CPU, shared by the tests that read its output.
    The build index already holds a newer build (NEWER_BUILD), as a project with history does."""
    project = make_project(tmp_path_factory.mktemp("suite"))
    builds.register(os.path.join(project, "builds.json"), NEWER_BUILD, "2.98.0+newer", date="2099-01-01T00:00:00+00:00")
    result = run_main(project, "--device", "cpu", "--quick")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project, result
