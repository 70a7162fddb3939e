"""Bad input: one clear line, a non-zero exit, and results already recorded left intact."""

import glob
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from asv.results import Results

from conftest import ctrl_c, make_project, one_error_line, run_main, snapshot, terminal_job


@pytest.fixture
def project(recorded_project, tmp_path):
    """A copy of a project that already holds a recorded run."""
    source, _ = recorded_project
    copy = str(tmp_path / "project")
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("html", ".asv"))
    return copy


def recorded_file(project):
    return [p for p in glob.glob(os.path.join(project, "results", "ci-cpu", "*.json"))
            if not p.endswith("machine.json")][0]


def test_unknown_benchmark_filter(project):
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick", "--bench", "time_add_one_misspelled")
    assert result.returncode == 2
    assert "no benchmark matched --bench" in one_error_line(result)
    assert snapshot(project) == before


def test_cuda_requested_without_a_gpu(project):
    before = snapshot(project)
    result = run_main(project, "--device", "cuda")
    assert result.returncode == 2
    assert "sees no CUDA device" in one_error_line(result)
    assert snapshot(project) == before


def test_harness_on_cuda_without_a_gpu(project):
    result = subprocess.run([sys.executable, "-m", "torch_overhead", "harness", "--device", "cuda",
                             "--project-root", project], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "sees no CUDA device" in one_error_line(result)


def test_corrupt_results_file(project):
    path = recorded_file(project)
    with open(path, "w") as f:
        f.write('{"commit_hash": "trunc')
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "is corrupt" in line and os.path.basename(path) in line
    assert snapshot(project) == before


def test_results_of_another_benchmark_version(project):
    path = recorded_file(project)
    with open(path) as f:
        data = json.load(f)
    columns = data["result_columns"]
    for name, row in data["results"].items():
        if name.startswith("runtime_overhead."):
            row[columns.index("version")] = "runtime_overhead-0"
    with open(path, "w") as f:
        json.dump(data, f)
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick")
    assert result.returncode == 2
    assert "'runtime_overhead-0', the suite is at 'runtime_overhead-3'" in one_error_line(result)
    assert snapshot(project) == before


def test_torch_that_fails_to_import(project, tmp_path):
    broken = tmp_path / "broken"
    (broken / "torch").mkdir(parents=True)
    (broken / "torch" / "__init__.py").write_text("raise ImportError('libtorch_cuda.so: cannot open shared object')\n")
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", env={"PYTHONPATH": str(broken)})
    assert result.returncode == 2
    assert "torch does not import" in one_error_line(result)
    assert "libtorch_cuda.so" in result.stderr
    assert snapshot(project) == before


def test_corrupt_build_index(project):
    with open(os.path.join(project, "builds.json"), "w") as f:
        f.write("{not json")
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick")
    assert result.returncode == 2
    assert "build index" in one_error_line(result)
    assert snapshot(project) == before


@pytest.mark.parametrize("command", [["figures", "--machine", "ci-cpu"], ["harness"]])
@pytest.mark.parametrize("benchmark", ["floor.TritonLaunch.time_launch", "layers.Eagr.time_add1"])
def test_figures_of_a_benchmark_without_the_seed_variants(project, benchmark, command):
    before = snapshot(project)
    result = subprocess.run(
        [sys.executable, "-m", "torch_overhead", *command, "--device", "cpu",
         "--bench", benchmark, "--project-root", project],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert f"--bench {benchmark!r} matches 0 host-clock add1 benchmarks" in one_error_line(result)
    assert snapshot(project) == before


def test_negative_gate_sensitivity_margin():
    result = subprocess.run([sys.executable, "-m", "torch_overhead", "gate-sensitivity", "--margin", "-0.1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--margin -0.1: give a fraction of 0 or more" in one_error_line(result)


def test_crash_in_one_variant_still_records_the_others(tmp_path):
    benchmarks = tmp_path / "crashy_benchmarks"
    benchmarks.mkdir()
    (benchmarks / "__init__.py").write_text("")
    (benchmarks / "crashy.py").write_text(textwrap.dedent("""
        class Crashy:
            params = [1, 2, 3]
            param_names = ["n"]
            version = "crashy-1"
            def time_sum(self, n):
                if n == 2:
                    raise RuntimeError("variant 2 is broken")
                sum(range(n))
    """))
    project = make_project(tmp_path / "project", benchmarks_from=str(benchmarks))
    result = run_main(project, "--device", "cpu", "--quick")
    assert result.returncode == 1
    assert "some benchmark variants failed" in one_error_line(result)
    assert "variant 2 is broken" in result.stdout
    results = Results.load(recorded_file(project))
    values = results.get_result_value("crashy.Crashy.time_sum", [["1", "2", "3"]])
    assert values[1] is None
    assert all(v is not None and math.isfinite(v) and v > 0 for v in (values[0], values[2]))
    assert os.path.exists(os.path.join(project, "html", "index.html"))


def test_ctrl_c_records_nothing_partial_and_keeps_earlier_results(project):
    before = snapshot(project)
    env = dict(os.environ, HOME=project)
    proc = terminal_job(
        [sys.executable, "-m", "torch_overhead", "run", "--project-root", project, "--machine", "ci-cpu",
         "--device", "cpu", "--quick", "--replace", "--bench", "RuntimeOverhead"], env)
    for line in proc.stdout:
        if "Benchmarking" in line:  # asv has started running benchmarks
            break
    time.sleep(3)
    ctrl_c(proc)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    line = one_error_line(subprocess.CompletedProcess([], 130, "", err))
    assert "interrupted during step 4/5" in line and "no figures were recorded" in line, line
    assert snapshot(project) == before
