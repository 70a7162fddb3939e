"""The layers of the breakdown as recorded benchmarks, from the bottom of the stack up.

Each is ``(label, host-clock benchmark, counted layer)``: the label the tables and pictures
show, the asv benchmark that times it (its synchronized twin is the same name +
``_synchronized``), and its name in the instruction counts. The benchmark is derived from
``benchmarks/settings.py`` LAYERS, which maps each counted layer to its ``module:class``.
"""

from .suite import settings

LABELS = {  # bottom of the stack first
    "cuda_graph_replay": "CUDA graph replay",
    "triton_launch": "Triton launch",
    "eager": "eager",
    "dynamo": "Dynamo",
    "aot_eager": "AOTAutograd",
    "inductor": "Inductor",
    "inductor_cudagraphs": "Inductor+CUDA graphs",
    "inductor_cpp_wrapper": "Inductor+C++ wrapper",
}


def timing_benchmark(layer):
    """``floor.TritonLaunch.time_launch``, ``layers.Eager.time_add1``, ...: the floor launches a
    kernel, every other layer calls add1."""
    module, cls = settings.LAYERS[layer].split(":")
    return f"{module}.{cls}." + ("time_launch" if layer in settings.FLOOR_LAYERS else "time_add1")


LAYERS = [(label, timing_benchmark(layer), layer) for layer, label in LABELS.items()]
CUDA_ONLY = (*settings.FLOOR_LAYERS, "inductor_cudagraphs")
