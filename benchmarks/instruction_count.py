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
import shutil
import subprocess
import sys
import tempfile

from concurrent.futures import ThreadPoolExecutor

from . import callgrind
from .common import SEED_PARAM_NAMES, SEED_PARAMS, child_env, skip_invalid_variant, work
from .device import device
from .settings import COUNT_LAYERS_ENV_VAR, FLOOR_LAYERS, HEADLINE_LAYER, LAYERS, VALID_VARIANTS

# Per variant, BLOCKS blocks of CALLS counted calls; the figure is the smallest block mean
# per call, as the seed takes the minimum of its 5 iterations: an occasional slow path
# (a cache sweep, a weakref callback) then cannot move the figure between runs.
BLOCKS = 5
CALLS = 20


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


def count_with_hardware_counter(jobs, calls=CALLS):
    """``{job: {"calling_thread": n}}`` by the hardware counter, in this process; a job is
    ``(layer, *variant)``."""
    import gc

    import torch

    counter = torch._C._instruction_counter
    counts = {}
    for job in jobs:
        call, before = layer_calls(*job)
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


WARM_CACHE = os.path.join(tempfile.gettempdir(), "torch-overhead-callgrind-inductor")


def counting_env(cache=WARM_CACHE):
    """Environment of every process that compiles or counts for callgrind."""
    return child_env(
        PYTHONHASHSEED="0",
        # One thread, as the seed's counts (Timer.collect_callgrind runs with num_threads=1).
        OMP_NUM_THREADS="1",
        # valgrind 3.19 cannot execute AVX-512 (SIGILL in Inductor's vectorized CPU
        # kernels, seen on the 2-core CPU machine, whose gcc targets AVX-512): compile
        # scalar kernels, in a cache of their own so none of the usual ones is loaded.
        TORCHINDUCTOR_VEC_ISA_OK="0",
        ATEN_CPU_CAPABILITY="avx2",
        TORCHINDUCTOR_CACHE_DIR=cache,
    )


def own_cache_env(folder):
    """A counting process's environment, with its own copy of the warm Inductor cache: processes
    that loaded from one cache at the same moment (its file locks, likely) read different
    counts, where four started together from copies read one. The copy's path is the same
    in every run (the job's position, the name of ``folder``): copies under a fresh temporary
    folder read another count in each run (docs/instruction-counts.md)."""
    cache = f"{WARM_CACHE}-{os.path.basename(folder)}"
    shutil.rmtree(cache, ignore_errors=True)
    if os.path.isdir(WARM_CACHE):
        shutil.copytree(WARM_CACHE, cache, ignore=shutil.ignore_patterns("locks"))
    else:  # no Inductor layer among the jobs (TORCH_OVERHEAD_COUNT_LAYERS=eager,dynamo): nothing warmed
        os.makedirs(cache)
    return counting_env(cache)


def warm_inductor_cache(jobs, processes=None):
    """Compile every Inductor job once, natively, into the counting cache, in up to
    ``processes`` (default: one per CPU) processes at once. A count taken in a process whose
    compile missed the cache read 0.3% off one whose compile hit it (base variant, CPU): with
    the cache warm, every counting process takes the same path."""
    jobs = [tuple(job) for job in jobs if job[0] in INDUCTOR_LAYERS]
    workers = max(1, min(len(jobs), processes or os.cpu_count() or 1))

    def warm(share):
        # A job that cannot compile (no C++ compiler for the C++ wrapper, say) is not warmed: its
        # counting process fails the same way and records the reason as that job's skip.
        code = ("from benchmarks.instruction_count import layer_calls\n"
                f"for job in {share!r}:\n"
                "    try: layer_calls(*job)\n"
                "    except Exception: pass\n")
        subprocess.run([sys.executable, "-c", code], env=counting_env(), check=True, capture_output=True)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(warm, [jobs[i::workers] for i in range(workers) if jobs[i::workers]]))


@contextlib.contextmanager
def caches_held():
    """Held while warming and counting: the caches' paths are fixed (``own_cache_env``), so one
    counting run at a time on a machine, whichever process or test runs it."""
    with open(WARM_CACHE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def headline_jobs():
    return [(HEADLINE_LAYER, *v) for v in VALID_VARIANTS]


def count_under_callgrind(jobs=None, calls=CALLS, processes=None):
    """``{job: counts or {"skip": reason}}``, a job being ``(layer, *variant)`` (default: the
    headline's variants): every job in its own callgrind process, side by side
    (``callgrind.count_side_by_side``). Raises callgrind.Unavailable."""
    jobs = [tuple(job) for job in (jobs or headline_jobs())]
    callgrind.find_valgrind()  # before the warm-up's minute: nothing to count with, nothing to warm
    with caches_held():
        warm_inductor_cache(jobs, processes)
        targets = {job: ("benchmarks.instruction_count:layer_calls", job) for job in jobs}
        return callgrind.count_side_by_side(targets, own_cache_env, BLOCKS, calls, processes)


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

    timeout = 3600

    def _read(self, cache, job):
        if "skip" in cache:
            raise NotImplementedError(cache["skip"])
        self.counts = cache["counts"][json.dumps(job)]
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
        return count(headline_jobs())

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
        chosen = counted_layers()
        if isinstance(chosen, str):
            return {"skip": chosen}
        jobs = [(layer, *v) for layer in chosen for v in VALID_VARIANTS if layer_skip(layer, v) is None]
        return count(jobs)

    def setup(self, cache, layer, requires_grad, inference_mode, backward, dynamic):
        skip_invalid_variant(requires_grad, inference_mode, backward)
        reason = layer_skip(layer, (requires_grad, inference_mode, backward, dynamic))
        if reason:
            raise NotImplementedError(reason)
        if "counts" in cache and json.dumps([layer, requires_grad, inference_mode, backward, dynamic]) not in cache["counts"]:
            raise NotImplementedError(f"not counted in this run ({COUNT_LAYERS_ENV_VAR}); select the counted "
                                      "layers with --bench too, or this n/a replaces their recorded counts")
        self._read(cache, [layer, requires_grad, inference_mode, backward, dynamic])


def counted_layers():
    """The layers LayerInstructionCount counts: those COUNT_LAYERS_ENV_VAR names, else all; a
    string (the reason every count is skipped) when it names a layer that does not exist."""
    every = [layer for layer in LAYERS if layer != HEADLINE_LAYER]
    named = [x.strip() for x in os.environ.get(COUNT_LAYERS_ENV_VAR, "").split(",") if x.strip()]
    unknown = [x for x in named if x not in every]
    if unknown:
        return f"{COUNT_LAYERS_ENV_VAR} names {', '.join(unknown)}: give some of {', '.join(every)}"
    return [layer for layer in every if layer in named] if named else every
