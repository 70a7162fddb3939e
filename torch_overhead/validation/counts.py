"""Repeatability of the instruction counts: the same counting run twice (or more), side by side.

``python -m torch_overhead counts [--runs 2]`` runs the suite's callgrind counting
(``benchmarks/instruction_count.py``) ``--runs`` times and prints, per seed variant,
each run's instructions per call and the spread, (max - min) / min. The target is 0.1%.
"""

import os
import sys
import time

from ..lib.suite import settings


def main(args):
    sys.path.insert(0, args.project_root)
    os.environ[settings.DEVICE_ENV_VAR] = "cpu" if args.device == "auto" else args.device
    from benchmarks.instruction_count import count_under_callgrind

    runs = []
    for number in range(args.runs):
        start = time.perf_counter()
        runs.append(count_under_callgrind())
        print(f"run {number + 1}/{args.runs}: {time.perf_counter() - start:.0f} s", flush=True)
    print("requires_grad | inference_mode | backward | dynamic | "
          + " | ".join(f"run {i + 1}" for i in range(args.runs)) + " | spread %")
    worst = 0.0
    for variant in runs[0]:
        counts = [run[variant] for run in runs]
        spread = (max(counts) - min(counts)) / min(counts) * 100
        worst = max(worst, spread)
        print(" | ".join(str(v) for v in variant) + " | " + " | ".join(f"{c:,.0f}" for c in counts)
              + f" | {spread:.3f}")
    print(f"worst spread: {worst:.3f}% (target <= 0.1%)")
    return 0
