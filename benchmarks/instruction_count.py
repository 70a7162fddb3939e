"""The seed's own metric: instructions per call of the compiled ``add1``, per seed variant.

Off by default (``python -m torch_overhead run --slow`` turns it on). Instruction counts
do not drift with machine load: the honest way to see a 2% change on a shared machine.

How, and why this way:

* a hardware counter when the machine has one: ``torch._C._instruction_counter``, which
  PyTorch's own pr_time_benchmarks use (user-space instructions of the calling thread);
* else valgrind's callgrind. ``torch.utils.benchmark.Timer.collect_callgrind`` starts a
  new interpreter under valgrind per measurement with instrumentation on from the start
  (its bindings can only toggle collection), so the torch import runs instrumented:
  minutes per variant, about an hour for all ten. Here each variant's process runs under
  ``valgrind --instr-atstart=no --collect-atstart=no``: importing and compiling run
  uninstrumented; instrumentation is started after warm-up and collection toggled only
  around each counted call, one dump per block of calls. The
  client requests for that (``CALLGRIND_START_INSTRUMENTATION`` and friends) are C
  macros that PyTorch does not expose, so a five-line shim is compiled with the
  machine's C compiler against valgrind's own ``callgrind.h``. ``PYTHONHASHSEED=0``
  and a seeded SymPy (``_seed_sympy``) make the counts repeatable between processes.
* neither: the benchmark is skipped with the reason.

asv runs the counting once per suite run (``setup_cache``) and each variant's
``track_instructions`` reads its figure from there.
"""

import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

from .common import SEED_PARAM_NAMES, SEED_PARAMS, child_env, skip_invalid_variant, work
from .settings import VALID_VARIANTS

# Per variant, BLOCKS blocks of CALLS counted calls; the figure is the smallest block mean
# per call, as the seed takes the minimum of its 5 iterations: an occasional slow path
# (a cache sweep, a weakref callback) then cannot move the figure between runs.
BLOCKS = 5
CALLS = 20

_SHIM = """
#include <valgrind/callgrind.h>
void start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
void stop_instrumentation(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
void dump_stats(void) { CALLGRIND_DUMP_STATS; }
void zero_stats(void) { CALLGRIND_ZERO_STATS; }
"""


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


def count_variants(variants, shim=None, calls=CALLS):
    """``{variant: instructions per call}`` in this process, by the hardware counter; or,
    given the path of the callgrind shim (when running under callgrind), one callgrind
    dump per block, and nothing returned."""
    import ctypes
    import gc

    import torch

    from .runtime_overhead import RuntimeOverhead

    grind = ctypes.CDLL(shim) if shim else None
    counter = torch._C._instruction_counter
    counts = {}
    for variant in variants:
        requires_grad, inference_mode, backward, dynamic = variant
        _seed_sympy()
        add1, a = RuntimeOverhead()._prepare_once(*variant)  # uninstrumented under callgrind
        gc.collect()
        gc.disable()  # no collection may land inside a counted call
        if grind:
            grind.start_instrumentation()
        blocks = []
        for _ in range(BLOCKS):
            if grind:
                grind.zero_stats()
            total = 0
            for _ in range(calls):
                losses = [add1(a).sum()] if backward else None  # the seed's _prepare(), not counted
                if grind:
                    grind.toggle_collect()
                else:
                    start = counter.start()
                work(add1, a, inference_mode, backward, losses)
                if grind:
                    grind.toggle_collect()
                else:
                    total += counter.end(start)
            if grind:
                grind.dump_stats()  # one dump per block
            else:
                blocks.append(total / calls)
        if grind:
            grind.stop_instrumentation()
        else:
            counts[variant] = min(blocks)
        gc.enable()
    return counts


def _counting_env():
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
        TORCHINDUCTOR_CACHE_DIR=os.path.join(tempfile.gettempdir(), "torch-overhead-callgrind-inductor"),
    )


def warm_inductor_cache(variants):
    """Compile every variant once, natively, into the counting cache. A count taken in a
    process whose compile missed the cache read 0.3% off one whose compile hit it (base
    variant, seen in CI): with the cache warm, every counting process takes the same path."""
    code = ("from benchmarks.instruction_count import _seed_sympy\n"
            "from benchmarks.runtime_overhead import RuntimeOverhead\n"
            f"for v in {[tuple(v) for v in variants]}: _seed_sympy(); RuntimeOverhead()._prepare_once(*v)")
    subprocess.run([sys.executable, "-c", code], env=_counting_env(), check=True, capture_output=True)


def _callgrind_one(variant, shim, calls, workdir):
    """One variant in its own interpreter under callgrind, the Inductor cache warm.
    Counted after other variants in one process, a variant read up to 0.6% differently
    from run to run; counted first in its own, with the cache warm and SymPy's generator
    seeded, every variant repeats exactly."""
    out = os.path.join(workdir, "callgrind.out." + "".join("1" if v else "0" for v in variant))
    env = _counting_env()
    code = f"from benchmarks.instruction_count import count_variants; count_variants([{tuple(variant)}], {shim!r}, {calls})"
    grind = subprocess.run(
        ["setarch", platform.machine(), "--addr-no-randomize",
         "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
         f"--callgrind-out-file={out}", sys.executable, "-c", code],
        env=env, cwd=workdir, capture_output=True, text=True,
    )
    if grind.returncode != 0:
        reason = [line for line in grind.stderr.splitlines() if "valgrind:" in line or "Error" in line]
        raise RuntimeError(f"valgrind exited {grind.returncode}: {(reason or ['no reason printed'])[-1]}")
    dumps = glob.glob(out + ".*")  # callgrind numbers its dumps: one per block
    if len(dumps) != BLOCKS:
        raise RuntimeError(f"callgrind wrote {len(dumps)} dumps for {BLOCKS} blocks")
    totals = []
    for dump in dumps:
        with open(dump) as f:
            totals.append(int(re.search(r"^(?:totals|summary):\s+(\d+)", f.read(), re.M).group(1)))
    return min(totals) / calls


def build_shim(workdir):
    """Compile the client-request shim into ``workdir``; returns the library's path."""
    shim = os.path.join(workdir, "callgrind_shim.so")
    with open(os.path.join(workdir, "shim.c"), "w") as f:
        f.write(_SHIM)
    subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O1", "-o", shim, "shim.c"],
                   check=True, cwd=workdir, capture_output=True)
    return shim


def count_under_callgrind(calls=CALLS):
    """Every valid variant under callgrind, one process each, one at a time. Two at once
    moved counts between runs by up to 1.35% (measured before SymPy's generator was seeded,
    not since); one at a time every variant repeats to the instruction
    (docs/measurements/2026-11-30-cpu-2core-instruction-counts.txt)."""
    workdir = tempfile.mkdtemp(prefix="callgrind-add1-")
    try:
        shim = build_shim(workdir)
        variants = list(VALID_VARIANTS)
        warm_inductor_cache(variants)
        return {variant: _callgrind_one(variant, shim, calls, workdir) for variant in variants}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class InstructionCount:
    """Instructions per call of the headline (Inductor) ``add1``, per seed variant."""

    params = SEED_PARAMS
    param_names = SEED_PARAM_NAMES
    version = "instruction-count-1"
    timeout = 1800

    def setup_cache(self):
        """All variants in one go; returns a JSON-safe dict (asv pickles it between processes)."""
        if _hardware_counter_works():
            counts, how = count_variants(list(VALID_VARIANTS)), "hardware counter"
        elif shutil.which("valgrind"):
            counts, how = count_under_callgrind(), "callgrind"
        else:
            return {"skip": "no hardware instruction counter here and valgrind is not installed "
                            "(apt-get install valgrind)"}
        return {"how": how, "counts": {json.dumps(v): c for v, c in counts.items()}}

    def setup(self, cache, requires_grad, inference_mode, backward, dynamic):
        skip_invalid_variant(requires_grad, inference_mode, backward)
        if "skip" in cache:
            raise NotImplementedError(cache["skip"])

    def track_instructions(self, cache, requires_grad, inference_mode, backward, dynamic):
        """Instructions per call (the seed's metric): the smallest mean of BLOCKS blocks of
        CALLS calls, counted by the hardware counter or callgrind (see the module docstring)."""
        return cache["counts"][json.dumps([requires_grad, inference_mode, backward, dynamic])]

    track_instructions.unit = "instructions"
