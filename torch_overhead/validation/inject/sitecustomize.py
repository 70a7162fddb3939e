"""Injected per-call overhead, for measuring what the gate can detect (``gate_sensitivity``).

Put this folder first on PYTHONPATH and set ``TORCH_OVERHEAD_INJECT_US``: every function
``torch.compile`` returns then spins that many microseconds before each call, as a real
regression in the compiled call path would. A busy wait, not a sleep: a sleep of a few
microseconds rounds up to the scheduler's tick and costs no CPU.

With ``0`` the wrapper is installed all the same and spins for nothing: the baselines
run through it too, so that a run's change from them is the spin alone, not the
wrapper's own frame and clock read (docs/validation.md).
"""

import os

_delay_us = os.environ.get("TORCH_OVERHEAD_INJECT_US")  # settings.INJECT_US_ENV_VAR (no import: runs at start-up)

if _delay_us:  # unset or empty: no wrapper
    import functools
    import time

    import torch

    _compile = torch.compile
    _delay = float(_delay_us) * 1e-6

    @functools.wraps(_compile)
    def _compile_with_overhead(*args, **kwargs):
        compiled = _compile(*args, **kwargs)

        @functools.wraps(compiled)
        def slower(*call_args, **call_kwargs):
            end = time.perf_counter() + _delay
            while time.perf_counter() < end:
                pass
            return compiled(*call_args, **call_kwargs)

        return slower

    torch.compile = _compile_with_overhead
