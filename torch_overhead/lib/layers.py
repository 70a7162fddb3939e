"""The layers of the breakdown as recorded benchmarks, from the bottom of the stack up.

Each is ``(label, host-clock benchmark, counted layer)``: the label the tables and pictures
show, the asv benchmark that times it (its synchronized twin is the same name +
``_synchronized``), and its name in the instruction counts (``benchmarks/settings.py`` LAYERS).
"""

from .suite import settings

LAYERS = [
    ("CUDA graph replay", "floor.CudaGraphReplay.time_launch", "cuda_graph_replay"),
    ("Triton launch", "floor.TritonLaunch.time_launch", "triton_launch"),
    ("eager", "layers.Eager.time_add1", "eager"),
    ("Dynamo", "layers.DynamoEager.time_add1", "dynamo"),
    ("AOTAutograd", "layers.AotAutograd.time_add1", "aot_eager"),
    ("Inductor", settings.HEADLINE, "inductor"),
    ("Inductor+CUDA graphs", "layers.InductorCudaGraphs.time_add1", "inductor_cudagraphs"),
    ("Inductor+C++ wrapper", "layers.InductorCppWrapper.time_add1", "inductor_cpp_wrapper"),
]
CUDA_ONLY = (*settings.FLOOR_LAYERS, "inductor_cudagraphs")
