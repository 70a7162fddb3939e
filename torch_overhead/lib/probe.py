"""Ask an interpreter which torch build it holds and which devices that build can use.

Run in a subprocess so that the interpreter under test can be another virtual
environment (the user's own CUDA build) than the one running asv, and so that a torch
that fails to import is reported as one line instead of a traceback.
"""

import json
import re
import subprocess
from dataclasses import dataclass

_PROBE = r"""
import json, sys
try:
    import torch
except BaseException as err:
    print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
    sys.exit(0)
cuda = torch.cuda.is_available()
print(json.dumps({
    "version": torch.__version__,
    "git_version": torch.version.git_version,
    "cuda_runtime": torch.version.cuda,
    "cuda": cuda,
    "gpu": torch.cuda.get_device_name(0) if cuda else None,
    "python_version": "%d.%d" % sys.version_info[:2],
}))
"""


class ProbeError(RuntimeError):
    """The interpreter cannot run the suite; the message says why and what to do."""


@dataclass(frozen=True)
class TorchBuild:
    python: str  # path of the interpreter that holds this build
    version: str
    git_version: str
    cuda_runtime: str | None
    cuda: bool
    gpu: str | None
    python_version: str  # X.Y of that interpreter

    def resolve_device(self, wanted):
        """``auto`` picks CUDA when this build sees a GPU; asking for an absent CUDA is an error."""
        if wanted == "auto":
            return "cuda" if self.cuda else "cpu"
        if wanted == "cuda" and not self.cuda:
            built = f"built for CUDA {self.cuda_runtime}" if self.cuda_runtime else "a CPU-only build"
            raise ProbeError(
                f"--device cuda: torch {self.version} ({built}) sees no CUDA device here; "
                "run on a GPU machine or pass --device cpu"
            )
        return wanted

    def default_machine_name(self, device, hostname):
        """Machine names say what was measured: the GPU model for CUDA, ``cpu-<host>`` otherwise."""
        label = self.gpu if device == "cuda" else f"cpu-{hostname}"
        return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def probe(python):
    try:
        out = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=300)
    except OSError as err:
        raise ProbeError(f"cannot start {python} ({err.strerror}); pass --python PATH to an interpreter with torch")
    lines = out.stdout.strip().splitlines()
    try:
        info = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"{python} could not report its torch build: {tail}")
    if "error" in info:
        raise ProbeError(f"torch does not import in {python}: {info['error']}; install a working torch there")
    if not info["git_version"] or info["git_version"] == "Unknown":
        raise ProbeError(f"torch {info['version']} in {python} names no git commit; history needs a build that does")
    return TorchBuild(python=python, **info)
