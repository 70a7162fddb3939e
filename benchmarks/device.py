"""The device under test, from ``TORCH_OVERHEAD_DEVICE`` (``cuda`` or ``cpu``, set by the runner,
which also records it in the asv environment name); without it, CUDA when present."""

import os

import torch

from .settings import DEVICE_ENV_VAR


def on_cuda():
    """Import-time answer to "is this a CUDA run?", for asv's skip decorators: never raises
    (a CUDA request without CUDA is refused by ``device()``, with a clear error)."""
    wanted = os.environ.get(DEVICE_ENV_VAR, "").strip().lower()
    return wanted == "cuda" or (wanted == "" and torch.cuda.is_available())


def device():
    """The device the benchmarks run on; a clear error when CUDA is asked for but absent."""
    wanted = os.environ.get(DEVICE_ENV_VAR, "").strip().lower()
    if wanted == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted not in ("cuda", "cpu"):
        raise ValueError(f"{DEVICE_ENV_VAR}={wanted!r}: use 'cuda' or 'cpu'")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{DEVICE_ENV_VAR}=cuda but torch {torch.__version__} sees no CUDA device; "
                           "use a CUDA build on a GPU machine or set it to 'cpu'")
    return wanted
