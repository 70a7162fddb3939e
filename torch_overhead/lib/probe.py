"""Ask an interpreter which torch build it holds and which devices that build can use.

Run in a subprocess so that the interpreter under test can be another virtual
environment (the user's own CUDA build) than the one running asv, and so that a torch
that fails to import is reported as one line instead of a traceback.
"""

import json
import os
import re
import signal
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


# Importing torch and asking for its GPU takes seconds, even a first CUDA initialization well
# under a minute: an interpreter silent for longer hangs.
TIMEOUT_S = 90


def probe(python):
    try:
        # Its own process group, so that a timeout ends whatever the interpreter started too.
        proc = subprocess.Popen([python, "-c", _PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    except OSError as err:
        raise ProbeError(f"cannot start {python} ({err.strerror}); pass --python PATH to an interpreter with torch")
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ProbeError(f"{python} did not report its torch build within {TIMEOUT_S} s (stopped it); "
                         "check that `import torch` works there") from None
    except BaseException:  # Ctrl-C: leave nothing running behind
        _kill_group(proc)
        raise
    try:
        info = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"{python} could not report its torch build: {tail}")
    if "error" in info:
        raise ProbeError(f"torch does not import in {python}: {info['error']}; install a working torch there")
    if not info["git_version"] or info["git_version"] == "Unknown":
        raise ProbeError(f"torch {info['version']} in {python} names no git commit; history needs a build that does")
    return TorchBuild(python=python, **info)


def _kill_group(proc):
    """End the probe's process group (the interpreter and anything it started; still unreaped,
    so its id cannot have been reused), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
