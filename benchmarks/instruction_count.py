"""The seed's own metric: instructions per call of the compiled ``add1``, per seed variant.

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

asv runs the counting once per suite run (``setup_cache``) and each variant's
``track_instructions`` (the calling thread, as the seed) and
``track_instructions_all_threads`` read their figures from there.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile

from . import callgrind
from .common import SEED_PARAM_NAMES, SEED_PARAMS, child_env, skip_invalid_variant, work
from .settings import VALID_VARIANTS

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


def add1_calls(requires_grad, inference_mode, backward, dynamic):
    """``(call, before)`` for one seed variant, compiled and warmed up: ``before()`` is the seed's
    untimed ``_prepare()`` (a fresh forward graph for backward), ``call(losses)`` its ``_work()``."""
    from .runtime_overhead import RuntimeOverhead

    _seed_sympy()
    add1, a = RuntimeOverhead()._prepare_once(requires_grad, inference_mode, backward, dynamic)
    before = (lambda: [add1(a).sum()]) if backward else None
    return (lambda losses: work(add1, a, inference_mode, backward, losses)), before


def count_with_hardware_counter(variants, calls=CALLS):
    """``{variant: {"calling_thread": n}}`` by the hardware counter, in this process."""
    import gc

    import torch

    counter = torch._C._instruction_counter
    counts = {}
    for variant in variants:
        call, before = add1_calls(*variant)
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
        counts[variant] = {"calling_thread": min(blocks)}
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
    shutil.copytree(WARM_CACHE, cache, ignore=shutil.ignore_patterns("locks"))
    return counting_env(cache)


def warm_inductor_cache(variants):
    """Compile every variant once, natively, into the counting cache. A count taken in a
    process whose compile missed the cache read 0.3% off one whose compile hit it (base
    variant, CPU): with the cache warm, every counting process takes the same path."""
    code = ("from benchmarks.instruction_count import add1_calls\n"
            f"for v in {[tuple(v) for v in variants]}: add1_calls(*v)")
    subprocess.run([sys.executable, "-c", code], env=counting_env(), check=True, capture_output=True)


def count_under_callgrind(variants=VALID_VARIANTS, calls=CALLS, processes=None):
    """``{variant: counts or {"skip": reason}}``: every variant in its own callgrind process,
    side by side (``callgrind.count_side_by_side``). Raises callgrind.Unavailable."""
    callgrind.find_valgrind()  # before the warm-up's minute: nothing to count with, nothing to warm
    with open(WARM_CACHE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the caches' paths are fixed: one counting run at a time
        warm_inductor_cache(variants)
        jobs = {tuple(v): ("benchmarks.instruction_count:add1_calls", tuple(v)) for v in variants}
        return callgrind.count_side_by_side(jobs, own_cache_env, BLOCKS, calls, processes)


class InstructionCount:
    """Instructions per call of the headline (Inductor) ``add1``, per seed variant."""

    params = SEED_PARAMS
    param_names = SEED_PARAM_NAMES
    version = "instruction-count-1"
    timeout = 1800

    def setup_cache(self):
        """All variants in one go; returns a JSON-safe dict (asv pickles it between processes)."""
        if _hardware_counter_works():
            counts, how = count_with_hardware_counter(VALID_VARIANTS), "hardware counter"
        else:
            try:
                counts, how = count_under_callgrind(), "callgrind"
            except callgrind.Unavailable as err:
                return {"skip": f"no hardware instruction counter here, and {err}"}
        return {"how": how, "counts": {json.dumps(v): c for v, c in counts.items()}}

    def setup(self, cache, requires_grad, inference_mode, backward, dynamic):
        skip_invalid_variant(requires_grad, inference_mode, backward)
        if "skip" in cache:
            raise NotImplementedError(cache["skip"])
        self.counts = cache["counts"][json.dumps([requires_grad, inference_mode, backward, dynamic])]
        if "skip" in self.counts:
            raise NotImplementedError(self.counts["skip"])

    def track_instructions(self, cache, requires_grad, inference_mode, backward, dynamic):
        """Instructions per call on the calling thread (the seed's metric): the smallest mean of
        BLOCKS blocks of CALLS calls, by the hardware counter or callgrind."""
        return self.counts["calling_thread"]

    track_instructions.unit = "instructions"

    def track_instructions_all_threads(self, cache, requires_grad, inference_mode, backward, dynamic):
        """Instructions per call on every thread: the calling thread's figure plus what the
        other threads (the autograd engine's device thread on CUDA) ran per counted call.
        Callgrind only: the hardware counter sees the calling thread, and then this records
        NaN, which asv shows as n/a (asv skips with a reason from ``setup`` only, shared here)."""
        return self.counts.get("all_threads", float("nan"))

    track_instructions_all_threads.unit = "instructions"
