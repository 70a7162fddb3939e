"""Is it torch or the machine? Per-call time of the headline beside a pure-Python clock.

``python -m torch_overhead noise --device cuda`` forks processes the way asv's forkserver
does (from a parent that has imported torch, Dynamo and Inductor) and, in each, alternates
short blocks of two measurements: a fixed pure-Python loop, which no torch change can
slow, and the compiled ``add1`` of the headline's base variant. It prints every block and
then how often each was slow (over 1.3x its fastest block) and how the two slowdowns
correlate. Beside each add1 block it prints the share of the block's wall time that the
process actually ran on its CPU (thread CPU time over wall time), and at the end the
steal time the kernel reports for the whole machine: a slow block with a low share lost
its CPU (to the hypervisor or to another process); a slow block with a full share ran
on a slower CPU.

Why it exists: on a shared cloud machine medians of the same build differ between runs
(docs/validation.md). If the pure-Python loop slows down in the same blocks by the same factor,
the cause is the CPU the machine lends us (a clock shared with other tenants), not the
build, and no benchmark setting inside the process can remove it; if it does not, the
noise is in torch or the driver.
"""

import os
import statistics
import sys
import time
import timeit

from ..lib.suite import settings
from . import forked

SLOW = 1.3  # a block this much slower than the fastest counts as slow


def _cpu_now():
    """The CPU this process runs on now (field 39 of /proc/self/stat)."""
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[36])


def _correlation(xs, ys):
    """Pearson correlation, or n/a when either series is constant (statistics would raise)."""
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return "n/a"
    return f"{statistics.correlation(xs, ys):.2f}"


def _steal_seconds():
    """Time the hypervisor ran other guests on this machine's vCPUs, summed over all of
    them (the "steal" column of /proc/stat's first line, in clock ticks)."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")


def _blocks(blocks, block_seconds):
    """In a fresh process: [(python_us, add1_us, add1 CPU share of wall, cpu)] per block."""
    import torch
    import torch.utils.benchmark as tbench

    from benchmarks.runtime_overhead import RuntimeOverhead

    add1, a = RuntimeOverhead()._prepare_once(False, False, False, False)
    # The thread count must stay as compiled: Timer's default (1) would trip a guard.
    timer = tbench.Timer("add1(a)", globals={"add1": add1, "a": a}, num_threads=torch.get_num_threads())
    rows = []
    for _ in range(blocks):
        python = min(timeit.repeat("sum(range(300))", number=2000, repeat=5)) / 2000
        wall, cpu = time.perf_counter(), time.thread_time()
        add1_time = timer.blocked_autorange(min_run_time=block_seconds).median
        share = (time.thread_time() - cpu) / (time.perf_counter() - wall)
        rows.append((python * 1e6, add1_time * 1e6, share, _cpu_now()))
    return rows


def main(args):
    os.environ[settings.DEVICE_ENV_VAR] = "" if args.device == "auto" else args.device  # "": CUDA if present
    sys.path.insert(0, args.project_root)
    import benchmarks.forkserver  # noqa: F401 (torch, Dynamo, Inductor imported fork-safely, as in asv's forkserver)

    start, steal_start = time.perf_counter(), _steal_seconds()
    rows = []
    print(f"device {args.device}; per block: pure-Python loop (us), compiled add1 base variant (us per call), "
          "add1's CPU share of wall time (%), CPU")
    for process in range(args.processes):
        got = forked.call(_blocks, args.blocks, args.block_seconds)
        print(f"process {process + 1:2d}: " + "  ".join(f"{p:5.2f} {c:7.2f} {100 * s:3.0f}% cpu{cpu}"
                                                       for p, c, s, cpu in got), flush=True)
        rows += got
    elapsed, steal = time.perf_counter() - start, _steal_seconds() - steal_start
    python = [r[0] for r in rows]
    add1 = [r[1] for r in rows]
    fast_python, fast_add1 = min(python), min(add1)
    slow_python = [p / fast_python > SLOW for p in python]
    slow_add1 = [c / fast_add1 > SLOW for c in add1]
    both = sum(p and c for p, c in zip(slow_python, slow_add1))
    print()
    shares = [r[2] for r in rows]
    print(f"{len(rows)} blocks in {elapsed:.0f} s; steal over that time, all {os.cpu_count()} CPUs together: "
          f"{steal:.2f} s ({100 * steal / (elapsed * os.cpu_count()):.1f}% of their time)")
    print(f"pure Python: fastest {fast_python:.2f} us, median {statistics.median(python):.2f}, "
          f"slowest {max(python) / fast_python:.2f}x fastest; slow (>{SLOW}x) in {sum(slow_python)} blocks")
    print(f"add1:        fastest {fast_add1:.2f} us, median {statistics.median(add1):.2f}, "
          f"slowest {max(add1) / fast_add1:.2f}x fastest; slow (>{SLOW}x) in {sum(slow_add1)} blocks")
    print(f"slow in both: {both} blocks; correlation of the two per-block times: "
          f"{_correlation(python, add1)}")
    print(f"add1's CPU share of wall time: median {100 * statistics.median(shares):.0f}%, "
          f"lowest {100 * min(shares):.0f}%; correlation with add1's time: {_correlation(shares, add1)}")
    return 0
