"""A timing of add1 that is not asv's, taken inside asv's own benchmark process.

``python -m torch_overhead figures`` checks asv's median against a plain timing of the same
call. Taken here, once per process right after the compile and warm-up and right before
asv's samples, it shares the process, its pinned CPU and nearly its moment with the figure
it checks; taken in other processes it met other slow spells of a shared machine
(docs/validation.md).

Only when ``figures`` asks: it names a file in ``REFERENCE_FILE_ENV_VAR`` and each benchmark
process appends one JSON line. Without it nothing here runs, so a recorded run is untouched.
"""

import json
import os
import time

import torch

from .settings import CALLS_PER_TIMING, REFERENCE_FILE_ENV_VAR

BACKWARD_BLOCKS = 100  # blocks of CALLS_PER_TIMING backward calls, each on a fresh graph


def reference_timer(add1, a, inference_mode):
    """The reference for a forward variant: a ``torch.utils.benchmark.Timer`` of the bare call."""
    import torch.utils.benchmark as tbench

    stmt = "with torch.inference_mode(): add1(a)" if inference_mode else "add1(a)"
    # The thread count must stay as compiled: Timer's default (1) would trip a guard.
    return tbench.Timer(stmt=stmt, globals={"torch": torch, "add1": add1, "a": a}, num_threads=torch.get_num_threads())


def per_call_times(add1, a, inference_mode, backward):
    """Seconds per call, a list of block means: ``Timer.blocked_autorange`` for a forward
    variant (batched calls, no per-call clock reads or setup); for backward a plain loop over
    blocks of as many backward calls as asv times at once, each on a fresh ``add1(a).sum()``
    built untimed, since Timer cannot build a fresh graph per call outside its timed region."""
    if not backward:
        return list(reference_timer(add1, a, inference_mode).blocked_autorange(min_run_time=0.5).times)
    times = []
    for _ in range(BACKWARD_BLOCKS):
        losses = [add1(a).sum() for _ in range(CALLS_PER_TIMING)]
        start = time.perf_counter()
        for loss in losses:
            loss.backward()
        times.append((time.perf_counter() - start) / CALLS_PER_TIMING)
    return times


def record(benchmark_class, variant, add1, a):
    """Append this process's reference for ``variant`` of ``benchmark_class`` (as
    ``module.Class``), and the seconds it took, to the file ``figures`` named, if it named one."""
    path = os.environ.get(REFERENCE_FILE_ENV_VAR)
    if not path:
        return
    start = time.perf_counter()
    times = per_call_times(add1, a, variant[1], variant[2])
    line = {"class": f"{benchmark_class.__module__.rsplit('.', 1)[-1]}.{benchmark_class.__name__}",
            "variant": list(variant), "times": times, "seconds": time.perf_counter() - start}
    with open(path, "a") as out:
        out.write(json.dumps(line) + "\n")
