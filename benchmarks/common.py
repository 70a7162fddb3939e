"""What the benchmark modules share: clocks, the compile-once cache, and the seed's contract.

asv_runner 0.3 calls ``setup()`` before *every* timed call (asv#966). Compiling there
would recompile per call and time a cold path, so compiled functions are cached per
process and per parameter set (``compile_once``), and ``setup()`` only fetches them.
"""

from . import forkserver  # noqa: F401  (first: sets what must be set before torch is used)

import os  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from asv_runner.benchmarks.mark import skip_for_params  # noqa: E402

from . import reference  # noqa: E402
from .device import device, on_cuda  # noqa: E402
from .settings import (  # noqa: E402
    CALLS_PER_TIMING, COMMIT_ENV_VAR, PAIR_BARRIER_ENV_VAR, SEED_PARAM_NAMES, SEED_PARAMS, VARIANTS, WARMUP_CALLS,
    invalid_variant)


def add1(a):
    return a + 1


def per_call_clock():
    """asv ``timer`` of the host-clock benchmarks: ``perf_counter`` / ``CALLS_PER_TIMING``, so a
    timing of that many back-to-back calls is recorded as seconds per call. By hand because
    asv_runner 0.3 cannot time calls back to back when a ``setup`` exists, and its work between
    single calls evicts what the next call finds in the CPU's caches (docs/methodology.md)."""
    return time.perf_counter() / CALLS_PER_TIMING


def synchronized_clock():
    """asv ``timer`` for synchronized latency: waits for the device before reading the clock,
    so a timed call includes its GPU work (and one synchronize)."""
    torch.cuda.synchronize()
    return time.perf_counter()


def synchronized(method):
    """Decorator: time ``method``, which makes one call, on ``synchronized_clock``, with as many
    calls per sample as the host clock: each call's own latency, not queued throughput."""
    method.timer = synchronized_clock
    method.number = _Sampling.number * CALLS_PER_TIMING
    return method


def cuda_only(variants):
    """Decorator: off CUDA, record every one of ``variants`` as skipped (n/a) without running
    setup. The benchmark is still collected, so ``results/benchmarks.json`` is the same on every
    machine: asv publish drops results of benchmarks missing there."""
    return (lambda func: func) if on_cuda() else skip_for_params(list(variants))


def skip_invalid_variant(requires_grad, inference_mode, backward):
    """Skip, the asv way (NotImplementedError in setup is recorded as n/a with the reason), the
    combinations the seed never builds."""
    reason = invalid_variant(requires_grad, inference_mode, backward)
    if reason:
        raise NotImplementedError(reason)


def work(fn, a, inference_mode, backward, losses=None, calls=1):
    """The seed's ``_work()``, ``calls`` times back to back: ``fn(a)`` (inside
    ``torch.inference_mode()`` when set), or with backward only ``.backward()`` of a fresh
    ``add1(a).sum()`` that the seed's ``_prepare()`` built untimed, popped from ``losses`` (a
    graph can be differentiated once); without them (warm-up) each call builds its own."""
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
        raise RuntimeError(f"results are labelled torch commit {expected[:12]} but this process imports "
                           f"torch {torch.__version__} @ {torch.version.git_version[:12]}")


_compiled = {}


def compile_once(key, build):
    """``build()``'s result, computed once per process for ``key``. One entry is kept: a new key
    is a new variant, which starts from ``torch._dynamo.reset()`` as the seed does."""
    if key not in _compiled:
        check_build()
        _compiled.clear()
        _compiled[key] = build()
        pair_barrier(key)
    return _compiled[key]


def pair_barrier(key):
    """With ``compare --pairing simultaneous`` (PAIR_BARRIER_ENV_VAR names a directory): say that
    this process is compiled and warmed up for ``key`` (class, variant), then wait for the other
    side's, so that the two sample at the same time although their compiles take different times.
    compare empties the directory after each pair, and leaves a file in it when a process ends
    (the other side's may have failed before getting here): a second file is the signal. After
    120 s it goes on alone."""
    directory = os.environ.get(PAIR_BARRIER_ENV_VAR)
    if not directory:
        return
    name = "-".join(map(str, key)) if isinstance(key, tuple) else key
    open(os.path.join(directory, f"{name}.{os.getpid()}"), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(directory)) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)


def child_env(**extra):
    """Environment for a fresh interpreter that imports this package, as a benchmark process
    does (asv_runner comes through the inherited PYTHONPATH)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)


def graphs_compiled():
    """Dynamo graphs compiled so far in this process (a recompile adds one)."""
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


class _Sampling:
    """How every per-call timing is sampled, so the layers, the floor and the headline compare.
    A sample is the mean of ``number`` timings of CALLS_PER_TIMING calls; ``repeat`` samples per
    process, ``rounds`` processes per variant (docs/methodology.md says why these values). The
    leading underscore keeps asv from collecting it."""

    number = 5
    repeat = (10, 20, 10.0)
    rounds = 2
    warmup_time = 0.2
    timer = staticmethod(per_call_clock)


class _Add1Variants(_Sampling):
    """``add1`` over the seed's variants at one layer of the stack; subclasses say how to build it.

    The seed's contract lives here once: compile and warm up once (``_prepare_once``), an
    untimed fresh forward graph before each timed backward (``_prepare``), the timed calls
    (``_work``), and two clocks: ``time_add1`` is host time per call (no synchronize, as the
    seed), ``time_add1_synchronized`` (CUDA only) waits for the device around each call.
    """

    params = SEED_PARAMS
    param_names = SEED_PARAM_NAMES
    losses = None  # with backward: the fresh forward graphs that setup built for the next timing
    timeout = 300  # a cold Inductor compile on a 2-core CPU takes tens of seconds

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
        # A recompile during the timed calls fails the variant, naming the guard, instead of being timed.
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
        # Re-run before every timing: after the first, only fetch (anything more here is timed
        # into the next call through the CPU's caches; docs/methodology.md).
        variant = (requires_grad, inference_mode, backward, dynamic)
        self.add1, self.a = compile_once((type(self).__name__,) + variant, lambda: self._first_setup(*variant))
        # The seed's _prepare(): a fresh forward graph for each backward the next timing may
        # make; each timed backward pops the graph it spends, so only those are rebuilt.
        if backward:
            unspent = self.losses or []
            self.losses = unspent + [self.add1(self.a).sum() for _ in range(CALLS_PER_TIMING - len(unspent))]

    def time_add1(self, requires_grad, inference_mode, backward, dynamic):
        """CALLS_PER_TIMING back-to-back calls of add1, or only ``.backward()`` of as many fresh
        ``add1(a).sum()`` with backward; recorded per call. Host time: no device synchronize, as
        in the seed."""
        work(self.add1, self.a, inference_mode, backward, self.losses, CALLS_PER_TIMING)

    @synchronized
    @cuda_only(VARIANTS)
    def time_add1_synchronized(self, requires_grad, inference_mode, backward, dynamic):
        """One call as in time_add1, with the device synchronized before and after: the latency a
        caller waiting for the result sees. CUDA only (CPU ops are synchronous)."""
        work(self.add1, self.a, inference_mode, backward, self.losses)
