"""The floor: the cheapest ways to run ``a + 1`` on a GPU, below any PyTorch dispatch.

A raw Triton kernel launch (Triton's own Python launcher, one block) and a raw CUDA graph
replay of ``a + 1``. No variants: there is no autograd or Dynamo here. CUDA only: on
another device they are recorded as skipped.
"""

import torch

from .common import CALLS_PER_TIMING, _Sampling, compile_once, cuda_only, device, synchronized


class _Floor(_Sampling):
    """A launch timed on both clocks, sampled as the headline is. ``prepare`` builds and warms
    it up once per process (asv_runner re-runs setup before every timed call: rebuilding
    there would time the first launch after a fresh capture, every time)."""

    def setup(self):
        self.launch, self.output = compile_once(type(self).__name__, self.prepare)

    @cuda_only([()])
    def time_launch(self):
        """CALLS_PER_TIMING back-to-back launches/replays; asv records seconds per launch.
        Host time: no device synchronize."""
        for _ in range(CALLS_PER_TIMING):
            self.launch()

    @synchronized
    @cuda_only([()])
    def time_launch_synchronized(self):
        """One launch/replay with the device synchronized before and after."""
        self.launch()


def _triton_add1():
    """Build the kernel only when asked: importing Triton is not free, and may be absent."""
    try:
        import triton
        import triton.language as tl
    except ImportError as err:
        raise NotImplementedError(f"Triton is not installed ({err})")

    @triton.jit
    def add1_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.arange(0, BLOCK)
        mask = offsets < n
        tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + 1, mask=mask)

    return add1_kernel


class TritonLaunch(_Floor):
    """A hand-written Triton ``a + 1`` kernel launched directly (grid of one block)."""

    version = "floor-triton-launch-3"

    def prepare(self):
        kernel = _triton_add1()
        a = torch.ones(2, device=device())
        out = torch.empty_like(a)
        launch = lambda: kernel[(1,)](a, out, 2, BLOCK=2)  # noqa: E731
        for _ in range(10):
            launch()
        torch.cuda.synchronize()
        return launch, out


class CudaGraphReplay(_Floor):
    """``a + 1`` captured once in a ``torch.cuda.CUDAGraph``; each call is ``graph.replay()``."""

    version = "floor-cuda-graph-replay-3"

    def prepare(self):
        a = torch.ones(2, device=device())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up off the capture stream, as PyTorch's docs do
            for _ in range(3):
                a + 1
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = a + 1  # the graph's output lives in its memory pool: keep a reference
        for _ in range(10):
            graph.replay()
        torch.cuda.synchronize()
        return graph.replay, out
