"""The same ``add1`` at each layer beneath the headline, to show where its overhead lives.

From the bottom: eager PyTorch (no compile), Dynamo alone (backend "eager"), Dynamo +
AOTAutograd (backend "aot_eager"), then Inductor variants beside the headline in
``runtime_overhead.py``: with CUDA graphs (mode "reduce-overhead") and with the C++
wrapper. The floor beneath all of these (a raw Triton launch, a CUDA graph replay) is in
``floor.py``. Same variants, skips, clocks, contract and sampling as the headline, so that
their figures compare (the C++ wrapper excepted: one process per variant, see there).
"""

import torch

from .common import _Add1Variants, add1


class Eager(_Add1Variants):
    """``a + 1`` with no compile: the work every compiled layer wraps."""

    version = "layers-eager-3"

    def build(self, dynamic):
        return add1

    def unsupported(self, device, requires_grad, inference_mode, backward, dynamic):
        if dynamic:
            return "eager has no dynamic shapes: identical to dynamic=False"
        return None


class DynamoEager(_Add1Variants):
    """Dynamo alone: guards and frame evaluation around the eager graph (backend "eager")."""

    version = "layers-dynamo-eager-3"

    def build(self, dynamic):
        return torch.compile(add1, backend="eager", fullgraph=True, dynamic=dynamic)


class AotAutograd(_Add1Variants):
    """Dynamo + AOTAutograd, no Inductor (backend "aot_eager")."""

    version = "layers-aot-eager-3"

    def build(self, dynamic):
        return torch.compile(add1, backend="aot_eager", fullgraph=True, dynamic=dynamic)


class InductorCudaGraphs(_Add1Variants):
    """Inductor with CUDA graphs (mode "reduce-overhead"): kernel launches replayed as a graph."""

    version = "layers-inductor-cudagraphs-3"

    def build(self, dynamic):
        return torch.compile(add1, backend="inductor", mode="reduce-overhead", fullgraph=True, dynamic=dynamic)

    def unsupported(self, device, requires_grad, inference_mode, backward, dynamic):
        if device != "cuda":
            return "CUDA graphs need CUDA"
        return None


class InductorCppWrapper(_Add1Variants):
    """Inductor with its C++ wrapper (``cpp_wrapper``): the Python wrapper code compiled away."""

    version = "layers-inductor-cpp-wrapper-3"
    timeout = 600  # a cold C++ wrapper build is a full C++ compile

    def build(self, dynamic):
        return torch.compile(add1, backend="inductor", fullgraph=True, dynamic=dynamic,
                             options={"cpp_wrapper": True})

    def _prepare_once(self, requires_grad, inference_mode, backward, dynamic):
        """A build where the C++ wrapper does not compile (no compiler, an unsupported
        variant) is a skip with the compiler's reason, not a crash of the run."""
        try:
            return super()._prepare_once(requires_grad, inference_mode, backward, dynamic)
        except Exception as err:  # Inductor wraps toolchain failures in several types
            first_line = (str(err).strip().splitlines() or [""])[0][:200]
            raise NotImplementedError(f"cpp_wrapper does not compile here: {type(err).__name__}: {first_line}")
