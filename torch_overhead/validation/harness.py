"""How much of asv's figure is asv's own per-call harness, measured in one process.

``python -m torch_overhead harness --device cpu [--bench layers.AotAutograd.time_add1]``
builds each forward variant of the benchmark through asv_runner itself
(``get_benchmark_from_name``, as a benchmark process does) and times it four ways,
interleaved round by round in one process pinned to one CPU:

* asv: asv_runner's timer with its ``redo_setup`` before every timing of
  ``CALLS_PER_TIMING`` calls (teardown, skip checks, our ``setup``, re-reading the timing
  attributes), as ``asv run``;
* our setup: the same timer with only our ``setup`` between timings;
* no setup: the same timer with nothing between timings;
* reference: the batched ``torch.utils.benchmark.Timer`` that ``figures`` compares against
  (``benchmarks/reference.py``).

So asv - our setup is asv_runner's own work between timings, our setup - no setup is
ours, and no setup - reference is asv's way of timing (two clock reads per timing, asv's
call chain down to ``time_add1``). ``figures`` sets asv's recorded medians against a
reference taken in each benchmark process before asv's samples, a moment apart; this
interleaves the four round by round, and asv_runner reports nothing like it. Backward
variants are left out: their reference is a plain loop with its own per-call work.
"""

import contextlib
import io
import os
import statistics
import sys

from ..lib.recorded import RecordedResultsError, host_clock_add1
from ..lib.suite import settings

REFERENCE_CALLS = 200  # per reference sample


def measure(project_root, benchmark, rounds):
    """``{variant: (asv, our setup, no setup, reference)}`` median seconds per call, forward
    variants; ``project_root`` must be on sys.path."""
    from asv_runner.benchmarks.time import _SetupInterleavedTimer
    from asv_runner.discovery import get_benchmark_from_name

    from benchmarks.reference import reference_timer

    results = {}
    for idx, variant in enumerate(settings.VARIANTS):
        if variant[2]:  # backward
            continue
        bench = get_benchmark_from_name(os.path.join(project_root, "benchmarks"), f"{benchmark}-{idx}")
        with contextlib.redirect_stdout(io.StringIO()):  # asv_runner prints each skip
            skipped = bench.do_setup()
        if skipped:  # NotImplementedError: not a variant of this layer
            continue
        instance = bench.func.__self__
        asv = bench._get_interleaved_timer(*variant)
        bench._redo_setup_next = True  # do_setup above was the first setup, as asv does
        call = bench._param_bound_func(*variant)
        ours = _SetupInterleavedTimer(call, lambda: instance.setup(*variant), bench.timer)
        none = _SetupInterleavedTimer(call, lambda: None, bench.timer)
        reference = reference_timer(instance.add1, instance.a, variant[1])
        samples = ([], [], [], [])
        for _ in range(rounds):
            # Whatever is timed first after the reference reads slow (the reference's own
            # work is still in the caches): a throwaway sample takes that place.
            none.timeit(bench.number)
            for timer, kept in zip((asv, ours, none), samples):
                kept.append(timer.timeit(bench.number) / bench.number)
            samples[3].append(reference.timeit(REFERENCE_CALLS).median)
        results[variant] = tuple(statistics.median(s) for s in samples)
    return results


def main(args):
    os.environ[settings.DEVICE_ENV_VAR] = "" if args.device == "auto" else args.device  # "": CUDA if present
    try:
        args.bench = host_clock_add1(os.path.join(args.project_root, "benchmarks"), args.bench)
    except RecordedResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.path.insert(0, args.project_root)
    from benchmarks.common import device

    try:
        device()
    except (RuntimeError, ValueError) as err:  # CUDA asked for where there is none
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.cpu_affinity != "none":
        os.sched_setaffinity(0, {int(args.cpu_affinity)})
    results = measure(args.project_root, args.bench, args.rounds)
    print(f"{args.bench}, device {args.device}, one process, {args.rounds} interleaved rounds; "
          "microseconds per call (ratio to the reference)")
    print("requires_grad | inference_mode | backward | dynamic | asv | our setup | no setup | reference")
    for variant, times in results.items():
        reference = times[-1]
        print(" | ".join([str(v) for v in variant] + [f"{t * 1e6:8.2f} ({t / reference:.3f})" for t in times[:-1]]
                         + [f"{reference * 1e6:8.2f}"]))
    return 0
