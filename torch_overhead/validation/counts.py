"""Repeatability and cost of the instruction counts: the suite's callgrind counting run twice (or more).

``python -m torch_overhead counts [--device cuda] [--runs 2] [--processes N]`` runs the
counting of ``benchmarks/instruction_count.py`` ``--runs`` times (each run counts every
seed variant, up to ``--processes`` at once; default one per CPU) and prints each run's
wall time, then per variant each run's instructions per call on the calling thread (the
seed's figure) and the spread, (max - min) / min, whose target is 0.1%, and the count
over all threads.
"""

import os
import sys
import time

from ..lib.suite import settings


def _name(variant):
    return "+".join(n for n, on in zip(settings.SEED_PARAM_NAMES, variant) if on) or "base"


def main(args):
    sys.path.insert(0, args.project_root)
    os.environ[settings.DEVICE_ENV_VAR] = "cpu" if args.device == "auto" else args.device
    from benchmarks import callgrind
    from benchmarks.instruction_count import count_under_callgrind

    runs = []
    for number in range(args.runs):
        start = time.perf_counter()
        try:
            runs.append(count_under_callgrind(processes=args.processes))
        except callgrind.Unavailable as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"run {number + 1}/{args.runs}: {time.perf_counter() - start:.0f} s; calling thread per call: "
              + ", ".join(f"{_name(v)} {c.get('calling_thread', float('nan')):,.0f}" for v, c in runs[-1].items()),
              flush=True)
    print(" | ".join(settings.SEED_PARAM_NAMES) + " | "
          + " | ".join(f"run {i + 1}" for i in range(args.runs)) + " | spread % | all threads (run 1)")
    worst = 0.0
    for variant in runs[0]:
        counts = [run[variant].get("calling_thread") for run in runs]
        if None in counts:
            reasons = "; ".join(run[variant]["skip"] for run in runs if "skip" in run[variant])
            print(" | ".join(str(v) for v in variant) + f" | skipped: {reasons}")
            worst = float("inf")
            continue
        spread = (max(counts) - min(counts)) / min(counts) * 100
        worst = max(worst, spread)
        print(" | ".join(str(v) for v in variant) + " | " + " | ".join(f"{c:,.0f}" for c in counts)
              + f" | {spread:.3f} | {runs[0][variant]['all_threads']:,.0f}")
    print(f"worst spread: {worst:.3f}% (target <= 0.1%)")
    return 0
