"""A user's own torch environment needs nothing from this project, asv_runner included.

GPU users point the main command at their interpreter (``--python``); the benchmark
processes get asv_runner lent through PYTHONPATH (``lib.benchmark_env.asv_runner_path``). This test
builds an interpreter that has torch but cannot import asv_runner, and benchmarks it.
"""

import os
import subprocess
import sys
import sysconfig

import torch
from asv.results import Results

from conftest import BENCHMARK, make_project, results_file, run_main

WITHOUT = ("asv", "asv_runner")  # what the user's environment lacks


def interpreter_without_asv_runner(path):
    """A fresh venv seeing this venv's packages (torch and its dependencies) but not asv or
    asv_runner: a folder of links to the other top-level entries, put on its path by a .pth."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path / "venv")], check=True)
    python = str(path / "venv" / "bin" / "python")
    shared = path / "packages"
    shared.mkdir()
    ours = sysconfig.get_paths()["purelib"]
    for entry in os.listdir(ours):
        top = entry.split("-", 1)[0].split(".", 1)[0].lower()
        if top not in WITHOUT and not entry.endswith(".pth"):
            os.symlink(os.path.join(ours, entry), shared / entry)
    theirs = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(theirs, "packages.pth"), "w") as f:
        f.write(str(shared) + "\n")
    return python


def test_benchmarks_an_interpreter_without_asv_runner(tmp_path):
    python = interpreter_without_asv_runner(tmp_path)
    probe = subprocess.run([python, "-c", "import torch, importlib.util as u; "
                            "print(torch.version.git_version, u.find_spec('asv_runner') is None)"],
                           capture_output=True, text=True, timeout=300)
    assert probe.stdout.split() == [torch.version.git_version, "True"], probe.stdout + probe.stderr

    project = make_project(tmp_path / "project")
    done = run_main(project, "--python", python, "--device", "cpu", "--quick",
                    "--bench", BENCHMARK + r"\(False, False, False, False\)")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = Results.load(results_file(project))
    assert results.commit_hash == torch.version.git_version
    (value, *_) = results.get_result_value(BENCHMARK, results.get_result_params(BENCHMARK))
    assert value is not None and value > 0
