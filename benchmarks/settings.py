"""The suite's torch-free constants, shared by the benchmarks and the runner (``torch_overhead``).

Importing this module must stay cheap and import no torch: the runner reads it in an
interpreter that need not have torch at all.
"""

import itertools
import os
import re
import shutil

# Environment variables the runner sets for every benchmark process.
DEVICE_ENV_VAR = "TORCH_OVERHEAD_DEVICE"  # cuda or cpu; also part of the asv environment name
COMMIT_ENV_VAR = "TORCH_OVERHEAD_COMMIT"  # the torch commit the results are filed under
CPP_WRAPPER_ENV_VAR = "TORCH_OVERHEAD_CPP_WRAPPER"  # 1: the run includes the C++-wrapper layer
REFERENCE_FILE_ENV_VAR = "TORCH_OVERHEAD_REFERENCE_FILE"  # set by `figures` only (reference.py)
INJECT_US_ENV_VAR = "TORCH_OVERHEAD_INJECT_US"  # set by `gate-sensitivity` only (inject/)
INJECT_FRACTION_ENV_VAR = "TORCH_OVERHEAD_INJECT_FRACTION"  # set by `compare-check` only (inject/)
PAIR_BARRIER_ENV_VAR = "TORCH_OVERHEAD_PAIR_BARRIER"  # set by `compare --pairing simultaneous` only (common.py)
# Set by the runner when the benchmark processes are not each pinned to one CPU (the default):
# part of the asv environment name, so figures taken with other pinning never share a graph line.
PINNING_ENV_VAR = "TORCH_OVERHEAD_PINNING"
# Set by the user: the valgrind executable the instruction counts run under (else valgrind on PATH).
VALGRIND_ENV_VAR = "TORCH_OVERHEAD_VALGRIND"
# Set by the runner from --bench: the counting jobs, [layer, *variant] as JSON, of the instruction-count
# variants the run records (unset: all). A run counts only what it records: one process per job.
COUNT_JOBS_ENV_VAR = "TORCH_OVERHEAD_COUNT_JOBS"
# Set by the runner to 1 when --bench selects only the all-threads counts: the calling thread's race on
# CUDA (instruction_count.counting_plan) needs no extra processes then.
ALL_THREADS_ONLY_ENV_VAR = "TORCH_OVERHEAD_COUNT_ALL_THREADS_ONLY"

# The seed's variants, as asv parameters.
SEED_PARAMS = ([False, True], [False, True], [False, True], [False, True])
SEED_PARAM_NAMES = ["requires_grad", "inference_mode", "backward", "dynamic"]
VARIANTS = list(itertools.product(*SEED_PARAMS))

WARMUP_CALLS = 10  # as the seed's _prepare_once()
CALLS_PER_TIMING = 10  # host-clock timings are this many back-to-back calls (see common.per_call_clock)

# The headline: the seed's host-time figure, which the tools report on.
HEADLINE = "runtime_overhead.RuntimeOverhead.time_add1"


# The layers of the breakdown (docs/layers.md), each named for the instruction counts and
# mapped to the ``module:class`` of the benchmark that times it.
LAYERS = {
    "eager": "layers:Eager",
    "dynamo": "layers:DynamoEager",
    "aot_eager": "layers:AotAutograd",
    "inductor": "runtime_overhead:RuntimeOverhead",
    "inductor_cudagraphs": "layers:InductorCudaGraphs",
    "inductor_cpp_wrapper": "layers:InductorCppWrapper",
    "triton_launch": "floor:TritonLaunch",
    "cuda_graph_replay": "floor:CudaGraphReplay",
}
HEADLINE_LAYER = "inductor"
FLOOR_LAYERS = ("triton_launch", "cuda_graph_replay")


def invalid_variant(requires_grad, inference_mode, backward):
    """Why the seed never builds this combination, or None."""
    if inference_mode and backward:
        return "inference_mode and backward are exclusive (the seed asserts)"
    if backward and not requires_grad:
        return "backward needs requires_grad=True: there is no graph to differentiate"
    return None


VALID_VARIANTS = [v for v in VARIANTS if invalid_variant(*v[:3]) is None]


def flags_name(variant):
    """A variant named by the flags that are on ("requires_grad+backward"), or "base"."""
    return "+".join(n for n, on in zip(SEED_PARAM_NAMES, variant) if on) or "base"


def pinning_tag(cpu_affinity):
    """PINNING_ENV_VAR's value for ``--cpu-affinity``: "" for one CPU (the default, no tag),
    "none" unpinned, "cpus0-3" / "cpus0.2" for a set of CPUs."""
    if re.fullmatch(r"\d+", cpu_affinity.strip()):
        return ""
    return "none" if cpu_affinity == "none" else "cpus" + re.sub(r"[^0-9-]", ".", cpu_affinity.strip())


def chosen_valgrind(environ=os.environ):
    """The valgrind the counts run under: the executable VALGRIND_ENV_VAR names, else ``valgrind``
    on PATH, else None. Raises ValueError when the variable names no executable: the runner
    refuses to start, rather than have every count skipped. Here, as both sides need it."""
    named = environ.get(VALGRIND_ENV_VAR)
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise ValueError(f"{VALGRIND_ENV_VAR}={named} is not an executable file: point it at a "
                             "valgrind binary (e.g. /usr/bin/valgrind), or unset it to use valgrind on PATH")
        return os.path.abspath(named)
    return shutil.which("valgrind", path=environ.get("PATH"))
