"""asv forkservers for ``compare``'s lanes: an interpreter of one side imports the suite once and
forks an asv_runner server for each lane (``compare.RoundServers`` starts such an import per side
for each round of a wave).

asv's ``ForkServer`` starts an interpreter per server, and each imports torch, Dynamo and Inductor:
ten imports a round with five lanes, which on a loaded GPU machine kept a round waiting for
most of its time (docs/paired-comparison.md, "compare-check in a noisy state"). asv has no way
to fork servers from one import, so this does it: the forked children run asv_runner's own,
unchanged server loop on their own sockets, and asv talks to each as to its own ``ForkServer``.
"""

import json
import os
import shutil
import tempfile
import threading
import time

from asv.runner import ForkServer

# Run in the side's interpreter: asv_runner's own preimport (the suite's discovery), then one
# asv_runner server per lane, each with the lane's own variables (its pairs' meeting directory).
# Its arguments begin with "run_server", as an asv server's do: what the process is (the
# validation's injection wraps torch.compile only there).
ZYGOTE = """
import json, os, sys
from asv_runner._aux import update_sys_path
from asv_runner.discovery import disc_benchmarks
from asv_runner.server import _run_server
benchmark_dir, lanes = sys.argv[2], json.loads(sys.argv[3])
update_sys_path(benchmark_dir)
for _ in disc_benchmarks(benchmark_dir, ignore_import_errors=True):
    pass
sys.stdout.flush()
children = []
for socket_name, env in lanes:
    pid = os.fork()
    if pid == 0:
        os.environ.update(env)
        try:
            _run_server((benchmark_dir, socket_name))
        finally:
            os._exit(0)
    children.append(pid)
try:
    for pid in children:
        os.waitpid(pid, 0)
except KeyboardInterrupt:  # closed as asv closes a server, by SIGINT to the group
    pass
"""


class LaneServer(ForkServer):
    """One lane's server, a child of its side's ``SideServers``: asv's ``ForkServer`` protocol on
    its own socket; the process (the side's importing interpreter) is shared and closed once."""

    def __init__(self, side_servers, socket_name):  # no super().__init__: it would start a server
        self.side_servers, self.socket_name = side_servers, socket_name
        self.server_proc = side_servers.server_proc  # asv reads its exit code when a command fails
        self.interrupted = False

    def preimport(self):
        """Wait until this lane's server listens (the import done); ``(ok, output)`` as asv's."""
        while not os.path.exists(self.socket_name):
            if self.server_proc.poll() is not None:
                self.side_servers.stdout_reader_thread.join()
                return False, self.side_servers._server_output or "no output"
            time.sleep(0.05)
        return super().preimport()

    def close(self):
        pass  # the side's interpreter and its children are closed together (SideServers.close)


class SideServers(ForkServer):
    """One side's interpreter for a round: imports the suite, then forks a ``LaneServer`` per lane."""

    def __init__(self, env, root, lane_envs):  # no super().__init__: it would start a server of its own
        self.env, self.benchmark_dir, self.interrupted = env, os.path.abspath(root), False
        self.tmp_dir = tempfile.mkdtemp(prefix="torch-overhead-servers-")
        sockets = [os.path.join(self.tmp_dir, f"socket-{k}") for k in range(len(lane_envs))]
        self.server_proc = env.run(
            ["-c", ZYGOTE, "run_server", self.benchmark_dir, json.dumps([[s, e] for s, e in zip(sockets, lane_envs)])],
            return_popen=True, redirect_stderr=True, env=dict(os.environ, **env.env_vars))
        self._server_output = None
        self.stdout_reader_thread = threading.Thread(target=self._stdout_reader)
        self.stdout_reader_thread.start()
        self.lanes = [LaneServer(self, s) for s in sockets]

    def close(self):
        try:
            super().close()
        except ProcessLookupError:
            # asv signals the process group and stops at the first signal that finds none (seen once
            # in CI, leaving a server and its reader thread that kept compare from exiting).
            self.server_proc.kill()
            self.server_proc.wait()
            self.stdout_reader_thread.join()
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
