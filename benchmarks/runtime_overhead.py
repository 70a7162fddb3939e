"""Per-call runtime overhead of a torch.compile'd ``add1``: the headline.

A port of PyTorch's ``benchmarks/dynamo/pr_time_benchmarks/benchmarks/runtime_overhead.py``:
``add1(a) = a + 1`` compiled by Inductor with ``fullgraph=True`` on a 2-element tensor,
over requires_grad x inference_mode x backward x dynamic. The seed counts instructions;
here asv records wall time per call (host, and synchronized on CUDA), with the seed's
split between untimed per-call preparation and timed work (``common._Add1Variants``).
"""

import torch

from .common import _Add1Variants, add1, graphs_compiled


class RuntimeOverhead(_Add1Variants):
    """Inductor-compiled ``add1`` (``fullgraph=True``), as the seed."""

    # Pinned: asv publish drops results whose version differs from benchmarks.json.
    version = "runtime_overhead-3"

    def build(self, dynamic):
        return torch.compile(add1, backend="inductor", fullgraph=True, dynamic=dynamic)

    def track_recompiles(self, requires_grad, inference_mode, backward, dynamic):
        """Graphs Dynamo compiled during 100 timings (1,000 calls) made after warm-up exactly
        as the timed ones are made: anything but 0 means the timings include recompilation."""
        torch._dynamo.config.error_on_recompile = False  # count them here instead of failing
        before = graphs_compiled()
        for _ in range(100):
            self.setup(requires_grad, inference_mode, backward, dynamic)
            self.time_add1(requires_grad, inference_mode, backward, dynamic)
        return graphs_compiled() - before

    track_recompiles.unit = "recompiles"
