"""The suite end to end on the CPU: a real quick asv run, what it records, and what it publishes."""

import json
import math
import os
import shutil
import subprocess
import sys

import torch
from asv.results import Results

from conftest import BENCHMARK, NEWER_BUILD, ROOT, results_file

INVALID = {  # (requires_grad, inference_mode, backward): why the seed never builds it
    (False, False, True): "backward without requires_grad",
    (False, True, True): "inference_mode with backward",
    (True, True, True): "inference_mode with backward",
}


def test_asv_check_passes(recorded_project):
    project, _ = recorded_project
    env = dict(os.environ, HOME=project, TORCH_OVERHEAD_DEVICE="cpu")
    check = subprocess.run([sys.executable, "-m", "asv", "check", "-E", f"installed-torch:{sys.executable}"],
                           cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr


def test_quick_run_records_every_valid_variant_and_na_for_the_rest(recorded_project):
    project, _ = recorded_project
    results = Results.load(results_file(project))
    params = results.get_result_params(BENCHMARK)
    assert params == [["False", "True"]] * 4
    values = results.get_result_value(BENCHMARK, params)
    combos = [(rg, im, bw, dy) for rg in (False, True) for im in (False, True)
              for bw in (False, True) for dy in (False, True)]
    assert len(values) == len(combos) == 16
    for (rg, im, bw, dy), value in zip(combos, values):
        if (rg, im, bw) in INVALID:
            assert value is not None and math.isnan(value), (rg, im, bw, dy, value)
        else:
            assert value is not None and math.isfinite(value) and 0 < value < 0.1, (rg, im, bw, dy, value)
    assert sum(1 for v in values if v is not None and math.isfinite(v)) == 10


def test_skip_reasons_are_shown(recorded_project):
    _, result = recorded_project
    assert "inference_mode and backward are exclusive" in result.stdout
    assert "backward needs requires_grad=True" in result.stdout


def test_recorded_commit_is_the_installed_torch_build(recorded_project):
    project, _ = recorded_project
    results = Results.load(results_file(project))
    assert results.commit_hash == torch.version.git_version
    with open(os.path.join(project, "builds.json")) as f:
        (build,) = [b for b in json.load(f)["builds"] if b["commit"] != NEWER_BUILD]
    assert build["commit"] == torch.version.git_version
    assert build["version"] == torch.__version__


def test_progress_names_the_build_being_measured(recorded_project):
    """asv names a branch tip in its progress line; the index's newest build is not the one
    installed here, and the line must still name the installed one."""
    _, result = recorded_project
    assert f"For torch commit {torch.version.git_version[:8]} <torch-{torch.__version__}>" in result.stdout
    assert f"For torch commit {NEWER_BUILD[:8]}" not in result.stdout


def test_results_name_their_device(recorded_project):
    project, _ = recorded_project
    results = Results.load(results_file(project))
    assert results.env_vars == {"TORCH_OVERHEAD_DEVICE": "cpu"}
    assert results.env_name.endswith("TORCH_OVERHEAD_DEVICEcpu")
    # no machine-local interpreter path leaks into committed results
    assert results.params["python"] == "%d.%d" % sys.version_info[:2]


def test_machine_file_records_the_host(recorded_project):
    project, _ = recorded_project
    with open(os.path.join(project, "results", "ci-cpu", "machine.json")) as f:
        machine = json.load(f)
    assert machine["machine"] == "ci-cpu"
    assert int(machine["num_cpu"]) == os.cpu_count()
    assert machine["arch"] and machine["cpu"] and int(machine["ram"]) > 0


def test_publish_lists_the_benchmark_with_its_device(recorded_project):
    project, result = recorded_project
    assert os.path.exists(os.path.join(project, "html", "index.html"))
    with open(os.path.join(project, "html", "index.json")) as f:
        index = json.load(f)
    assert BENCHMARK in index["benchmarks"]
    assert index["params"]["env-TORCH_OVERHEAD_DEVICE"] == ["cpu"]
    assert index["revision_to_hash"]["0"] == torch.version.git_version
    assert f"torch-{torch.__version__}" in index["tags"]
    assert "Dashboard:" in result.stdout


def test_every_benchmark_class_pins_its_version(recorded_project):
    """asv publish drops results whose version changed: every benchmark class must pin one."""
    from torch_overhead.lib.recorded import pinned_versions

    project, _ = recorded_project
    with open(os.path.join(project, "results", "benchmarks.json")) as f:
        collected = {name.rsplit(".", 1)[0] for name in json.load(f) if name != "version"}
    pinned = pinned_versions(os.path.join(ROOT, "benchmarks"))
    assert collected and collected <= set(pinned), collected - set(pinned)
    assert pinned["runtime_overhead.RuntimeOverhead"] == "runtime_overhead-3"


def test_readme_table_is_generated_from_the_results(recorded_project, tmp_path):
    project, _ = recorded_project
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table:ci-cpu -->\nold\n<!-- /table:ci-cpu -->\nrest\n")
    shutil.copytree(os.path.join(project, "results"), tmp_path / "results")
    out = subprocess.run([sys.executable, "-m", "torch_overhead", "table", "--machine", "ci-cpu",
                          "--update-readme", "--project-root", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    rows = [line for line in text.splitlines() if line.startswith("| True") or line.startswith("| False")]
    assert len(rows) == 10
    results = Results.load(results_file(project))
    base = results.get_result_value(BENCHMARK, results.get_result_params(BENCHMARK))[0]
    assert f"| False | False | False | False | {base * 1e6:.1f} |" in text


_FORKED_SETUP = """
import os, subprocess, sys
from benchmarks.runtime_overhead import RuntimeOverhead
pid = os.fork()
if pid == 0:
    spawned = []
    start = subprocess.Popen._execute_child
    subprocess.Popen._execute_child = lambda self, args, *a: spawned.append(args) or start(self, args, *a)
    RuntimeOverhead().setup(False, False, False, False)
    print(len(spawned), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_forkserver_does_once_what_every_forked_variant_would_redo():
    """asv forks each variant from its forkserver (``benchmark.py run_server``). Inductor's
    first compile in a process probes the CPU's vector instruction sets with compiler
    subprocesses; done in the forkserver, a forked variant's setup starts fewer of them
    than one forked from any other process."""
    env = dict(os.environ, PYTHONPATH=ROOT, TORCH_OVERHEAD_DEVICE="cpu")

    def spawned_by_forked_setup(argv1):
        out = subprocess.run([sys.executable, "-c", _FORKED_SETUP, argv1], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.split()[-1])

    spawned_by_forked_setup("other")  # fill the on-disk Inductor cache: both below hit it
    assert spawned_by_forked_setup("run_server") < spawned_by_forked_setup("other")


# Every module of the package, imported by asv_runner's own walk, as `benchmark.py discover` does.
_DISCOVERY_IMPORTS = """
import sys
from asv_runner.discovery import disc_modules
modules = [m.__name__ for m in disc_modules("benchmarks")]
assert "benchmarks.compile_time" in modules, modules
print(sorted(m for m in ("torch._dynamo", "torch._inductor") if m in sys.modules))
"""


def test_discovery_imports_no_dynamo():
    """asv discovers the benchmarks on every run, importing each module in a fresh interpreter
    (``benchmark.py discover``). Dynamo and Inductor are imported by the forkserver only: in
    discovery they cost seconds of every run (about 6 s on the H200) and nothing reads them."""
    env = dict(os.environ, PYTHONPATH=ROOT, TORCH_OVERHEAD_DEVICE="cpu")
    out = subprocess.run([sys.executable, "-c", _DISCOVERY_IMPORTS, "discover"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
