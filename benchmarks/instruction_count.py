"""The seed's own metric: instructions per call of the compiled ``add1``, per seed variant,
for the headline (``InstructionCount``) and for every layer beneath and beside it
(``LayerInstructionCount``: which layer adds the instructions, deterministically).

Off by default (``python -m torch_overhead run --slow`` turns it on). Instruction counts
do not drift with machine load: the honest way to see a 2% change on a shared machine.

How, and why this way:

* a hardware counter when the machine has one: ``torch._C._instruction_counter``, which
  PyTorch's own pr_time_benchmarks use (user-space instructions of the calling thread);
* else valgrind's callgrind (``callgrind.py``): one process per variant, side by side, the
  imports and compile uninstrumented. ``torch.utils.benchmark.Timer.collect_callgrind``
  instead instruments a whole new interpreter per measurement: minutes per variant.
  ``PYTHONHASHSEED=0``, a seeded SymPy (``_seed_sympy``) and a warm Inductor cache make
  the counts repeatable between processes (docs/instruction-counts.md).
* neither: the benchmark is skipped with the reason.

asv runs the counting once per suite run and class (``setup_cache``) and each variant's
``track_instructions`` (the calling thread, as the seed) and
``track_instructions_all_threads`` read their figures from there.
"""

import contextlib
import fcntl
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from concurrent.futures import ThreadPoolExecutor

from . import callgrind
from .common import SEED_PARAM_NAMES, SEED_PARAMS, child_env, skip_invalid_variant, work
from .device import device
from .settings import ALL_THREADS_ONLY_ENV_VAR, COUNT_JOBS_ENV_VAR, FLOOR_LAYERS, HEADLINE_LAYER, LAYERS, VALID_VARIANTS

# Per variant, BLOCKS blocks of CALLS counted calls; the figure is the smallest block mean
# per call, as the seed takes the minimum of its 5 iterations: an occasional slow path
# (a cache sweep, a weakref callback) then cannot move the figure between runs.
BLOCKS = 5
CALLS = 20
# Under callgrind every job is counted in one process per memory layout, and the figure is their
# mean: an unused environment variable's length alone moves a count, since CPython's address-keyed
# tables collide differently, and so does any change of build (docs/instruction-counts.md, "What
# moves a count"). The lengths are fixed: two runs repeat.
LAYOUT_PADS = (0, 512, 4096)
LAYOUT_PAD_ENV_VAR = "TORCH_OVERHEAD_LAYOUT_PAD"
# On CUDA the backward's calling thread races the autograd engine's device thread call by call
# (who frees the shared GraphTask): its count moves between processes however the layout is fixed.
# Longer blocks, and for the headline more processes per layout, average the race out; the other
# layers keep one process a layout, which keeps all layers' counting within its 20 minutes on a GPU
# machine (docs/instruction-counts.md, docs/cost.md). So does a run that records only the count
# over all threads, which the race does not move (compare's backward verdicts).
RACY_CALLS = 200
RACY_REPEATS = 4


def counting_plan(job):
    """``(calls per block, processes per layout)`` for one job ``(layer, *variant)``."""
    layer, backward = job[0], job[3]
    if not (backward and device() == "cuda"):
        return CALLS, 1
    repeated = layer == HEADLINE_LAYER and os.environ.get(ALL_THREADS_ONLY_ENV_VAR) != "1"
    return RACY_CALLS, RACY_REPEATS if repeated else 1


def _hardware_counter_works():
    import torch

    counter = getattr(torch._C, "_instruction_counter", None)
    if counter is None:
        return False
    start = counter.start()
    count = counter.end(start)
    return start >= 0 and 0 < count < 2**40  # -1 or a wrapped value where no PMU is exposed


def _seed_sympy():
    """SymPy shuffles the order in which it deduces assumptions with a generator of its own,
    seeded from the OS at import; dynamic-shape compiles run through it, so without a fixed
    seed each process compiles along a different path."""
    try:
        import sympy.core.random
    except ImportError:
        return
    sympy.core.random.seed(0)


INDUCTOR_LAYERS = ("inductor", "inductor_cudagraphs", "inductor_cpp_wrapper")  # what the warm cache holds


def _benchmark(layer):
    module, name = LAYERS[layer].split(":")
    return getattr(importlib.import_module(f"benchmarks.{module}"), name)()


def layer_skip(layer, variant):
    """Why ``layer`` is not counted for this seed variant here, or None."""
    if layer in FLOOR_LAYERS:
        if device() != "cuda":
            return "CUDA only: the floor is a raw GPU launch"
        return "the floor has no variants: counted once, as the base variant" if any(variant) else None
    return _benchmark(layer).unsupported(device(), *variant)


def layer_calls(layer, requires_grad, inference_mode, backward, dynamic):
    """``(call, before)`` for one layer and seed variant, built and warmed up as its timing
    benchmark does: ``before()`` is the seed's untimed ``_prepare()`` (a fresh forward graph for
    backward), ``call(losses)`` its ``_work()``; for the floor, one launch or replay."""
    _seed_sympy()
    bench = _benchmark(layer)
    if layer in FLOOR_LAYERS:
        launch, out = bench.prepare()
        return (lambda state, out=out: launch()), None  # out: the graph's output stays allocated
    add1, a = bench._prepare_once(requires_grad, inference_mode, backward, dynamic)
    before = (lambda: [add1(a).sum()]) if backward else None
    return (lambda losses: work(add1, a, inference_mode, backward, losses)), before


def count_with_hardware_counter(jobs):
    """``{job: {"calling_thread": n}}`` by the hardware counter, in this process; a job is
    ``(layer, *variant)``, counted in blocks of its ``counting_plan`` calls."""
    import gc

    import torch

    counter = torch._C._instruction_counter
    counts = {}
    for job in jobs:
        call, before = layer_calls(*job)
        calls = counting_plan(job)[0]
        gc.collect()
        gc.disable()  # no collection may land inside a counted call
        blocks = []
        for _ in range(BLOCKS):
            total = 0
            for _ in range(calls):
                state = before() if before else None
                start = counter.start()
                call(state)
                total += counter.end(start)
            blocks.append(total / calls)
        gc.enable()
        counts[job] = {"calling_thread": min(blocks)}
    return counts


WARM_CACHE = os.path.join(tempfile.gettempdir(), "torch-overhead-callgrind-caches")  # copies beside it: WARM_CACHE-<name>


# The caller's variables a counting process gets; the others are left out, since the environment's
# size alone moves counts (LAYOUT_PADS): asv's own variables, the commit under test, or a host
# name that differs between machine starts would otherwise change the figure.
PASSED_VARIABLES = re.compile(r"PATH|PYTHONPATH|HOME|TMPDIR|LANG|LC_\w+|LD_LIBRARY_PATH|LD_PRELOAD|VIRTUAL_ENV|CONDA_PREFIX|CC|"
                              r"VALGRIND_LIB|(CUDA|NVIDIA|TRITON|TORCHINDUCTOR|OMP|MKL|KMP)_\w+|"
                              r"TORCH_OVERHEAD_(DEVICE|INJECT_\w+)")


# valgrind 3.19 cannot execute AVX-512, and Inductor compiles the C++ wrapper for the host
# (-march=native; no setting chooses otherwise before torch 2.13): that job compiles through a g++
# that appends an ISA valgrind runs (the last -march wins). For that job only: another variable in
# every process would move every other job's count (LAYOUT_PADS).
VALGRIND_MARCH = "-march=x86-64-v2"


def compiler_for_valgrind():
    """The fixed path of that g++ (named so: older builds tell gcc by the compiler's name)."""
    path = os.path.join(f"{WARM_CACHE}-cxx", "g++")
    script = f'#!/bin/sh\nexec g++ "$@" {VALGRIND_MARCH}\n'
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as f:
        f.seek(0)
        current = f.read()
    if current != script:  # written beside, then renamed: processes start side by side
        with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(path), delete=False) as f:
            f.write(script)
        os.chmod(f.name, 0o755)
        os.replace(f.name, path)
    return path


def counting_env(cache, job):
    """Environment of every process that compiles or counts ``job`` for callgrind: the caller's
    variables that ``PASSED_VARIABLES`` names, and these."""
    env = {name: value for name, value in child_env().items() if PASSED_VARIABLES.fullmatch(name)}
    return dict(
        env,
        PYTHONHASHSEED="0",
        # One thread, as the seed's counts (Timer.collect_callgrind runs with num_threads=1).
        OMP_NUM_THREADS="1",
        # valgrind 3.19 cannot execute AVX-512 (SIGILL in Inductor's vectorized CPU
        # kernels, seen on the 2-core CPU machine, whose gcc targets AVX-512): compile
        # scalar kernels, in a cache of their own so none of the usual ones is loaded.
        TORCHINDUCTOR_VEC_ISA_OK="0",
        ATEN_CPU_CAPABILITY="avx2",
        TORCHINDUCTOR_CACHE_DIR=cache,
        **({"CXX": compiler_for_valgrind()} if job[0] == "inductor_cpp_wrapper" else {}),
    )


def warm_cache(job):
    """One job's warm Inductor cache for this torch build, compiled by that job alone and kept: a
    counting process reads the copy's files, and two compiles of one job write entries of other
    names and sizes, which moved counts; a cache shared by every job, or by every build, made a
    count depend on what else had been compiled (docs/instruction-counts.md)."""
    import torch

    return os.path.join(WARM_CACHE, torch.version.git_version[:12] if torch.version.git_version else torch.__version__,
                        slot(job))


def own_cache_env(folder, job, pad=0):
    """A counting process's environment, with its own copy of ``job``'s warm cache: processes
    that loaded from one cache at the same moment (its file locks, likely) read different
    counts, where four started together from copies read one. The copy's path is the same
    in every run, whatever else the run counts (the folder's name: the job's ``slot`` and its
    layout): copies under a fresh temporary folder read another count in each run
    (docs/instruction-counts.md). ``pad``: the length of the layout's unused variable."""
    cache = f"{WARM_CACHE}-{os.path.basename(folder)}"
    shutil.rmtree(cache, ignore_errors=True)
    if os.path.isdir(warm_cache(job)):
        shutil.copytree(warm_cache(job), cache, ignore=shutil.ignore_patterns("locks"))
    else:  # not an Inductor layer: nothing warmed
        os.makedirs(cache)
    return dict(counting_env(cache, job), **{LAYOUT_PAD_ENV_VAR: "x" * pad})


def warm_inductor_cache(jobs, processes=None):
    """Compile every Inductor job not yet warmed for this build, natively, each in a process of
    its own into its cache (``warm_cache``), up to ``processes`` (default: one per CPU) at once: a
    count taken in a process whose compile missed the cache read off one whose compile hit it;
    with the cache warm, every counting process takes the same path."""
    jobs = [tuple(job) for job in jobs if job[0] in INDUCTOR_LAYERS and not os.path.exists(warm_cache(job) + ".done")]

    def warm(job):
        # Compiled in place, not renamed once complete: cached C++ sources include headers by the
        # absolute path they were compiled at (torch 2.5.1). The marker says the compile finished.
        cache = warm_cache(job)
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        # A job that cannot compile (no C++ compiler for the C++ wrapper, say) is not warmed: its
        # counting process fails the same way and records the reason as that job's skip.
        code = f"from benchmarks.instruction_count import layer_calls\ntry: layer_calls(*{job!r})\nexcept Exception: pass\n"
        subprocess.run([sys.executable, "-c", code], env=counting_env(cache, job), check=True, capture_output=True)
        open(cache + ".done", "w").close()

    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), processes or os.cpu_count() or 1))) as pool:
        list(pool.map(warm, jobs))


@contextlib.contextmanager
def caches_held():
    """Held while warming and counting: the caches' paths are fixed (``own_cache_env``), so one
    counting run at a time on a machine, whichever process or test runs it."""
    with open(WARM_CACHE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def headline_jobs():
    return [(HEADLINE_LAYER, *v) for v in VALID_VARIANTS]


def selected(jobs):
    """Those of ``jobs`` the run records: the ones COUNT_JOBS_ENV_VAR lists (the runner's reading
    of --bench), else all of them."""
    listed = os.environ.get(COUNT_JOBS_ENV_VAR)
    if listed is None:
        return list(jobs)
    chosen = {tuple(job) for job in json.loads(listed)}
    return [job for job in jobs if tuple(job) in chosen]


def slot(job):
    """A job's name, the same in every run and of one length for all (the characters of its
    cache copy's path count, ``own_cache_env``): the layer's position, then the variant's flags."""
    return f"{list(LAYERS).index(job[0])}{''.join(str(int(flag)) for flag in job[1:])}"


def mean_over_layouts(counts):
    """One job's figures from its processes (one or more per layout): their mean, each process's
    calling-thread count beside it (``layouts``), or the first process's reason to skip."""
    for each in counts:
        if "skip" in each:
            return each
    figures = {key: sum(each[key] for each in counts) / len(counts) for key in ("calling_thread", "all_threads")}
    return dict(figures, layouts=[each["calling_thread"] for each in counts])


def count_under_callgrind(jobs=None, processes=None):
    """``{job: counts or {"skip": reason}}``, a job being ``(layer, *variant)`` (default: the
    headline's variants): every job in its ``counting_plan``'s processes per layout
    (``LAYOUT_PADS``), side by side (``callgrind.count_side_by_side``). Raises
    callgrind.Unavailable."""
    jobs = [tuple(job) for job in (headline_jobs() if jobs is None else jobs)]
    callgrind.find_valgrind()  # before the warm-up's minute: nothing to count with, nothing to warm
    processes_of = {}  # the processes' folders, named alike in every run: {name: (job, pad)}
    for job in jobs:
        repeats = counting_plan(job)[1]
        for k, pad in enumerate(LAYOUT_PADS):
            for r in range(repeats):
                processes_of[f"{slot(job)}{k}{r if repeats > 1 else ''}"] = job, pad
    with caches_held():
        warm_inductor_cache(jobs, processes)
        targets = {name: ("benchmarks.instruction_count:layer_calls", job) for name, (job, _) in processes_of.items()}
        counts = callgrind.count_side_by_side(
            targets, lambda folder: own_cache_env(folder, *processes_of[os.path.basename(folder)]),
            BLOCKS, lambda name: counting_plan(processes_of[name][0])[0], processes)
    return {job: mean_over_layouts([counts[name] for name, (j, _) in processes_of.items() if j == job]) for job in jobs}


def count(jobs):
    """What ``setup_cache`` returns (JSON-safe: asv pickles it between processes): the jobs'
    counts by the hardware counter, else callgrind, else the reason neither can count."""
    if _hardware_counter_works():
        counts, how = count_with_hardware_counter(jobs), "hardware counter"
    else:
        try:
            counts, how = count_under_callgrind(jobs), "callgrind"
        except callgrind.Unavailable as err:
            return {"skip": f"no hardware instruction counter here, and {err}"}
    return {"how": how, "counts": {json.dumps(job): c for job, c in counts.items()}}


class _Counts:
    """Reads one job's figures from the class's ``setup_cache``; subclasses say which job."""

    timeout = 7200  # every layer of every variant, on a loaded 2-core CPU, can take past an hour (docs/backfill.md)

    def _read(self, cache, job):
        if "skip" in cache:
            raise NotImplementedError(cache["skip"])
        self.counts = cache["counts"].get(json.dumps(job))
        if self.counts is None:  # asv run directly, with a COUNT_JOBS_ENV_VAR of another selection
            raise NotImplementedError(f"not counted in this run: {COUNT_JOBS_ENV_VAR} leaves it out")
        if "skip" in self.counts:
            raise NotImplementedError(self.counts["skip"])

    def track_instructions(self, cache, *params):
        """Instructions per call on the calling thread (the seed's metric): the smallest mean of
        BLOCKS blocks of CALLS calls, by the hardware counter or callgrind."""
        return self.counts["calling_thread"]

    track_instructions.unit = "instructions"

    def track_instructions_all_threads(self, cache, *params):
        """Instructions per call on every thread: the calling thread's figure plus what the
        other threads (the autograd engine's device thread on CUDA) ran per counted call.
        Callgrind only: the hardware counter sees the calling thread, and then this records
        NaN, which asv shows as n/a (asv skips with a reason from ``setup`` only, shared here)."""
        return self.counts.get("all_threads", float("nan"))

    track_instructions_all_threads.unit = "instructions"


class InstructionCount(_Counts):
    """Instructions per call of the headline (Inductor) ``add1``, per seed variant."""

    params = SEED_PARAMS
    param_names = SEED_PARAM_NAMES
    version = "instruction-count-1"

    def setup_cache(self):
        return count(selected(headline_jobs()))

    def setup(self, cache, requires_grad, inference_mode, backward, dynamic):
        skip_invalid_variant(requires_grad, inference_mode, backward)
        self._read(cache, [HEADLINE_LAYER, requires_grad, inference_mode, backward, dynamic])


class LayerInstructionCount(_Counts):
    """Instructions per call of ``add1`` at every layer beneath and beside the headline, per seed
    variant: eager, Dynamo, AOTAutograd, Inductor with CUDA graphs and with the C++ wrapper,
    and the floor (the headline itself is ``InstructionCount``)."""

    params = [[layer for layer in LAYERS if layer != HEADLINE_LAYER], *SEED_PARAMS]
    param_names = ["layer", *SEED_PARAM_NAMES]
    version = "layer-instruction-count-1"

    def setup_cache(self):
        every = [(layer, *v) for layer in LAYERS if layer != HEADLINE_LAYER for v in VALID_VARIANTS]
        return count([job for job in selected(every) if layer_skip(job[0], job[1:]) is None])

    def setup(self, cache, layer, requires_grad, inference_mode, backward, dynamic):
        skip_invalid_variant(requires_grad, inference_mode, backward)
        reason = layer_skip(layer, (requires_grad, inference_mode, backward, dynamic))
        if reason:
            raise NotImplementedError(reason)
        self._read(cache, [layer, requires_grad, inference_mode, backward, dynamic])

