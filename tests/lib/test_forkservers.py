"""compare's servers: one import per side and round, an asv_runner server per lane."""

import json
import os
import sys

from asv import util

from torch_overhead.lib.forkservers import SideServers

SUITE = '''
import os
with open(os.environ["IMPORTS_FILE"], "a") as f:
    f.write(f"{os.getpid()}\\n")


def track_lane():
    return int(os.environ["LANE"])
'''


class Env:
    """The part of an asv environment the servers use: this interpreter, asv_runner importable."""

    env_vars = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

    def run(self, args, **kwargs):
        return util.check_output([sys.executable] + args, **kwargs)


def test_the_lanes_share_one_import_and_each_runs_with_its_own_variables(tmp_path, monkeypatch):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "__init__.py").write_text("")
    (suite / "lanes.py").write_text(SUITE)
    imports = tmp_path / "imports"
    monkeypatch.setenv("IMPORTS_FILE", str(imports))
    servers = SideServers(Env(), str(suite), [{"LANE": "0"}, {"LANE": "1"}, {"LANE": "2"}])
    try:
        assert all(lane.preimport()[0] for lane in servers.lanes)
        for k, lane in enumerate(servers.lanes):
            result = tmp_path / f"result-{k}"
            out, code = lane.run("lanes.track_lane", "{}", "None", str(result), 60, str(tmp_path))
            assert code == 0, out
            assert json.loads(result.read_text()) == k
    finally:
        servers.close()
    assert len(imports.read_text().split()) == 1  # imported once, in the side's interpreter
    assert servers.server_proc.poll() is not None and not os.path.exists(servers.tmp_dir)


def test_an_interpreter_that_exits_before_its_servers_listen_says_why(tmp_path):
    class Exits(Env):
        def run(self, args, **kwargs):  # as an interpreter without asv_runner would
            code = "import sys; print(\"ModuleNotFoundError: No module named 'asv_runner'\"); sys.exit(1)"
            return util.check_output([sys.executable, "-c", code], **kwargs)

    servers = SideServers(Exits(), str(tmp_path), [{}, {}])
    try:
        ok, out = servers.lanes[1].preimport()
    finally:
        servers.close()
    assert not ok and out.strip().endswith("No module named 'asv_runner'")
