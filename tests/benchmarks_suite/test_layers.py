"""Layer baselines, the floor, and recompile accounting, on the CPU."""

import glob
import math
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch
from asv.results import Results

from conftest import ROOT, committed

sys.path.insert(0, ROOT)
os.environ.setdefault("TORCH_OVERHEAD_DEVICE", "cpu")
from benchmarks import common, floor, forkserver, layers, settings  # noqa: E402
from benchmarks.common import CALLS_PER_TIMING, _Add1Variants  # noqa: E402
from test_suite import results_file  # noqa: E402

LAYERS = ["Eager", "DynamoEager", "AotAutograd", "InductorCppWrapper"]


def test_every_layer_is_recorded_for_its_valid_variants(recorded_project):
    project, _ = recorded_project
    results = Results.load(results_file(project))
    for layer in LAYERS:
        name = f"layers.{layer}.time_add1"
        values = results.get_result_value(name, results.get_result_params(name))
        finite = [v for v in values if v is not None and math.isfinite(v)]
        expected = 5 if layer == "Eager" else 10  # eager skips dynamic=True (no such thing)
        assert len(finite) == expected and all(v > 0 for v in finite), (layer, values)


def test_cuda_only_layers_are_skipped_with_a_reason_on_the_cpu(recorded_project):
    project, result = recorded_project
    results = Results.load(results_file(project))
    name = "layers.InductorCudaGraphs.time_add1"
    values = results.get_result_value(name, results.get_result_params(name))
    assert all(v is not None and math.isnan(v) for v in values)
    assert "CUDA graphs need CUDA" in result.stdout
    # the floor and the synchronized clock are CUDA only: collected (so benchmarks.json
    # stays the same on every machine) but recorded as skipped
    cuda_only = [k for k in results.get_all_result_keys() if k.startswith("floor.") or k.endswith("_synchronized")]
    assert len(cuda_only) == 4 + 6
    for name in cuda_only:
        values = results.get_result_value(name, results.get_result_params(name))
        assert all(v is not None and math.isnan(v) for v in values), name


def test_no_seed_variant_recompiles_during_measurement(recorded_project):
    project, _ = recorded_project
    results = Results.load(results_file(project))
    name = "runtime_overhead.RuntimeOverhead.track_recompiles"
    values = results.get_result_value(name, results.get_result_params(name))
    counted = [v for v in values if v is not None and not math.isnan(v)]
    assert len(counted) == 10 and set(counted) == {0}


def test_asv_records_seconds_per_call_of_back_to_back_calls(monkeypatch):
    """asv_runner's own timing loop, as a benchmark process runs it, over an add1 that takes
    at least 1 ms a call: a timing makes CALLS_PER_TIMING calls and asv records each sample
    per call, not per timing."""
    from asv_runner.discovery import get_benchmark_from_name

    calls = []

    def slow_add1(a):
        calls.append(a)
        time.sleep(0.001)
        return a + 1

    monkeypatch.setattr(common, "_compiled", {})  # nothing compiled by another test
    monkeypatch.setattr(layers.Eager, "build", lambda self, dynamic: slow_add1)
    monkeypatch.setattr(layers.Eager, "repeat", 3)
    monkeypatch.setattr(layers.Eager, "warmup_time", 0)
    bench = get_benchmark_from_name(os.path.join(ROOT, "benchmarks"), "layers.Eager.time_add1-0")
    assert not bench.do_setup()
    calls.clear()  # warm-up
    samples = bench.run(False, False, False, False)["samples"]
    assert len(samples) == 3 and all(0.001 <= s < 0.003 for s in samples), samples
    assert len(calls) == 3 * bench.number * CALLS_PER_TIMING


def test_each_timed_backward_has_its_own_fresh_graph():
    """The seed's _prepare() per call: setup builds one fresh add1(a).sum() per call of a
    timing, and the timing runs .backward() once on each (the gradient counts them)."""
    bench = layers.Eager()
    bench.setup(True, False, True, False)
    bench.a.grad = None  # warm-up's backward calls
    bench.time_add1(True, False, True, False)
    assert torch.equal(bench.a.grad, torch.full((2,), float(CALLS_PER_TIMING)))
    assert bench.losses == []  # all spent: the next setup builds ten fresh graphs


def test_a_synchronized_backward_timing_spends_one_fresh_graph_and_setup_rebuilds_only_it():
    """The synchronized clock times one call per timing: it must differentiate a graph built
    just before it, and setup must not build nine graphs that nothing spends (untimed, but
    nine forward calls before every timing)."""
    variant = (True, False, True, False)
    bench = layers.Eager()
    bench.setup(*variant)
    bench.a.grad = None  # warm-up's backward calls
    for timings in range(1, 4):
        unspent = [id(loss) for loss in bench.losses[:-1]]
        bench.time_add1_synchronized(*variant)
        bench.setup(*variant)
        assert [id(loss) for loss in bench.losses[:-1]] == unspent  # kept, not rebuilt
        assert len(bench.losses) == CALLS_PER_TIMING
        assert torch.equal(bench.a.grad, torch.full((2,), float(timings)))  # one backward a timing


class _ShapeChanging(_Add1Variants):
    """A benchmark that would silently measure recompiles: calls alternate between two shapes."""

    def build(self, dynamic):
        return torch.compile(lambda a: a + 1, backend="eager", fullgraph=True, dynamic=dynamic)

    def time_add1(self, *variant):
        self.n = 3 if getattr(self, "n", 2) == 2 else 2
        self.add1(torch.ones(self.n))


def test_a_recompile_during_measurement_fails_the_variant():
    bench = _ShapeChanging()
    bench.setup(False, False, False, False)
    with pytest.raises(Exception, match="(?i)recompil"):
        bench.time_add1(False, False, False, False)
    torch._dynamo.config.error_on_recompile = False


def test_recompiles_are_counted_not_hidden():
    from benchmarks.runtime_overhead import RuntimeOverhead

    class Recompiling(_ShapeChanging, RuntimeOverhead):
        pass

    bench = Recompiling()
    bench.setup(False, False, False, False)
    assert bench.track_recompiles(False, False, False, False) > 0
    torch._dynamo.config.error_on_recompile = False


def test_missing_triton_is_a_skip_with_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)
    with pytest.raises(NotImplementedError, match="Triton is not installed"):
        floor._triton_add1()


def test_cuda_runs_probe_vector_isas_in_the_forkserver_only_when_they_include_the_cpp_wrapper(monkeypatch):
    """The C++-wrapper layer's processes each spent 47-53 s on the H200 probing the CPU's vector
    instruction sets: the runner tells the forkserver to do it once when, and only when, the
    selected benchmarks include that layer (the default CUDA run does not)."""
    from torch_overhead.commands.run import SLOW_ON_CUDA
    from torch_overhead.lib.benchmark_env import runs_cpp_wrapper

    default_cuda = ["^(?!(" + "|".join(SLOW_ON_CUDA) + r")\.)"]
    assert not runs_cpp_wrapper(default_cuda)
    assert not runs_cpp_wrapper([r"^runtime_overhead\."])
    assert runs_cpp_wrapper([])  # --slow: everything
    assert runs_cpp_wrapper([r"^layers\.InductorCppWrapper\.time_add1_synchronized\(True, False"])
    assert runs_cpp_wrapper(["time_add1$"])

    monkeypatch.setenv("TORCH_OVERHEAD_DEVICE", "cuda")
    for flag, wanted in (("0", False), ("1", True)):
        monkeypatch.setenv(settings.CPP_WRAPPER_ENV_VAR, flag)
        assert forkserver.wants_cpp_build() is wanted
    monkeypatch.setenv("TORCH_OVERHEAD_DEVICE", "cpu")
    assert forkserver.wants_cpp_build()  # CPU Inductor compiles C++ in every layer


def test_cpp_wrapper_that_cannot_compile_is_a_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    with torch._inductor.config.patch({"cpp.cxx": (None, "/nonexistent/g++")}):
        with pytest.raises(NotImplementedError, match="cpp_wrapper does not compile here.*C\\+\\+ compiler"):
            layers.InductorCppWrapper().setup(False, False, False, False)


def breakdown(project_root, machine, *options):
    return subprocess.run([sys.executable, "-m", "torch_overhead", "breakdown", "--machine", machine,
                           "--project-root", str(project_root), *options],
                          capture_output=True, text=True, timeout=120)


def test_breakdown_table_and_picture_come_from_the_results(recorded_project, tmp_path):
    project, _ = recorded_project
    shutil.copytree(os.path.join(project, "results"), tmp_path / "results")
    png = tmp_path / "breakdown.png"
    out = breakdown(tmp_path, "ci-cpu", "--output", str(png))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in out.stdout.splitlines()
            if line.startswith("| ") and not line.startswith(("| variant", "| ---"))]
    assert len(rows) == 10
    results = Results.load(results_file(project))
    name = "runtime_overhead.RuntimeOverhead.time_add1"
    base = results.get_result_value(name, results.get_result_params(name))[0]
    assert rows[0].startswith("| base |") and f"{base * 1e6:.1f}" in rows[0]



def test_synchronized_breakdown_reads_the_synchronized_twins(tmp_path):
    """On the committed H200 results (real CUDA figures) the synchronized table's base row
    carries the headline's synchronized median, not its host one."""
    committed(tmp_path, "results")
    out = breakdown(tmp_path, "nvidia-h200", "--clock", "synchronized", "--output", str(tmp_path / "s.png"))
    assert out.returncode == 0, out.stderr
    base = next(line for line in out.stdout.splitlines() if line.startswith("| base |"))
    (path,) = [p for p in glob.glob(str(tmp_path / "results" / "nvidia-h200" / "*.json"))
               if not p.endswith("machine.json")]
    results = Results.load(path)
    name = "runtime_overhead.RuntimeOverhead.time_add1"
    host = results.get_result_value(name, results.get_result_params(name))[0]
    synced = results.get_result_value(name + "_synchronized", results.get_result_params(name))[0]
    assert f"{synced * 1e6:.1f}" in base.split("|")[7] and f"{host * 1e6:.1f}" not in base.split("|")[7]


def test_synchronized_breakdown_of_cpu_results_is_one_clear_error(recorded_project, tmp_path):
    project, _ = recorded_project
    out = breakdown(project, "ci-cpu", "--clock", "synchronized", "--output", str(tmp_path / "s.png"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "CUDA only" in out.stderr and "--clock host" in out.stderr
    assert not (tmp_path / "s.png").exists()


def test_compile_time_cold_is_slower_than_warm():
    from benchmarks.compile_time import CompileTime

    bench = CompileTime()
    variant = (False, False, False, False)
    bench.setup(*variant)
    cold = bench.track_cold_seconds(*variant)
    warm = bench.track_warm_seconds(*variant)
    assert 0 < warm < cold, (cold, warm)
    with pytest.raises(NotImplementedError):
        bench.setup(False, True, True, False)


def test_harness_times_every_forward_variant_four_ways():
    """Eager has four forward variants (its dynamic ones are skipped as duplicates): each
    gets asv's per-call figure, with our setup only, with no setup, and the reference."""
    out = subprocess.run([sys.executable, "-m", "torch_overhead", "harness", "--device", "cpu", "--rounds", "2",
                          "--bench", "layers.Eager.time_add1"],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    rows = [line.split(" | ") for line in out.stdout.splitlines() if line.startswith(("False |", "True |"))]
    assert [row[:4] for row in rows] == [[rg, im, "False", "False"] for rg in ("False", "True") for im in ("False", "True")]
    for row in rows:
        assert len(row) == 8 and all(float(cell.split()[0]) > 0 for cell in row[4:])


def test_instruction_breakdown_of_a_named_build_reads_its_layer_counts(tmp_path):
    """The committed per-layer counts of torch 2.13.0 on cpu-2core: every CPU layer beside the
    headline, each variant its own row; a build not in the index is one error line."""
    committed(tmp_path, "results/cpu-2core", "builds.json")
    out = breakdown(tmp_path, "cpu-2core", "--metric", "instructions", "--build", "2.13.0+cpu",
                    "--output", str(tmp_path / "i.png"))
    assert out.returncode == 0, out.stderr
    header = [line for line in out.stdout.splitlines() if line.startswith("| variant")][0]
    assert header.split(" | ")[1:5] == ["eager", "Dynamo", "AOTAutograd", "Inductor"]
    base = [line for line in out.stdout.splitlines() if line.startswith("| base |")][0]
    eager, dynamo = (int(c.replace(",", "")) for c in base.split(" | ")[1:3])
    assert 0 < eager < dynamo  # Dynamo's guards and frame evaluation add instructions to eager's call
    assert (tmp_path / "i.png").stat().st_size > 0
    missing = breakdown(tmp_path, "cpu-2core", "--build", "9.9")
    assert missing.returncode == 2 and missing.stderr.startswith("error: build '9.9' is not in builds.json")
