"""Instruction counts under callgrind (benchmarks/callgrind.py, benchmarks/instruction_count.py).

valgrind is installed by the test command (``make test``'s ``valgrind`` target); these tests
fail, not skip, where it is missing.
"""

import os
import stat

import pytest

from benchmarks import callgrind, instruction_count as ic
from benchmarks.settings import VALGRIND_ENV_VAR

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = (False, False, False, False)


def env_with_targets():
    """The counting processes' environment, with counted_calls.py importable."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(os.path.dirname(HERE))]))


def count(jobs, processes=None):
    return callgrind.count_side_by_side(jobs, env_with_targets(), blocks=3, calls=4, processes=processes)


def test_calling_thread_and_all_threads_are_told_apart():
    """A call that hands work to a long-lived worker thread (as backward does on CUDA): the
    calling thread's figure has the caller's share only, and not the uncounted work before
    each call; the all-threads figure adds the worker's."""
    import counted_calls as cc

    per_loop = count({"loop": ("counted_calls:on_the_caller", (cc.WORKER_LOOPS,))})["loop"]["calling_thread"]
    per_loop /= cc.WORKER_LOOPS
    counts = count({"threaded": ("counted_calls:handed_to_a_worker", ())})["threaded"]
    assert counts["calling_thread"] < 0.5 * cc.WORKER_LOOPS * per_loop  # not the worker's loop
    assert counts["calling_thread"] > cc.CALLER_LOOPS * per_loop  # the caller's own loop
    worker = counts["all_threads"] - counts["calling_thread"]
    assert 0.9 < worker / (cc.WORKER_LOOPS * per_loop) < 1.5, (worker, per_loop)


def test_one_crashing_process_skips_only_its_own_figure():
    counts = count({"crash": ("counted_calls:crashing", ()), "fine": ("counted_calls:on_the_caller", (100,))})
    assert "valgrind exited" in counts["crash"]["skip"] and "calling_thread" not in counts["crash"]
    assert counts["fine"]["calling_thread"] > 0


def test_pin_each_gives_every_counting_process_a_cpu_of_its_own(tmp_path):
    """By default a counting process may run on any CPU (asv pinned the benchmark process to one);
    ``pin_each`` puts each on one CPU that no other process running with it shares."""
    def cpus(pin_each):
        jobs = {str(n): ("counted_calls:cpus_written_to", (str(tmp_path / f"{pin_each}{n}"),)) for n in range(2)}
        callgrind.count_side_by_side(jobs, env_with_targets(), blocks=1, calls=1, processes=2, pin_each=pin_each)
        return [(tmp_path / f"{pin_each}{n}").read_text().split() for n in range(2)]

    every = [str(cpu) for cpu in range(os.cpu_count())]
    assert cpus(False) == [every, every]
    one, other = cpus(True)
    assert len(one) == len(other) == 1 and one != other


def test_counts_repeat_side_by_side_and_each_layer_is_counted_as_its_own():
    """The compiled inference_mode variant counted alone, then beside another process, as the suite
    counts (its own copy of the warm cache, at the same path both times): equal. In a fresh clone
    the first of them is the first process to load the suite's modules: without their bytecode
    compiled beforehand, the two read 1.8% apart (docs/instruction-counts.md). Beside it, the same variant at the eager layer: the
    same ``a + 1`` without Dynamo's guards and Inductor's wrapper, so fewer instructions."""
    job = ("inductor", False, True, False, False)
    eager = ("eager",) + job[1:]
    jobs = {"a": ("benchmarks.instruction_count:layer_calls", job),
            "eager": ("benchmarks.instruction_count:layer_calls", eager)}

    def env(folder):
        return ic.own_cache_env(folder, eager if os.path.basename(folder) == "eager" else job)

    with ic.caches_held():  # a counting run of another test beside it would write the same cache copies
        ic.warm_inductor_cache([job])
        # Counted alone twice: in a fresh clone the first count of a job read off the next once in
        # three runs even with the bytecode compiled (2026-12-04, cause not found, docs/instruction-counts.md).
        for _ in range(2):
            alone = callgrind.count_side_by_side({"a": jobs["a"]}, env, blocks=2, calls=5, processes=1)
        counts = callgrind.count_side_by_side(jobs, env, blocks=2, calls=5, processes=2)
    first = counts["a"]["calling_thread"]
    assert 50_000 < first < 1_000_000  # about 201,000 on torch 2.13 CPU
    assert first == alone["a"]["calling_thread"]
    assert counts["a"]["all_threads"] == first  # no other thread works in a CPU forward call
    assert 0 < counts["eager"]["calling_thread"] < 0.8 * first


def test_the_cpp_wrapper_layer_is_compiled_for_an_isa_valgrind_runs(tmp_path):
    """Its compile targets the host (-march=native), and valgrind 3.19 stopped at the AVX-512 code
    of the 2-core CPU machine ("Unrecognised instruction") in every release: that job alone is
    compiled through a g++ that targets x86-64-v2, and counts; no other job's environment changes."""
    job = ("inductor_cpp_wrapper", *BASE)
    assert ic.own_cache_env(str(tmp_path / "1"), ("inductor", *BASE)).keys() == (
        ic.own_cache_env(str(tmp_path / "2"), job).keys() - {"CXX"})
    with ic.caches_held():
        ic.warm_inductor_cache([job])
        counts = callgrind.count_side_by_side({ic.slot(job) + "0": ("benchmarks.instruction_count:layer_calls", job)},
                                              lambda folder: ic.own_cache_env(folder, job), blocks=1, calls=2)
    assert 50_000 < counts[ic.slot(job) + "0"].get("calling_thread", 0) < 1_000_000, counts


def test_a_run_counting_no_inductor_layer_gives_each_process_an_empty_cache(monkeypatch, tmp_path):
    """A run counting eager and Dynamo alone warms nothing: no warm cache to copy (the copy
    failed there, 2026-12-04, and every layer of the run was skipped)."""
    monkeypatch.setattr(ic, "WARM_CACHE", str(tmp_path / "never-warmed"))
    job = ("eager", False, False, False, True)
    ic.warm_inductor_cache([job])
    assert not os.path.exists(ic.warm_cache(job))
    env = ic.own_cache_env(str(tmp_path / "0"), job)
    assert os.listdir(env["TORCHINDUCTOR_CACHE_DIR"]) == []


def test_layers_a_machine_cannot_count_are_skipped_with_the_reason(monkeypatch):
    monkeypatch.setenv("TORCH_OVERHEAD_DEVICE", "cpu")
    base, dynamic = (False, False, False, False), (False, False, False, True)
    assert "CUDA only" in ic.layer_skip("triton_launch", base)
    assert "CUDA graphs need CUDA" in ic.layer_skip("inductor_cudagraphs", base)
    assert "no dynamic shapes" in ic.layer_skip("eager", dynamic)
    assert ic.layer_skip("dynamo", dynamic) is None
    monkeypatch.setattr(ic, "device", lambda: "cuda")  # this torch sees no GPU: the rule alone
    assert "no variants" in ic.layer_skip("cuda_graph_replay", dynamic)
    assert ic.layer_skip("cuda_graph_replay", base) is None


def test_valgrind_named_by_the_variable_is_used(monkeypatch, tmp_path):
    """A valgrind that is not on PATH, named by the variable (as the GPU machine's kit)."""
    real = callgrind.find_valgrind()
    link = tmp_path / "bin" / "valgrind"
    link.parent.mkdir()
    link.symlink_to(real)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv(VALGRIND_ENV_VAR, str(link))
    assert callgrind.find_valgrind() == str(link)


def test_variable_naming_no_executable_is_unavailable_with_its_name(monkeypatch, tmp_path):
    script = tmp_path / "valgrind"
    script.write_text("#!/bin/sh\n")
    for path in (tmp_path / "missing", script):  # missing, then not executable
        monkeypatch.setenv(VALGRIND_ENV_VAR, str(path))
        with pytest.raises(callgrind.Unavailable, match=VALGRIND_ENV_VAR + "=" + str(path)):
            callgrind.find_valgrind()


def test_no_valgrind_and_no_counter_is_a_skip_with_a_reason(monkeypatch):
    monkeypatch.setattr(ic, "_hardware_counter_works", lambda: False)
    monkeypatch.delenv(VALGRIND_ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    cache = ic.InstructionCount().setup_cache()
    with pytest.raises(NotImplementedError, match="valgrind is not installed"):
        ic.InstructionCount().setup(cache, *BASE)


def test_no_c_compiler_is_a_skip_with_a_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(callgrind.Unavailable, match="no C compiler"):
        callgrind.build_shim(callgrind.find_valgrind(), str(tmp_path))


def test_shim_is_built_against_the_header_beside_a_relocated_valgrind(tmp_path):
    """A kit laid out as the GPU machine's (``valgrind``, ``lib/``, ``include/valgrind/``) with a
    header that cannot compile: the shim is built against it, not the system's."""
    kit = tmp_path / "kit"
    (kit / "include" / "valgrind").mkdir(parents=True)
    (kit / "include" / "valgrind" / "callgrind.h").write_text("#error the kit's own header\n")
    (kit / "lib").mkdir()
    (kit / "lib" / "callgrind-amd64-linux").write_text("")
    binary = kit / "valgrind"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(callgrind.Unavailable, match="the kit's own header"):
        callgrind.build_shim(str(binary), str(tmp_path))
    assert callgrind.valgrind_env(str(binary), {})["VALGRIND_LIB"] == str(kit / "lib")


def test_a_variant_whose_process_crashed_is_skipped_with_the_reason():
    cache = {"counts": {'["inductor", false, false, false, false]': {"skip": "valgrind exited 1: SIGILL"},
                        '["inductor", true, false, false, false]': {"calling_thread": 1.0, "all_threads": 2.0}}}
    bench = ic.InstructionCount()
    with pytest.raises(NotImplementedError, match="SIGILL"):
        bench.setup(cache, *BASE)
    bench.setup(cache, True, False, False, False)
    assert bench.track_instructions(cache, True, False, False, False) == 1.0
    assert bench.track_instructions_all_threads(cache, True, False, False, False) == 2.0


def test_a_run_counts_only_what_its_bench_patterns_select(monkeypatch):
    """The runner reads --bench into the counting jobs (asv tells ``setup_cache`` nothing of the
    selection): a run selecting two layers, or one variant, counts those processes alone, and
    the per-layer counts can be recorded over several runs (a GPU machine's calls are short)."""
    from torch_overhead.lib.benchmark_env import benchmark_env, counted_jobs

    monkeypatch.setenv("TORCH_OVERHEAD_DEVICE", "cpu")
    counted = []
    monkeypatch.setattr(ic, "count", lambda jobs: counted.extend(jobs) or {
        "how": "test", "counts": {ic.json.dumps(list(job)): {"calling_thread": 1.0} for job in jobs}})
    layers, headline = ic.LayerInstructionCount(), ic.InstructionCount()

    def select(*patterns):
        counted.clear()
        env = benchmark_env("cpu", "0" * 12, os.path.dirname(os.path.dirname(HERE)), list(patterns))
        monkeypatch.setenv(ic.COUNT_JOBS_ENV_VAR, env[ic.COUNT_JOBS_ENV_VAR])
        return layers.setup_cache(), headline.setup_cache()

    cache, _ = select(r"^instruction_count\.LayerInstructionCount\.[a-z_]+\('(eager|dynamo)'")
    assert {job[0] for job in counted} == {"eager", "dynamo"} and len(counted) == 5 + 10  # eager has no dynamic
    layers.setup(cache, "dynamo", *BASE)
    assert layers.track_instructions(cache, "dynamo", *BASE) == 1.0
    with pytest.raises(NotImplementedError, match="not counted in this run"):
        layers.setup(cache, "aot_eager", *BASE)
    select(r"\('dynamo', False, False, False, True\)$", r"^instruction_count\.InstructionCount\..*\(True, False, True, True\)")
    assert counted == [("dynamo", False, False, False, True), ("inductor", True, False, True, True)]
    select(r"^runtime_overhead\.")
    assert counted == []
    assert counted_jobs([]) is None
    monkeypatch.delenv(ic.COUNT_JOBS_ENV_VAR)
    counted.clear()
    layers.setup_cache()
    assert {job[0] for job in counted} == {"eager", "dynamo", "aot_eager", "inductor_cpp_wrapper"}  # the CPU's


@pytest.fixture
def nothing_warmed(monkeypatch, tmp_path):
    """count_under_callgrind with no warm-up and no valgrind looked for: the test stands in for
    count_side_by_side."""
    monkeypatch.setattr(ic, "WARM_CACHE", str(tmp_path / "warm"))
    monkeypatch.setattr(ic, "warm_inductor_cache", lambda jobs, processes: None)
    monkeypatch.setattr(callgrind, "find_valgrind", lambda: "valgrind")


def test_every_job_is_counted_in_each_memory_layout_and_averaged(monkeypatch, tmp_path, nothing_warmed):
    """An unused variable's length alone moved a count by 2.4% (the heap's layout): each job runs
    once per LAYOUT_PADS length, in folders named alike in every run, and reads their mean; a
    layout that fails skips the job with its reason."""
    seen = {}

    def side_by_side(targets, env, blocks, calls, processes):
        for name in targets:
            seen[name] = len(env(str(tmp_path / name))[ic.LAYOUT_PAD_ENV_VAR])
        return {name: {"skip": "crashed"} if name.startswith("5") and name.endswith("2") else
                {"calling_thread": 100.0 + seen[name], "all_threads": 200.0 + seen[name]} for name in targets}

    monkeypatch.setattr(callgrind, "count_side_by_side", side_by_side)
    base, cpp = ("inductor", *BASE), ("inductor_cpp_wrapper", *BASE)
    counts = ic.count_under_callgrind([base, cpp])
    assert sorted(seen.items()) == [("30000" + str(k), pad) for k, pad in enumerate(ic.LAYOUT_PADS)] + [
        ("50000" + str(k), pad) for k, pad in enumerate(ic.LAYOUT_PADS)]
    mean = sum(ic.LAYOUT_PADS) / len(ic.LAYOUT_PADS)
    assert counts[base] == {"calling_thread": 100 + mean, "all_threads": 200 + mean,
                            "layouts": [100.0 + pad for pad in ic.LAYOUT_PADS]}
    assert counts[cpp] == {"skip": "crashed"}


def test_the_cuda_backward_is_counted_longer_and_in_more_processes(monkeypatch, tmp_path, nothing_warmed):
    """On CUDA the backward's calling thread races the autograd device thread: its jobs run
    RACY_CALLS calls a block, the headline's in RACY_REPEATS processes per layout; every other
    job, and the backward on the CPU, one process per layout of CALLS calls."""
    calls_of = {}

    def side_by_side(targets, env, blocks, calls, processes):
        for name in targets:
            env(str(tmp_path / name))
            calls_of[name] = calls(name)
        return {name: {"calling_thread": float(len(name)), "all_threads": 1.0} for name in targets}

    monkeypatch.setattr(callgrind, "count_side_by_side", side_by_side)
    forward, backward = (ic.HEADLINE_LAYER, *BASE), (ic.HEADLINE_LAYER, True, False, True, False)
    eager_backward = ("eager", True, False, True, False)
    for device, racy in (("cuda", True), ("cpu", False)):
        monkeypatch.setattr(ic, "device", lambda device=device: device)
        calls_of.clear()
        counts = ic.count_under_callgrind([forward, backward, eager_backward])
        calls = ic.RACY_CALLS if racy else ic.CALLS
        for job, processes, job_calls in ((forward, 1, ic.CALLS), (eager_backward, 1, calls),
                                          (backward, ic.RACY_REPEATS if racy else 1, calls)):
            names = [name for name in calls_of if name.startswith(ic.slot(job))]
            assert len(names) == len(ic.LAYOUT_PADS) * processes, (device, job)
            assert {calls_of[n] for n in names} == {job_calls}, (device, job)
            assert len(counts[job]["layouts"]) == len(names)
    # A run that records only the count over all threads, which the race does not move: one process a layout.
    monkeypatch.setattr(ic, "device", lambda: "cuda")
    monkeypatch.setenv(ic.ALL_THREADS_ONLY_ENV_VAR, "1")
    calls_of.clear()
    ic.count_under_callgrind([backward])
    assert len(calls_of) == len(ic.LAYOUT_PADS) and set(calls_of.values()) == {ic.RACY_CALLS}


def test_the_runner_says_when_only_the_all_threads_counts_are_recorded():
    from torch_overhead.lib.benchmark_env import benchmark_env

    root = os.path.dirname(os.path.dirname(HERE))
    only = [r"^instruction_count\.InstructionCount\.track_instructions_all_threads\(True, False, True, False\)$"]
    for patterns, expected in ((only, "1"), (only + [r"InstructionCount\.track_instructions\("], None),
                               ([r"^runtime_overhead\."], None), ([], None)):
        assert benchmark_env("cuda", "0" * 12, root, patterns).get(ic.ALL_THREADS_ONLY_ENV_VAR) == expected, patterns


def test_a_job_is_warmed_once_per_build_and_its_cache_kept(monkeypatch, tmp_path):
    """Two compiles of one job write cache entries of other names and sizes, which moved a count
    by 1.5%: a job's warm cache is compiled once for the build and read by every later run."""
    monkeypatch.setattr(ic, "WARM_CACHE", str(tmp_path / "warm"))
    compiled = []

    def compile_into(command, env, **kwargs):
        compiled.append(env["TORCHINDUCTOR_CACHE_DIR"])
        with open(os.path.join(env["TORCHINDUCTOR_CACHE_DIR"], "entry"), "w") as f:
            f.write(str(len(compiled)))

    monkeypatch.setattr(ic.subprocess, "run", compile_into)
    base, dynamic = ("inductor", *BASE), ("inductor", False, False, False, True)
    ic.warm_inductor_cache([base])
    ic.warm_inductor_cache([base, dynamic, ("eager", *BASE)])
    assert compiled == [ic.warm_cache(base), ic.warm_cache(dynamic)]  # in place: C++ sources name their headers' paths
    with open(os.path.join(ic.warm_cache(base), "entry")) as f:
        assert f.read() == "1"
    env = ic.own_cache_env(str(tmp_path / (ic.slot(base) + "0")), base)
    assert os.listdir(env["TORCHINDUCTOR_CACHE_DIR"]) == ["entry"]
