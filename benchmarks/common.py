"""What every benchmark module shares: the device under test and compile-once state.

Two facts of asv_runner 0.3 shape this module:

* ``setup()`` runs before *every* timed call (asv#966). Compiling there would
  recompile per call and time a cold path, so compiled functions are cached here,
  per process and per parameter set, and ``setup()`` only fetches them.
* Each parameter set runs in its own process (forked from asv's forkserver), so the
  cache never holds state from another variant; it is keyed by parameters anyway
  so that a second variant in one process would still get its own fresh compile.

The runner also exports ``TORCH_OVERHEAD_COMMIT``, the commit the results will be
filed under; a process whose torch is another build refuses to measure.

The device is chosen once, from ``TORCH_OVERHEAD_DEVICE`` (``cuda`` or ``cpu``),
which the ``torch_overhead`` runner sets and also records in the asv environment
name, so every stored figure names its device. Without the variable the default is
CUDA when present, else the CPU. CUDA is never touched at import time: the forkserver
imports this module before it forks, and CUDA does not survive a fork.
"""

import os

# Inductor's import asks how many GPUs there are. Through the CUDA runtime that
# "poisons" fork: every benchmark process forked from asv's forkserver then fails with
# "Cannot re-initialize CUDA in forked subprocess" (seen on the H200). Through NVML,
# which PyTorch uses when this is set, the count is fork-safe.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
# Compile in the benchmark process itself. By default Inductor starts a pool of one
# worker per core (16 on the H200) in every benchmark process: seconds of start-up per
# variant, and workers left behind that compete with the timed calls (pinned to one
# core, per-call times grew from 55 us to 460 us over five processes on the H200).
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import sys  # noqa: E402

import torch  # noqa: E402

# Imported here, not at first compile, so that asv's forkserver pays for these imports
# once instead of every benchmark process paying again (about 6 s each on the 2-core
# CPU machine, 8-11 s on the H200). asv's discovery step (`asv_runner discover`)
# imports this module too but only reads class attributes: it skips them.
if "discover" not in sys.argv[1:2]:
    import torch._dynamo  # noqa: F401
    import torch._inductor.compile_fx  # noqa: F401

DEVICE_ENV_VAR = "TORCH_OVERHEAD_DEVICE"
COMMIT_ENV_VAR = "TORCH_OVERHEAD_COMMIT"
WARMUP_CALLS = 10  # as the seed's _prepare_once()


def device():
    """The device the benchmarks run on; a clear error when CUDA is asked for but absent."""
    wanted = os.environ.get(DEVICE_ENV_VAR, "").strip().lower()
    if wanted == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted not in ("cuda", "cpu"):
        raise ValueError(f"{DEVICE_ENV_VAR}={wanted!r}: use 'cuda' or 'cpu'")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"{DEVICE_ENV_VAR}=cuda but torch {torch.__version__} sees no CUDA device; "
            "use a CUDA build on a GPU machine or set it to 'cpu'"
        )
    return wanted


def skip_invalid_variant(requires_grad, inference_mode, backward):
    """Skip, the asv way (NotImplementedError in setup is recorded as n/a with this reason),
    the combinations the seed never builds."""
    if inference_mode and backward:
        raise NotImplementedError("inference_mode and backward are exclusive (the seed asserts)")
    if backward and not requires_grad:
        raise NotImplementedError("backward needs requires_grad=True: there is no graph to differentiate")


def check_build():
    """Refuse to measure a torch other than the build the results will be filed under."""
    expected = os.environ.get(COMMIT_ENV_VAR)
    if expected and expected != torch.version.git_version:
        raise RuntimeError(
            f"results are labelled torch commit {expected[:12]} but this process imports "
            f"torch {torch.__version__} @ {torch.version.git_version[:12]}"
        )


_compiled = {}


def compile_once(key, build):
    """Return ``build()``'s result, computed once per process for ``key``.

    ``build`` does the expensive part (reset, compile, warm-up). Only one entry is
    kept: a new key means a new variant, which starts from ``torch._dynamo.reset()``
    as the seed does, so the old compiled function is dead anyway.
    """
    if key not in _compiled:
        check_build()
        _compiled.clear()
        _compiled[key] = build()
    return _compiled[key]
