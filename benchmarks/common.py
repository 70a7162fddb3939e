"""What every benchmark module shares: the device under test and compile-once state.

Two facts of asv_runner 0.3 shape this module:

* ``setup()`` runs before *every* timed call (asv#966). Compiling there would
  recompile per call and time a cold path, so compiled functions are cached here,
  per process and per parameter set, and ``setup()`` only fetches them.
* Each parameter set runs in its own process (forked from asv's forkserver), so the
  cache never holds state from another variant; it is keyed by parameters anyway
  so that a second variant in one process would still get its own fresh compile.

The runner also exports ``TORCH_OVERHEAD_COMMIT``, the commit the results will be
filed under; a process whose torch is another build refuses to measure.

The device is chosen once, from ``TORCH_OVERHEAD_DEVICE`` (``cuda`` or ``cpu``),
which the ``torch_overhead`` runner sets and also records in the asv environment
name, so every stored figure names its device. Without the variable the default is
CUDA when present, else the CPU. CUDA is never touched at import time: the forkserver
imports this module before it forks, and CUDA does not survive a fork.
"""

import os

# Inductor's import asks how many GPUs there are. Through the CUDA runtime that
# "poisons" fork: every benchmark process forked from asv's forkserver then fails with
# "Cannot re-initialize CUDA in forked subprocess" (seen on the H200). Through NVML,
# which PyTorch uses when this is set, the count is fork-safe.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
# Compile in the benchmark process itself. By default Inductor starts a pool of one
# worker per core (16 on the H200) in every benchmark process: seconds of start-up per
# variant, and workers left behind that compete with the timed calls (pinned to one
# core, per-call times grew from 55 us to 460 us over five processes on the H200).
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import itertools  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from asv_runner.benchmarks.mark import skip_for_params  # noqa: E402

from . import reference  # noqa: E402

# Imported here, not at first compile, so that asv's forkserver pays for these imports
# once instead of every benchmark process paying again (about 6 s each on the 2-core
# CPU machine, 8-11 s on the H200). asv's discovery step (`asv_runner discover`)
# imports this module too but only reads class attributes: it skips them.
if "discover" not in sys.argv[1:2]:
    import torch._dynamo  # noqa: F401
    import torch._inductor.compile_fx  # noqa: F401

DEVICE_ENV_VAR = "TORCH_OVERHEAD_DEVICE"
COMMIT_ENV_VAR = "TORCH_OVERHEAD_COMMIT"
# Set to 1 by the runner when a CUDA run includes the C++-wrapper layer (see _warm_forkserver).
CPP_WRAPPER_ENV_VAR = "TORCH_OVERHEAD_CPP_WRAPPER"
WARMUP_CALLS = 10  # as the seed's _prepare_once()


def on_cuda():
    """Import-time answer to "is this a CUDA run?", for asv's skip decorators: never raises
    (a CUDA request without CUDA is refused later, by ``device()``, with a clear error)."""
    wanted = os.environ.get(DEVICE_ENV_VAR, "").strip().lower()
    return wanted == "cuda" or (wanted == "" and torch.cuda.is_available())


def wants_cpp_build():
    """Whether this run's benchmarks have Inductor compile C++: every CPU run, and a CUDA run
    that includes the C++-wrapper layer (the runner says so through CPP_WRAPPER_ENV_VAR)."""
    return not on_cuda() or os.environ.get(CPP_WRAPPER_ENV_VAR) == "1"


def _warm_forkserver():
    """Compute, once in asv's forkserver, facts about the installed build that the first
    compile of every forked benchmark process would otherwise compute again, each cached per
    process; none touches CUDA:

    * the hashes of torch's and Triton's source files that key Inductor's on-disk caches
      (0.16 s and 0.36 s of a process's 0.88 s setup on the H200);
    * where Inductor compiles C++ (on the CPU, and on CUDA for the C++-wrapper layer, whose
      flags it derives even when its wrapper comes from the on-disk cache), which vector
      instruction sets work, which Inductor finds out by building and loading test programs
      in about ten subprocesses: 0.9 of a process's 1.5 s setup on the 2-core CPU machine,
      47-53 s of a C++-wrapper process's on the H200, where each subprocess imports torch
      (profiled, both caches hit). On CUDA only when the run includes that layer
      (``wants_cpp_build``): the forkserver would otherwise pay for it in every run.

    A process forked from here no longer starts cold: the cold compile time
    (``compile_time.py``) is taken in a spawned interpreter for that reason.
    """
    from torch._inductor import codecache
    from torch._inductor.runtime.triton_compat import HAS_TRITON, triton_key

    codecache.torch_key()
    if HAS_TRITON:
        triton_key()
    if wants_cpp_build():
        from torch._inductor import cpu_vec_isa

        cpu_vec_isa.valid_vec_isa_list()


def child_env(**extra):
    """Environment for a fresh interpreter that imports this package (as the benchmark
    process does: asv_runner comes through the inherited PYTHONPATH)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)


# Only in the forkserver (asv's ``benchmark.py run_server``): elsewhere nothing forks from
# this process, and the instruction-counting processes must keep their own path.
if sys.argv[1:2] == ["run_server"]:
    _warm_forkserver()


def cuda_only(variants):
    """Decorator: on a run without CUDA, record every one of ``variants`` as skipped (n/a)
    without starting its setup. The benchmark is still collected, so results/benchmarks.json
    lists it on every machine: asv publish drops any result whose benchmark is missing
    there, so a CPU run must not erase the GPU machines' figures from the dashboard."""
    if on_cuda():
        return lambda func: func
    return skip_for_params(list(variants))


# The seed's variants, as asv parameters: every benchmark over them uses these two.
SEED_PARAMS = ([False, True], [False, True], [False, True], [False, True])
SEED_PARAM_NAMES = ["requires_grad", "inference_mode", "backward", "dynamic"]
VARIANTS = list(itertools.product(*SEED_PARAMS))


# Host-clock benchmarks time this many back-to-back calls at once (see per_call_clock).
CALLS_PER_TIMING = 10


def per_call_clock():
    """asv ``timer`` of the host-clock benchmarks: ``perf_counter`` divided by
    ``CALLS_PER_TIMING``, so that a timing of that many back-to-back calls is recorded by asv
    as seconds per call.

    Written by hand because asv_runner 0.3 has no other way to time calls back to back: with
    a ``setup`` present it re-runs ``setup`` before *every* timed invocation, reading its six
    timing attributes again each time (asv#966), even with ``number`` > 1. That work between
    calls evicts what the next call finds in the CPU's caches: timed one at a time, the
    headline read 1.08-1.21 of a batched ``torch.utils.benchmark.Timer`` on the 2-core CPU,
    against 0.98-1.08 at ten calls per timing, and 0.98-1.09 on the H200 (``python -m
    torch_overhead harness``)."""
    return time.perf_counter() / CALLS_PER_TIMING


def synchronized_clock():
    """asv ``timer`` for synchronized latency: waits for the device before reading the
    clock, so a timed call includes its GPU work (and one synchronize, about 7 us idle)."""
    torch.cuda.synchronize()
    return time.perf_counter()


def synchronized(method):
    """Decorator: time ``method``, which makes one call, on ``synchronized_clock``, with as
    many calls per sample as the host clock's samples: each call's own latency, not the
    throughput of calls queued back to back."""
    method.timer = synchronized_clock
    method.number = _Sampling.number * CALLS_PER_TIMING
    return method


def device():
    """The device the benchmarks run on; a clear error when CUDA is asked for but absent."""
    wanted = os.environ.get(DEVICE_ENV_VAR, "").strip().lower()
    if wanted == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted not in ("cuda", "cpu"):
        raise ValueError(f"{DEVICE_ENV_VAR}={wanted!r}: use 'cuda' or 'cpu'")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"{DEVICE_ENV_VAR}=cuda but torch {torch.__version__} sees no CUDA device; "
            "use a CUDA build on a GPU machine or set it to 'cpu'"
        )
    return wanted


def skip_invalid_variant(requires_grad, inference_mode, backward):
    """Skip, the asv way (NotImplementedError in setup is recorded as n/a with this reason),
    the combinations the seed never builds."""
    if inference_mode and backward:
        raise NotImplementedError("inference_mode and backward are exclusive (the seed asserts)")
    if backward and not requires_grad:
        raise NotImplementedError("backward needs requires_grad=True: there is no graph to differentiate")


def work(fn, a, inference_mode, backward, losses=None, calls=1):
    """The seed's ``_work()``, ``calls`` times back to back: ``fn(a)`` (inside
    ``torch.inference_mode()`` when set), or with backward only ``.backward()`` of a fresh
    ``add1(a).sum()`` graph that the seed's ``_prepare()`` built untimed, popped from the
    list ``losses`` (a graph can be differentiated once); without them (warm-up) each call
    builds its own first."""
    if backward:
        for _ in range(calls):
            (losses.pop() if losses is not None else fn(a).sum()).backward()
    elif inference_mode:
        for _ in range(calls):
            with torch.inference_mode():
                fn(a)
    else:
        for _ in range(calls):
            fn(a)


def check_build():
    """Refuse to measure a torch other than the build the results will be filed under."""
    expected = os.environ.get(COMMIT_ENV_VAR)
    if expected and expected != torch.version.git_version:
        raise RuntimeError(
            f"results are labelled torch commit {expected[:12]} but this process imports "
            f"torch {torch.__version__} @ {torch.version.git_version[:12]}"
        )


_compiled = {}


def compile_once(key, build):
    """Return ``build()``'s result, computed once per process for ``key``.

    ``build`` does the expensive part (reset, compile, warm-up). Only one entry is
    kept: a new key means a new variant, which starts from ``torch._dynamo.reset()``
    as the seed does, so the old compiled function is dead anyway.
    """
    if key not in _compiled:
        check_build()
        _compiled.clear()
        _compiled[key] = build()
    return _compiled[key]


def graphs_compiled():
    """Dynamo graphs compiled so far in this process (a recompile adds one)."""
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


class _Sampling:
    """How every per-call timing of the suite is sampled, so that the layers, the floor and
    the headline stay comparable. The leading underscore keeps asv from collecting it."""

    # A sample is the mean of `number` timings of CALLS_PER_TIMING back-to-back calls each
    # (50 calls), setup() re-run before each timing (asv_runner 0.3); `repeat` samples per
    # process, `rounds` processes per variant. On the H200 machine the whole CPU runs up to
    # 2x slower for spells of seconds (`python -m torch_overhead noise`); spreading each
    # process's samples over 0.75 s instead of about 0.1 s did not narrow the spread between
    # runs there (16-90% against 23-74%) and cost 20 s per run, so samples stay short.
    number = 5
    repeat = (10, 20, 10.0)
    rounds = 2
    warmup_time = 0.2
    timer = staticmethod(per_call_clock)


class _Add1Variants(_Sampling):
    """``add1`` over the seed's variants at one layer of the stack; subclasses say how to build it.

    Everything the seed's contract fixes lives here once: the parameters and their skips,
    compile-once-then-warm-up (``_prepare_once``), the untimed fresh forward graph before
    each timed backward (``_prepare``), the timed calls (``_work``), and the two clocks:
    ``time_add1`` is host time per call of back-to-back calls (no synchronize, as the
    seed), ``time_add1_synchronized`` (CUDA only) waits for the device around each call.
    The leading underscore keeps asv from collecting this base class itself.
    """

    params = SEED_PARAMS
    param_names = SEED_PARAM_NAMES
    losses = None  # with backward: the fresh forward graphs that setup built for the next timing
    timeout = 300  # a cold Inductor compile on a 2-core CPU takes about 20 s

    def build(self, dynamic):
        """Return the callable under test (compiled or not) for this layer."""
        raise NotImplementedError

    def unsupported(self, device, requires_grad, inference_mode, backward, dynamic):
        """A reason this layer cannot run the variant, or None."""
        return None

    def _prepare_once(self, requires_grad, inference_mode, backward, dynamic):
        torch._dynamo.reset()
        a = torch.ones(2, device=device(), requires_grad=requires_grad)
        fn = self.build(dynamic)
        for _ in range(WARMUP_CALLS):
            work(fn, a, inference_mode, backward)
        # From here on a recompile is an error, so the timed calls can never silently
        # measure one: the variant fails, naming the guard that failed.
        torch._dynamo.config.error_on_recompile = True
        return fn, a

    def _first_setup(self, requires_grad, inference_mode, backward, dynamic):
        """Skip checks and compile (and, for ``figures``, its reference timing): once per process."""
        skip_invalid_variant(requires_grad, inference_mode, backward)
        reason = self.unsupported(device(), requires_grad, inference_mode, backward, dynamic)
        if reason:
            raise NotImplementedError(reason)
        variant = (requires_grad, inference_mode, backward, dynamic)
        fn, a = self._prepare_once(*variant)
        reference.record(type(self), variant, fn, a)  # only when `figures` asks for one
        return fn, a

    def setup(self, requires_grad, inference_mode, backward, dynamic):
        # asv_runner re-runs setup before every timed call, and what setup runs evicts what the
        # timed call would find in the CPU's caches. So after the first call setup only fetches
        # the compiled function (and builds the backward's fresh forward graph): with the skip
        # checks and device query on every call too, asv read 7-11% above a batched Timer on
        # the H200 against 1-4% with the fetch alone (same process, interleaved samples).
        variant = (requires_grad, inference_mode, backward, dynamic)
        self.add1, self.a = compile_once((type(self).__name__,) + variant, lambda: self._first_setup(*variant))
        # The seed's _prepare(): a fresh forward graph for each backward the next timing may
        # make. Each timed backward pops the graph it spends, so only those are rebuilt: ten
        # after a host-clock timing, one after a synchronized one (which left nine unspent).
        if backward:
            unspent = self.losses or []
            self.losses = unspent + [self.add1(self.a).sum() for _ in range(CALLS_PER_TIMING - len(unspent))]

    def time_add1(self, requires_grad, inference_mode, backward, dynamic):
        """CALLS_PER_TIMING back-to-back calls of add1, or only ``.backward()`` of as many
        fresh ``add1(a).sum()`` when backward is set; asv records seconds per call
        (``per_call_clock``). Host time: no device synchronize, as in the seed."""
        work(self.add1, self.a, inference_mode, backward, self.losses, CALLS_PER_TIMING)

    @synchronized
    @cuda_only(VARIANTS)
    def time_add1_synchronized(self, requires_grad, inference_mode, backward, dynamic):
        """One call as in time_add1, with the device synchronized before and after: the
        latency a caller waiting for the result sees. CUDA only (CPU ops are synchronous)."""
        work(self.add1, self.a, inference_mode, backward, self.losses)
