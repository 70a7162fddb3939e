"""Compile time of the headline ``add1``, per seed variant: cold and warm, in seconds.

Off by default (they take minutes: about 20 s per cold variant on the 2-core CPU);
``python -m torch_overhead run --slow`` includes them. Each figure is the wall time from
``torch.compile`` to the return of the first call (and of the first backward, for
backward variants): what a user waits for before the first result.

* cold: in a fresh benchmark process, with empty Inductor and Triton caches on disk
  (``torch._inductor.utils.fresh_cache``);
* warm: the same after one compile has filled that cache and every in-memory cache has
  been dropped (``torch._dynamo.reset`` + ``clear_inductor_caches``): an on-disk hit.
"""

import time

import torch
from torch._inductor.utils import clear_inductor_caches, fresh_cache

from .common import SEED_PARAM_NAMES, SEED_PARAMS, device, skip_invalid_variant, work
from .runtime_overhead import add1


def _first_call_seconds(requires_grad, inference_mode, backward, dynamic):
    torch._dynamo.reset()
    clear_inductor_caches()
    a = torch.ones(2, device=device(), requires_grad=requires_grad)
    start = time.perf_counter()
    compiled = torch.compile(add1, backend="inductor", fullgraph=True, dynamic=dynamic)
    work(compiled, a, inference_mode, backward)
    if device() == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


class CompileTime:
    params = SEED_PARAMS
    param_names = SEED_PARAM_NAMES
    version = "compile-time-1"
    unit = "seconds"
    timeout = 900

    def setup(self, requires_grad, inference_mode, backward, dynamic):
        skip_invalid_variant(requires_grad, inference_mode, backward)

    def track_cold_seconds(self, requires_grad, inference_mode, backward, dynamic):
        """torch.compile to first result with empty on-disk caches."""
        with fresh_cache():
            return _first_call_seconds(requires_grad, inference_mode, backward, dynamic)

    def track_warm_seconds(self, requires_grad, inference_mode, backward, dynamic):
        """torch.compile to first result when the on-disk caches already hold this graph."""
        with fresh_cache():
            _first_call_seconds(requires_grad, inference_mode, backward, dynamic)
            return _first_call_seconds(requires_grad, inference_mode, backward, dynamic)
