"""Import-time work of every benchmark process, done once in asv's forkserver.

asv forks each benchmark process from a server that has imported the whole suite
(``launch_method: forkserver``): what is imported or computed here is inherited by every
variant instead of being paid again in each. Nothing here may touch CUDA, which does
not survive a fork. ``common.py`` imports this module before anything else of torch.
"""

import os
import sys

# Inductor's import counts GPUs; through the CUDA runtime that poisons fork ("Cannot
# re-initialize CUDA in forked subprocess"), through NVML it is fork-safe.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
# No compile-worker pool per benchmark process: its start-up costs seconds per variant and
# its idle workers compete with the timed calls for the pinned CPU.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import torch  # noqa: E402

from .device import on_cuda  # noqa: E402
from .settings import CPP_WRAPPER_ENV_VAR  # noqa: E402

# asv's discovery step (`asv_runner discover`) imports the suite only to read class
# attributes: it skips these imports, paid once by the forkserver below.
if "discover" not in sys.argv[1:2]:
    import torch._dynamo  # noqa: F401, E402
    import torch._inductor.compile_fx  # noqa: F401, E402


def wants_cpp_build():
    """Whether this run has Inductor compile C++: every CPU run, and a CUDA run that includes
    the C++-wrapper layer (the runner says so through CPP_WRAPPER_ENV_VAR)."""
    return not on_cuda() or os.environ.get(CPP_WRAPPER_ENV_VAR) == "1"


def warm():
    """Compute what the first compile of every forked process would otherwise compute again,
    each cached per process: the source hashes that key Inductor's on-disk caches and, when
    this run compiles C++, the CPU's working vector instruction sets (about ten compiler
    subprocesses; docs/cost.md has what each costs). Older releases lack some of these
    functions, or keep them elsewhere: what a release does not have is not warmed."""
    from torch._inductor import codecache

    if hasattr(codecache, "torch_key"):
        codecache.torch_key()
    try:
        from torch._inductor.runtime.triton_compat import HAS_TRITON, triton_key
    except ImportError:  # before torch 2.6 (torch 2.4.1 failed here: docs/backfill.md)
        HAS_TRITON = False
    if HAS_TRITON:
        triton_key()
    if wants_cpp_build():
        try:
            from torch._inductor.cpu_vec_isa import valid_vec_isa_list
        except ImportError:  # before torch 2.5 it lived in codecache
            valid_vec_isa_list = codecache.valid_vec_isa_list
        valid_vec_isa_list()


# Only in the forkserver (asv_runner's ``run_server``): nothing else forks from its process.
if sys.argv[1:2] == ["run_server"]:
    warm()
