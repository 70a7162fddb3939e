"""Per-call runtime overhead of a torch.compile'd ``add1``.

A port of PyTorch's ``benchmarks/dynamo/pr_time_benchmarks/benchmarks/runtime_overhead.py``:
``add1(a) = a + 1`` compiled by Inductor with ``fullgraph=True`` on a 2-element tensor,
over requires_grad x inference_mode x backward x dynamic. The seed counts instructions;
here asv records host wall time per call, with the seed's split between untimed
per-call preparation (``_prepare``) and timed work (``_work``).
"""

import torch

from .common import WARMUP_CALLS, compile_once, device, skip_invalid_variant


def add1(a):
    return a + 1


def _compile_and_warm_up(requires_grad, inference_mode, backward, dynamic):
    """The seed's ``_prepare_once()``: reset Dynamo, compile, run the work 10 times."""
    torch._dynamo.reset()
    a = torch.ones(2, device=device(), requires_grad=requires_grad)
    compiled = torch.compile(add1, backend="inductor", fullgraph=True, dynamic=dynamic)
    for _ in range(WARMUP_CALLS):
        if backward:
            compiled(a).sum().backward()
        elif inference_mode:
            with torch.inference_mode():
                compiled(a)
        else:
            compiled(a)
    return compiled, a


class RuntimeOverhead:
    """Inductor-compiled ``add1`` on a 2-element tensor: host time of one call."""

    params = ([False, True], [False, True], [False, True], [False, True])
    param_names = ["requires_grad", "inference_mode", "backward", "dynamic"]
    # Pinned: asv publish drops results whose version differs from benchmarks.json.
    version = "runtime_overhead-1"
    # Each sample is the mean of `number` calls, each timed on its own with setup()
    # re-run before it (asv_runner 0.3); `repeat` samples per process, `rounds`
    # processes per variant.
    number = 50
    repeat = (10, 20, 10.0)
    rounds = 2
    warmup_time = 0.2
    timeout = 300  # a cold Inductor compile on a 2-core CPU takes about 20 s

    def setup(self, requires_grad, inference_mode, backward, dynamic):
        skip_invalid_variant(requires_grad, inference_mode, backward)
        self.add1, self.a = compile_once(
            (requires_grad, inference_mode, backward, dynamic),
            lambda: _compile_and_warm_up(requires_grad, inference_mode, backward, dynamic),
        )
        if backward:
            # The seed's _prepare(): a fresh forward graph for the timed backward.
            self.loss = self.add1(self.a).sum()

    def time_add1(self, requires_grad, inference_mode, backward, dynamic):
        """One call of the compiled add1, or only ``.backward()`` of a fresh ``add1(a).sum()``
        when backward is set. Host time: no device synchronize, as in the seed."""
        if backward:
            self.loss.backward()
        elif inference_mode:
            with torch.inference_mode():
                self.add1(self.a)
        else:
            self.add1(self.a)
