"""Compile time of the headline ``add1``, per seed variant: cold and warm, in seconds.

Off by default (they take minutes: tens of seconds per cold variant on a 2-core CPU);
``python -m torch_overhead run --slow`` includes them. Each figure is the wall time from
``torch.compile`` to the return of the first call (and of the first backward, for
backward variants): what a user waits for before the first result.

* cold: in a fresh interpreter with Dynamo and Inductor imported (as the forkserver
  imports them), with empty Inductor and Triton caches on disk
  (``torch._inductor.utils.fresh_cache``). Spawned, not forked from asv's forkserver:
  that one has already computed, for the other benchmarks, what a first compile in a
  process computes once (``forkserver.warm``), and a cold start pays for it;
* warm: the same after one compile has filled that cache and every in-memory cache has
  been dropped (``torch._dynamo.reset`` + ``clear_inductor_caches``): an on-disk hit.
"""

import subprocess
import sys
import time

import torch

from .common import SEED_PARAM_NAMES, SEED_PARAMS, add1, child_env, device, skip_invalid_variant, work


def _first_call_seconds(requires_grad, inference_mode, backward, dynamic):
    # Inductor's modules are imported where used, not at the top: asv's discovery step
    # imports every benchmark module in a fresh interpreter on every run, and importing
    # torch._inductor.utils there pulls in Dynamo (seconds of every run).
    from torch._inductor.utils import clear_inductor_caches

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
        variant = (requires_grad, inference_mode, backward, dynamic)
        code = ("from torch._inductor.utils import fresh_cache\n"
                "from benchmarks.compile_time import _first_call_seconds\n"
                f"with fresh_cache(): print(repr(_first_call_seconds(*{variant!r})))")
        out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"cold compile failed: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
        return float(out.stdout.split()[-1])

    def track_warm_seconds(self, requires_grad, inference_mode, backward, dynamic):
        """torch.compile to first result when the on-disk caches already hold this graph."""
        from torch._inductor.utils import fresh_cache

        with fresh_cache():
            _first_call_seconds(requires_grad, inference_mode, backward, dynamic)
            return _first_call_seconds(requires_grad, inference_mode, backward, dynamic)
