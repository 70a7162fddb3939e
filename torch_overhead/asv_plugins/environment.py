"""An asv environment for "the torch build installed in this interpreter", labelled by device.

asv's own ``existing`` environment names itself after the interpreter's absolute path:
that path lands in result file names, in each result's ``python`` field and in graph
folders, so two checkouts (or the CI machine and a laptop) draw separate lines and
commit machine-local paths. This subclass keeps everything ``existing`` does (nothing
installed, results saved with ``--set-commit-hash``) but names itself by Python version
and by the device under test, which it also records as a result parameter
(``env_vars``): a CPU figure can never be stored or drawn as a CUDA one.

Use: ``asv run -E installed-torch:/path/to/python`` with ``TORCH_OVERHEAD_DEVICE`` set
to ``cuda`` or ``cpu`` (``python -m torch_overhead run`` does both).
"""

import os

from asv import util
from asv.environment import EnvironmentUnavailable, ExistingEnvironment, get_env_name

from ..lib.benchmark_env import env_tags
from ..lib.suite import settings

DEVICE_ENV_VAR = settings.DEVICE_ENV_VAR


class InstalledTorch(ExistingEnvironment):
    tool_name = "installed-torch"

    def __init__(self, conf, executable, requirements, tagged_env_vars):
        device = os.environ.get(DEVICE_ENV_VAR, "")
        if device not in ("cuda", "cpu"):
            raise util.UserError(
                f"set {DEVICE_ENV_VAR} to 'cuda' or 'cpu' (got {device!r}); "
                "`python -m torch_overhead run` sets it for you"
            )
        tagged_env_vars = {**tagged_env_vars, **env_tags(device, os.environ.get(settings.PINNING_ENV_VAR, ""))}
        super().__init__(conf, executable, requirements, tagged_env_vars)
        try:
            self._python = util.check_output(
                [self._executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
            ).strip()
        except (util.ProcessError, OSError) as err:
            raise EnvironmentUnavailable(str(err))
        self._global_env_vars["ASV_ENV_NAME"] = self.name

    @property
    def name(self):
        return get_env_name(self.tool_name, self._python, {}, self._tagged_env_vars)
