"""Counting instructions per call under valgrind's callgrind, side by side: torch-free.

A counting process runs ``python -c ...count_here(...)`` under ``valgrind
--tool=callgrind --instr-atstart=no --collect-atstart=yes --separate-threads=yes``: its
imports and compile run uninstrumented; after warm-up it starts instrumentation and
toggles collection on the calling thread only around each counted call, one dump per
block. The client requests for that (``CALLGRIND_START_INSTRUMENTATION`` and friends) are
C macros no Python package exposes, so a five-line shim is compiled against the
``callgrind.h`` that comes with the valgrind in use.

What each thread's file covers (checked with a worker thread, tests/benchmarks_suite/
test_instruction_count.py): callgrind's collection toggle, zero and dump requests act on
the calling thread only. So the calling thread's block dumps hold the counted calls alone
(the seed's figure: its counter sees that thread only), while every other thread collects
from the start of instrumentation to its end and is written once, at exit: its total over
all counted calls (and the untimed work between them) divided by their number is what it
adds per call.
"""

import compileall
import glob
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from .settings import chosen_valgrind

_SHIM = """
#include <valgrind/callgrind.h>
void start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
void stop_instrumentation(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
void dump_stats(void) { CALLGRIND_DUMP_STATS; }
void zero_stats(void) { CALLGRIND_ZERO_STATS; }
"""


class Unavailable(RuntimeError):
    """Nothing can be counted here (no valgrind, no C compiler, the shim does not build): the reason."""


class Crashed(RuntimeError):
    """One counting process failed (valgrind crashed, the call raised): the reason."""


def find_valgrind():
    """The valgrind to use (``settings.chosen_valgrind``); raises Unavailable with the reason."""
    try:
        valgrind = chosen_valgrind()
    except ValueError as err:
        raise Unavailable(str(err))
    if valgrind is None:
        raise Unavailable("valgrind is not installed (apt-get install valgrind, or set TORCH_OVERHEAD_VALGRIND "
                          "to a valgrind executable)")
    return valgrind


def _beside(valgrind, *parts):
    """Candidates for a path next to the valgrind binary: ``<bin dir>/...`` (a relocated kit
    such as the GPU machine's) and ``<prefix>/...`` (``/usr/bin/valgrind``: ``/usr``)."""
    here = os.path.dirname(os.path.realpath(valgrind))
    return [os.path.join(here, *parts), os.path.join(os.path.dirname(here), *parts)]


def valgrind_env(valgrind, env):
    """``env`` with VALGRIND_LIB pointing at a relocated kit's tools: its binary looks for them
    where it was built to be installed, not beside itself."""
    if "VALGRIND_LIB" not in env:
        for lib in _beside(valgrind, "lib"):
            if glob.glob(os.path.join(lib, "callgrind-*")):
                return dict(env, VALGRIND_LIB=lib)
    return env


def build_shim(valgrind, workdir):
    """Compile the client-request shim against this valgrind's ``callgrind.h``; returns the
    library's path. Raises Unavailable (no compiler, or it fails: the compiler's first error)."""
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        raise Unavailable(f"no C compiler ({compiler}) to build the callgrind client-request shim: "
                          "install gcc, or set CC")
    includes = [f"-I{d}" for d in _beside(valgrind, "include") if os.path.isfile(os.path.join(d, "valgrind", "callgrind.h"))]
    with open(os.path.join(workdir, "shim.c"), "w") as f:
        f.write(_SHIM)
    shim = os.path.join(workdir, "callgrind_shim.so")
    built = subprocess.run([compiler, *includes[:1], "-shared", "-fPIC", "-O1", "-o", shim, "shim.c"],
                           cwd=workdir, capture_output=True, text=True)
    if built.returncode != 0:
        lines = built.stderr.strip().splitlines()
        first = ([line for line in lines if "error" in line] or lines or ["no message"])[0]
        raise Unavailable(f"the callgrind shim does not compile against {valgrind}'s callgrind.h: {first.strip()}")
    return shim


def count_here(shim, target, args, blocks, calls):
    """In the counting process, under callgrind: ``target`` ("module:function") called with
    ``args`` returns ``(call, before)``; ``call()`` is counted ``blocks`` x ``calls`` times,
    ``before()`` (or nothing) runs uncounted before each."""
    import ctypes
    import gc
    import importlib

    module, function = target.split(":")
    call, before = getattr(importlib.import_module(module), function)(*args)
    grind = ctypes.CDLL(shim)
    gc.collect()
    gc.disable()  # no collection may land inside a counted call
    grind.start_instrumentation()
    grind.toggle_collect()  # off on this thread only: the others collect from here on
    for _ in range(blocks):
        grind.zero_stats()
        for _ in range(calls):
            state = before() if before else None
            grind.toggle_collect()
            call(state)
            grind.toggle_collect()
        grind.dump_stats()
    grind.stop_instrumentation()
    gc.enable()


def _totals(path):
    with open(path) as f:
        return int(re.search(r"^totals:\s+(\d+)", f.read(), re.M).group(1))


def count_one(valgrind, shim, target, args, env, workdir, blocks, calls):
    """One counting process; returns ``{"calling_thread": n, "all_threads": n}``, instructions per
    call: the calling thread's smallest block mean (the seed takes the minimum of its
    iterations), and that plus the other threads' mean per call. Raises Crashed."""
    out = os.path.join(workdir, "callgrind.out")
    # The process must load this package from its bytecode, as after any earlier run: one that
    # compiled it from source (the first after a clone or an edit) lays out its heap otherwise
    # and reads another count (docs/instruction-counts.md, "What moves a count").
    compileall.compile_dir(os.path.dirname(os.path.abspath(__file__)), quiet=2)
    code = (f"from benchmarks.callgrind import count_here; "
            f"count_here({shim!r}, {target!r}, {list(args)!r}, {blocks}, {calls})")
    grind = subprocess.run(
        [valgrind, "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=yes",
         "--separate-threads=yes", f"--callgrind-out-file={out}", sys.executable, "-c", code],
        env=valgrind_env(valgrind, env), cwd=workdir, capture_output=True, text=True,
    )
    if grind.returncode != 0:
        lines = grind.stderr.strip().splitlines()
        reason = [line for line in lines if "valgrind:" in line or "Error" in line] or lines or ["no message"]
        raise Crashed(f"valgrind exited {grind.returncode}: {reason[-1].strip()[:300]}")
    dumps = glob.glob(out + ".*-01")  # the calling (main) thread's block dumps
    if len(dumps) != blocks:
        raise Crashed(f"callgrind wrote {len(dumps)} dumps of the calling thread for {blocks} blocks")
    calling = min(_totals(d) for d in dumps) / calls
    others = sum(_totals(f) for f in glob.glob(out + "-*") if not f.endswith("-01"))
    return {"calling_thread": calling, "all_threads": calling + others / (blocks * calls)}


def _all_cpus():
    """Let this thread, and the processes it starts, run on any CPU: asv pins the benchmark
    process to one, and side by side the counting processes would share it. On Linux the
    mask is the calling thread's; the kernel keeps it within the allowed CPUs."""
    try:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    except OSError:
        pass


def count_side_by_side(jobs, env, blocks, calls, processes=None, pin_each=False):
    """``{key: counts or {"skip": reason}}`` for ``jobs`` = ``{key: (target, args)}``, each in its
    own counting process, up to ``processes`` (default: one per CPU) at a time. A key is a
    string, the name of the process's own folder; ``env`` is the processes' environment, or a
    function of that folder that returns it; ``calls``, a number or a function of the key;
    ``pin_each``: each process on a CPU of its own, none shared while it runs. Raises
    Unavailable when nothing can be counted; one process failing skips only its key."""
    valgrind = find_valgrind()
    workdir = tempfile.mkdtemp(prefix="callgrind-")
    workers = processes or min(len(jobs), os.cpu_count() or 1)
    free_cpus = queue.Queue()
    for cpu in range(os.cpu_count() or 1):
        free_cpus.put(cpu)
    try:
        shim = build_shim(valgrind, workdir)

        def one(item):
            key, (target, args) = item
            cpu = free_cpus.get() if pin_each else None
            if cpu is None:
                _all_cpus()
            else:
                os.sched_setaffinity(0, [cpu])
            folder = os.path.join(workdir, key)
            os.mkdir(folder)
            try:
                own_env = env(folder) if callable(env) else env
                own_calls = calls(key) if callable(calls) else calls
                return key, count_one(valgrind, shim, target, args, own_env, folder, blocks, own_calls)
            except Crashed as err:
                return key, {"skip": str(err)}
            finally:
                if cpu is not None:
                    free_cpus.put(cpu)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return dict(pool.map(one, jobs.items()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
