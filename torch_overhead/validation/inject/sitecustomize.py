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

In the instruction counts' processes (compare's backward verdicts) the spin runs under callgrind,
where a timed spin would add only what instrumentation's slowdown leaves of it: there it is a
number of loop iterations, that delay's worth at the loop's speed before instrumentation
starts, calibrated over the seed's 10 warm-up calls. Valgrind slows the call more than the
loop, so they add more than that fraction of the call's instructions
(docs/paired-comparison.md, "Backward verdicts by instruction counts").

With ``0`` the wrapper (and the backward hook) is installed all the same and spins for
nothing: the other side, or the baselines, run through it too, so that a change measured
against them is the spin alone, not the wrapper's own frame and clock read (docs/validation.md).
"""

import os
import sys

# settings.INJECT_US_ENV_VAR and settings.INJECT_FRACTION_ENV_VAR (no import: this runs at start-up)
_delay_us = os.environ.get("TORCH_OVERHEAD_INJECT_US")
_fraction = os.environ.get("TORCH_OVERHEAD_INJECT_FRACTION")
CALIBRATION_CALLS = 200  # the median of the last half: setup's compile and first calls left out
COUNTING_CALIBRATION_CALLS = 8  # of the warm-up's 9 periods, before a counting process instruments

# Only in asv's forkserver, which the benchmark processes are forked from, and in the instruction
# counts' processes (the only ones given a memory layout): every other Python process started
# meanwhile (the runner, compiler checks, the counts' warm-up) would import torch again for nothing.
_counting = "TORCH_OVERHEAD_LAYOUT_PAD" in os.environ  # instruction_count.LAYOUT_PAD_ENV_VAR
if (_delay_us or _fraction) and ("run_server" in sys.argv or _counting):  # unset or empty: no wrapper
    import functools
    import importlib.abc
    import importlib.util
    import statistics
    import time

    def _iterations(seconds, trial=100_000):
        """How many iterations of an empty loop take ``seconds`` here and now."""
        start = time.perf_counter()
        for _ in range(trial):
            pass
        return round(seconds * trial / (time.perf_counter() - start))

    class _Spin:
        """Spins its delay on each call: fixed, or once calibrated, the fraction of the median time
        between calls; in a counting process, as loop iterations."""

        def __init__(self):
            self.delay = float(_delay_us) * 1e-6 if _delay_us else None
            self.calibration = COUNTING_CALIBRATION_CALLS if _counting else CALIBRATION_CALLS
            self.last, self.periods, self.iterations = None, [], None

        def __call__(self):
            now = time.perf_counter()
            if self.delay is None:
                if self.last is not None:
                    self.periods.append(now - self.last)
                self.last = now
                if len(self.periods) == self.calibration:
                    self.delay = float(_fraction) * statistics.median(self.periods[self.calibration // 2:])
                return
            if _counting:
                if self.iterations is None:
                    self.iterations = _iterations(self.delay)
                for _ in range(self.iterations):
                    pass
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
