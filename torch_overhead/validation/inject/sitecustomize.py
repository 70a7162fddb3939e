"""Injected per-call overhead, for measuring what the gate and compare can detect.

Put this folder first on PYTHONPATH and set one of:

- ``TORCH_OVERHEAD_INJECT_US`` (``gate-sensitivity``): every function ``torch.compile``
  returns spins that many microseconds before each call, as a real regression in the
  compiled call path would;
- ``TORCH_OVERHEAD_INJECT_FRACTION`` (``compare-check``): it spins that fraction of the
  time from one call to the next, timed over the process's first calls, so that one
  setting is the same relative change in every variant, whatever its time per call.

The spin is repeated in the backward of an output that requires grad (the fraction there of
the time from one backward to the next): the backward variants time only the backward,
their forward call being the seed's untimed preparation. A busy wait, not a sleep: a sleep
of a few microseconds rounds up to the scheduler's tick and costs no CPU.

In the instruction counts' processes (compare's backward verdicts) a spin timed in seconds would
add only what callgrind's slowdown leaves of it, and one calibrated in time there added several
times its fraction of the call's instructions (valgrind slows the call path more than a loop):
there each spin is ``TORCH_OVERHEAD_INJECT_ITERATIONS`` iterations of ``spin_loop``, which
``compare-check`` sets from the variant's count and the loop's own count per iteration
(docs/paired-comparison.md, "Backward verdicts by instruction counts").

With ``0`` the wrapper (and the backward hook) is installed all the same and spins for
nothing: the other side, or the baselines, run through it too, so that a change measured
against them is the spin alone, not the wrapper's own frame and clock read (docs/validation.md).
"""

import itertools
import os
import sys

# settings.INJECT_US_ENV_VAR, settings.INJECT_FRACTION_ENV_VAR, gate_sensitivity.INJECT_ITERATIONS_ENV_VAR
# (no import: this runs at start-up)
_delay_us = os.environ.get("TORCH_OVERHEAD_INJECT_US")
_fraction = os.environ.get("TORCH_OVERHEAD_INJECT_FRACTION")
_iterations = os.environ.get("TORCH_OVERHEAD_INJECT_ITERATIONS")
CALIBRATION_CALLS = 200  # the median of the last half: setup's compile and first calls left out


def spin_loop(iterations):
    """The counting processes' spin: its instructions per iteration are counted apart (``spin_calls``).
    Over ``itertools.repeat``, as ``timeit``: ``range`` allocates an int per iteration past 256 and
    none below, so its count per iteration changed with the spin's length."""
    for _ in itertools.repeat(None, iterations):
        pass


def spin_calls(iterations):
    """A counting job (``benchmarks/callgrind.py``, ``count_here``) whose call is one ``spin_loop``."""
    return (lambda _: spin_loop(iterations)), None


# Only in asv's forkserver, which the benchmark processes are forked from, and in the instruction
# counts' processes (the only ones given a memory layout): every other Python process started
# meanwhile (the runner, compiler checks, the counts' warm-up) would import torch again for nothing.
_counting = "TORCH_OVERHEAD_LAYOUT_PAD" in os.environ  # instruction_count.LAYOUT_PAD_ENV_VAR
_setting = _iterations if _counting else _delay_us or _fraction
if _setting and ("run_server" in sys.argv or _counting):  # unset or empty: no wrapper
    import functools
    import importlib.abc
    import importlib.util
    import statistics
    import time

    class _Spin:
        """Spins its delay on each call: fixed, or once calibrated, the fraction of the median time
        between calls; in a counting process, its given iterations."""

        def __init__(self):
            self.delay = float(_delay_us) * 1e-6 if _delay_us else None
            self.iterations = int(_iterations) if _counting else None  # parsed once, not inside a counted call
            self.last, self.periods = None, []

        def __call__(self):
            if _counting:
                spin_loop(self.iterations)
                return
            now = time.perf_counter()
            if self.delay is None:
                if self.last is not None:
                    self.periods.append(now - self.last)
                self.last = now
                if len(self.periods) == CALIBRATION_CALLS:
                    self.delay = float(_fraction) * statistics.median(self.periods[CALIBRATION_CALLS // 2:])
                return
            end = now + self.delay
            while time.perf_counter() < end:
                pass

    def _wrap_compile(torch):
        _compile = torch.compile

        @functools.wraps(_compile)
        def _compile_with_overhead(*args, **kwargs):
            compiled = _compile(*args, **kwargs)
            forward, backward = _Spin(), _Spin()

            def spin_in_backward(grad):
                backward()
                return grad

            @functools.wraps(compiled)
            def slower(*call_args, **call_kwargs):
                forward()
                out = compiled(*call_args, **call_kwargs)
                if isinstance(out, torch.Tensor) and out.requires_grad:
                    out.register_hook(spin_in_backward)
                return out

            return slower

        torch.compile = _compile_with_overhead

    class _WrapOnImport(importlib.abc.MetaPathFinder):
        """Wraps torch.compile once the suite imports torch, not at start-up: the forkserver then
        imports torch as in any run, after the settings that precede it (benchmarks/forkserver.py).
        Imported here, it made the injected side's forkservers far slower to start on the H200
        (docs/paired-comparison.md)."""

        def find_spec(self, name, path, target=None):
            if name != "torch":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                _wrap_compile(module)

            spec.loader.exec_module = exec_module
            return spec

    if "torch" in sys.modules:
        _wrap_compile(sys.modules["torch"])
    else:
        sys.meta_path.insert(0, _WrapOnImport())
