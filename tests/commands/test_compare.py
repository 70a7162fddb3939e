"""compare end to end on the CPU: verdicts, the random recorded CPUs, what asv records, resume, bad input.

Cheap variants keep it short: Dynamo alone (``layers.DynamoEager``, no Inductor compile) and
eager PyTorch (``layers.Eager``, no compile at all), a few samples per process. The verdicts'
comparison runs both sides at once in two lanes, a CPU each (``--pairing simultaneous --jobs 2``);
the resumed A/A comparison runs them back to back.
"""

import concurrent.futures
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time
import types

import pytest
from asv.results import Results

from conftest import ROOT, ctrl_c, make_project, terminal_job
from torch_overhead.commands import compare

INJECT = os.path.join(ROOT, "torch_overhead", "validation", "inject", "sitecustomize.py")
DYNAMO = r"^layers\.DynamoEager\.time_add1\(False, False, False, False\)"
EAGER = r"^layers\.Eager\.time_add1\(False, False, False, False\)"
AOT = r"^layers\.AotAutograd\.time_add1\(False, False, False, False\)"
DYNAMO_BACKWARD = r"^layers\.DynamoEager\.time_add1\(True, False, True, False\)"
# Few samples per process, and a budget no loaded CI host spends: each round starts two forkservers.
QUICK = ["--attribute", "repeat=5", "--attribute", "warmup_time=0.05", "--budget-seconds", "3000"]
# Beside the gate-sensitivity injection (a spin before every call of what torch.compile
# returns), a side with BREAK_AOT=1 fails to compile with backend "aot_eager": one variant crashes.
# Only in asv's forkserver, which the benchmark processes are forked from, and in the instruction
# counts' processes: the compiler checks its warm-up runs in `python -c` subprocesses would each
# import torch again (seconds each).
SITECUSTOMIZE = f"""
import os, runpy, sys
if "run_server" in sys.argv or "TORCH_OVERHEAD_LAYOUT_PAD" in os.environ:
    runpy.run_path({INJECT!r})
    if "run_server" in sys.argv and os.environ.get("HASH_LOG"):  # which side, its seed, and a hash under it
        with open(os.environ["HASH_LOG"], "a") as log:
            log.write(f"{{os.environ['TORCH_OVERHEAD_INJECT_US']}} {{os.environ.get('PYTHONHASHSEED')}} {{hash('add1')}}\\n")
    # Both sides wrap torch.compile alike, so that the Eager variant's two sides are set up alike (an A/A
    # pair); only side B's wrapper, under BREAK_AOT=1, refuses aot_eager.
    import torch
    _compile = torch.compile
    def _maybe_broken(fn, *args, backend="inductor", **kwargs):
        if backend == "aot_eager" and os.environ.get("BREAK_AOT") == "1":
            raise RuntimeError("aot_eager broken on purpose")
        return _compile(fn, *args, backend=backend, **kwargs)
    torch.compile = _maybe_broken
"""


def compare_cmd(project, *args):
    return [sys.executable, "-m", "torch_overhead", "compare", "--project-root", str(project), "--device", "cpu",
            "--machine", "ci", *QUICK, *args]


def env_for(project, extra_path=None):
    path = os.pathsep.join(p for p in (extra_path, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, HOME=str(project), PYTHONPATH=path)


def states(project):
    return sorted(glob.glob(os.path.join(project, ".asv", "compare-*.json")))


def report_rows(path):
    """``{benchmark name: verdict cell}`` from the report's table."""
    rows = {}
    with open(path) as f:
        for line in f:
            if line.startswith("| `"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                rows[cells[0].strip("`").split(".")[1]] = cells[-1]
    return rows


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    """Side B adds 2 ms to every call of a compiled function and its backward (2,000 loop iterations in
    a counting process), and cannot compile with aot_eager; both sides' processes run at once, in two lanes side by side, one on CPU 0 and one on
    CPU 1. A backward, not timed with both sides on one CPU, is counted. The band is one the CI host's
    rounds can hold (sd of log B/A about 0.2 there): at 6 rounds the interval spans them all, and at
    the default 2% an A/A pair reads "slower" or "faster" whenever all six land past 2% one way,
    about 2% of the time; at 10%, about 0.2%. The verdicts at a band are tested in tests/lib."""
    project = make_project(tmp_path_factory.mktemp("compare"))
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    report = os.path.join(project, "report.md")
    cmd = compare_cmd(project, "--bench", DYNAMO, "--bench", EAGER, "--bench", AOT, "--bench", DYNAMO_BACKWARD,
                      "--max-rounds", "6",
                      "--env-a", "TORCH_OVERHEAD_INJECT_US=0", "--env-b", "TORCH_OVERHEAD_INJECT_US=2000",
                      "--env-a", "TORCH_OVERHEAD_INJECT_ITERATIONS=0", "--env-b", "TORCH_OVERHEAD_INJECT_ITERATIONS=2000",
                      "--env-a", "BREAK_AOT=0", "--env-b", "BREAK_AOT=1",
                      "--report", report, "--pairing", "simultaneous", "--jobs", "2",
                      "--cpu-affinity", "0,1", "--band", "0.1")
    env = dict(env_for(project, str(site)), HASH_LOG=os.path.join(project, "hash.log"))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=2400)
    return project, done, report, lambda: subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_large_injected_cost_is_slower_the_unaffected_variant_is_not_and_a_crash_is_unknown(injected):
    project, done, report, _ = injected
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # 1: some variant slower
    rows = report_rows(report)
    assert rows["DynamoEager"] == "slower"
    # Eager PyTorch calls no compiled function: for it the two sides are the same (an A/A pair).
    assert rows["Eager"] not in ("slower", "faster")
    assert rows["AotAutograd"].startswith("unknown: side B failed in round 1") and "broken on purpose" in rows["AotAutograd"]


def test_a_backward_on_a_shared_cpu_is_decided_by_its_instruction_counts(injected):
    """Both sides' instructions over all threads, counted under callgrind and recorded through asv
    under each side's environment: the iterations spun in side B's backward make it slower."""
    project, done, report, _ = injected
    with open(report) as f:
        line = next(line for line in f if line.startswith("| `layers.DynamoEager.time_add1(True, False, True, False)`"))
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    assert cells[1] == "counted" and cells[5].startswith("instructions, all threads") and cells[6] == "slower", line
    a, b = (float(c.replace(",", "")) for c in cells[2:4])
    assert b / a > 1.015 and abs(float(cells[4]) - b / a) < 0.001, line
    (path,) = states(project)
    with open(path) as f:
        counts = json.load(f)["counts"]
    kept = [counts[name][label]["value"] for name in counts for label in "AB"]
    assert [round(v) for v in kept] == [a, b], counts  # the report rounds to the instruction
    files = [p for p in glob.glob(os.path.join(project, "results", "ci-compare", "*.json"))
             if not p.endswith("machine.json")]
    name = "instruction_count.LayerInstructionCount.track_instructions_all_threads"
    recorded = {}
    for results in map(Results.load, files):
        params, values = results.get_result_params(name), results.get_result_value(name, results.get_result_params(name))
        combos = [", ".join(c) for c in __import__("itertools").product(*params)]
        recorded[results.env_name.rsplit("-", 1)[-1]] = values[combos.index("'dynamo', True, False, True, False")]
    assert recorded == {"TORCH_OVERHEAD_INJECT_US0": kept[0], "TORCH_OVERHEAD_INJECT_US2000": kept[1]}


def test_the_same_command_again_reports_the_kept_counts_without_counting_again(injected):
    project, _, report, again = injected
    with open(report) as f:
        before = f.read().split("| variant |")[1].split("\n\n")[0]
    done = again()
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # 1: some variant slower
    assert "resuming from" in done.stdout and "counting beside the rounds" not in done.stdout, done.stdout[-3000:]
    assert "waiting for the instruction counts" not in done.stdout
    with open(report) as f:
        assert f.read().split("| variant |")[1].split("\n\n")[0] == before


def test_each_lane_keeps_its_pairs_on_its_own_cpu_and_the_lanes_run_side_by_side(injected):
    """The state records each pair's lane and each side's CPU and start and end (Unix time): the
    two processes of a pair overlap on their lane's one CPU, and pairs of the two lanes overlap."""
    project, _, report, _ = injected
    (path,) = states(project)
    with open(path) as f:
        rounds = json.load(f)["rounds"]
    assert len(rounds) == 6
    pairs = [v for r in rounds for v in r["variants"].values()]
    for pair in pairs:
        assert pair["cpus"] == {"A": pair["lane"], "B": pair["lane"]}, pair
        span = pair["wall_clock"]
        assert max(span["A"][0], span["B"][0]) < min(span["A"][1], span["B"][1]), span
    by_lane = {k: [p["wall_clock"]["A"] for p in pairs if p["lane"] == k] for k in (0, 1)}
    assert any(max(x[0], y[0]) < min(x[1], y[1]) for x in by_lane[0] for y in by_lane[1]), by_lane
    with open(report) as f:
        assert "- round 6: " in f.read()


def test_both_sides_of_a_round_share_a_hash_seed_drawn_anew_each_round(injected):
    """Each round records the PYTHONHASHSEED both sides' servers ran with: each side's interpreter
    saw it (its str hashes equal the other side's), and the rounds drew different ones."""
    project, _, report, _ = injected
    (path,) = states(project)
    with open(path) as f:
        seeds = [r["hash_seed"] for r in json.load(f)["rounds"]]
    with open(os.path.join(project, "hash.log")) as f:
        seen = [line.split() for line in f]
    for seed in seeds:
        hashes = {side: h for side, s, h in seen if s == seed}
        assert set(hashes) == {"0", "2000"} and len(set(hashes.values())) == 1, (seed, seen)
    assert len(set(seeds)) == len(seeds) == 6, seeds  # one round a wave here: a seed each
    with open(report) as f:
        assert "hash seed: common" in f.read()


def test_a_variant_s_rounds_of_one_import_count_once():
    """Six imports, the last forked for three rounds (a wave recorded before each round had an
    import of its own): eight rounds, six draws; given imports of their own, eight."""
    rounds = [{"round": i + 1, "started": f"wave {min(i, 5)}",
               "variants": {"v": {"A": {"samples": [1.0]}, "B": {"samples": [1.0 + 0.001 * i]}}}} for i in range(8)]
    summary, note = compare.status_of("v", rounds, 0.02, "median")
    assert note == "" and summary["rounds"] == 8 and summary["imports"] == 6 and summary["verdict"] == "same"
    summary, _ = compare.status_of("v", rounds[:7], 0.02, "median")
    assert summary["imports"] == 6 and summary["low"] is not None
    summary, _ = compare.status_of("v", rounds[:5], 0.02, "median")
    assert summary["imports"] == 5 and summary["low"] is None and compare.fmt_interval(summary) == "(too few imports)"
    own = [dict(entry, **({"import": i - 5} if i >= 5 else {})) for i, entry in enumerate(rounds)]
    assert compare.status_of("v", own, 0.02, "median")[0]["imports"] == 8


@pytest.mark.parametrize("cpus, jobs, pairing, expected", [
    (None, 3, "simultaneous", [None, None, None]),
    ([4, 5, 6, 7], 2, "simultaneous", [[4, 5], [6, 7]]),
    ([4, 5, 6, 7], 4, "back-to-back", [[4], [5], [6], [7]]),
    ([0, 1, 2, 3, 4, 5], 2, "back-to-back", [[0, 1, 2], [3, 4, 5]]),
])
def test_lanes_deal_the_cpus_in_equal_consecutive_shares(cpus, jobs, pairing, expected):
    from torch_overhead.commands.compare import lanes_of
    assert [lane.cpus for lane in lanes_of(cpus, jobs, pairing)] == expected


@pytest.mark.parametrize("cpus, jobs, pairing, message", [
    ([1, 2, 3], 2, "back-to-back", "--jobs 2 with 3 CPUs"),
    ([1, 2, 3, 4, 5, 6], 2, "simultaneous", "one CPU per lane"),
    ([1], 0, "back-to-back", "--jobs 0"),
])
def test_lanes_refuse_cpus_they_cannot_share(cpus, jobs, pairing, message):
    from torch_overhead.commands.compare import CompareError, lanes_of
    with pytest.raises(CompareError, match=message):
        lanes_of(cpus, jobs, pairing)


@pytest.mark.parametrize("cpus, jobs, pairing, untimed", [
    ([4, 5], 2, "simultaneous", True),  # one CPU a lane, both sides on it
    ([4, 5, 6, 7], 2, "simultaneous", False),  # two a lane: one each
    (None, 2, "simultaneous", False),
    ([4, 5], 2, "back-to-back", False),
])
def test_a_backward_is_not_timed_with_both_sides_on_one_cpu(cpus, jobs, pairing, untimed):
    """A backward waits at every call on the autograd device thread, so two sides on one CPU take
    turns call by call: a cost added to one read as none. Such variants are left untimed, with
    what to do instead; the forward ones, other placements, and the combinations the seed leaves
    out (asv skips them) are not."""
    from torch_overhead.commands.compare import SHARED_CPU_BACKWARD, lanes_of, shared_cpu_backwards, table
    bench = {"params": [["False", "True"]] * 4,
             "param_names": ["requires_grad", "inference_mode", "backward", "dynamic"]}
    selected = [(f"v{idx}", bench, idx) for idx in range(16)]
    backward = {"v10", "v11"}  # requires_grad and backward, without inference_mode: the seed's two
    found = shared_cpu_backwards(selected, lanes_of(cpus, jobs, pairing), pairing)
    assert found == (backward if untimed else set())
    assert shared_cpu_backwards([("x", {"params": [], "param_names": []}, 0)], lanes_of([4], 1, "simultaneous"),
                                "simultaneous") == set()
    rows = dict((name, (s, note)) for name, s, note in table(["v10", "v0"], [], 0.02, "median", found))
    assert rows["v10"][1].startswith(SHARED_CPU_BACKWARD) if untimed else rows["v10"][1] == ""
    assert not rows["v0"][1].startswith(SHARED_CPU_BACKWARD)


@pytest.mark.parametrize("a, b, verdict", [(200_000, 200_000, "same"), (200_000, 202_900, "same"),
                                           (200_000, 203_100, "slower"), (200_000, 196_900, "faster")])
def test_a_counted_backward_gets_the_gates_margin_for_counts(a, b, verdict):
    """The counts' verdict: beyond the gate's 1.5% margin for instruction counts, slower or faster."""
    from torch_overhead.commands.compare import SHARED_CPU_BACKWARD, table
    got = {"A": {"samples": None, "value": a}, "B": {"samples": None, "value": b}}
    failed = {"A": {"samples": None, "value": a}, "B": {"skipped": "valgrind is not installed"}}
    (_, s, note), (_, none, why) = table(["v10", "v11"], [], 0.02, "median", {"v10", "v11"},
                                         {"v10": got, "v11": failed})
    assert (s["verdict"], s["ratio"], note) == (verdict, b / a, "")
    assert none is None and why.startswith(SHARED_CPU_BACKWARD) and "valgrind is not installed" in why


@pytest.mark.parametrize("done, elapsed, undecided_left, max_rounds, counting, why", [
    (8, 90, True, None, False, None),                       # within the budget
    (8, 95, True, None, False, "budget of 100 s spent"),    # the next wave (10 s) would pass it
    (8, 95, True, None, True, None),                        # past it, but the counts still run
    (8, 400, True, None, True, None),
    (8, 95, True, 8, True, "--max-rounds 8 reached"),       # a round limit holds while counting too
    (8, 50, False, None, True, "every variant decided"),
    (0, 500, True, None, False, None),                      # a first round always runs
])
def test_rounds_stop_at_the_budget_unless_the_counts_still_run(done, elapsed, undecided_left, max_rounds,
                                                               counting, why):
    """The comparison waits for its instruction counts whatever the budget: its undecided timed
    variants get rounds meanwhile."""
    from torch_overhead.commands.compare import why_stop
    got = why_stop(done, elapsed, 10, undecided_left, max_rounds, 100, counting)
    assert (got is None) if why is None else got.startswith(why), got


def test_both_sides_at_once_sample_one_timing_unless_told_otherwise():
    """At once, a sample is one timing (it falls within one scheduler slice); --attribute wins;
    back to back keeps the suite's own sampling."""
    from torch_overhead.commands.compare import with_pairing_sampling
    assert with_pairing_sampling("simultaneous", {"cpu_affinity": [1]}) == {
        "number": 1, "repeat": (40, 200, 10.0), "cpu_affinity": [1]}
    assert with_pairing_sampling("simultaneous", {"repeat": 5})["repeat"] == 5
    assert with_pairing_sampling("back-to-back", {"repeat": 5}) == {"repeat": 5}


@pytest.mark.parametrize("lanes", [1, 2, 4, 5, 6])
def test_a_wave_keeps_each_lane_busy_and_never_puts_two_pairs_of_a_variant_in_one_lane(lanes):
    """As variants are decided the rest get more pairs a wave, up to two pairs a lane, each pair of a
    variant in its own lane (run_wave deals task i to lane i % lanes, tasks round-major)."""
    from torch_overhead.commands.compare import PAIRS_PER_LANE, pairs_of_each
    for undecided in range(1, 11):
        reps = pairs_of_each(undecided, lanes)
        tasks = [(r, j) for r in range(reps) for j in range(undecided)]
        for j in range(undecided):
            used = [i % lanes for i, (_, v) in enumerate(tasks) if v == j]
            assert len(set(used)) == len(used), (undecided, lanes, used)
        assert reps == 1 or len(tasks) <= PAIRS_PER_LANE * lanes
    assert pairs_of_each(2, 5) == 5 and pairs_of_each(4, 5) == 2 and pairs_of_each(10, 5) == 1


def test_each_side_is_recorded_through_asv_under_its_own_environment(injected):
    """Same build, different settings: two asv environments, each holding every process's samples."""
    project, _, _, _ = injected
    (path,) = states(project)
    with open(path) as f:
        rounds = json.load(f)["rounds"]
    files = [p for p in glob.glob(os.path.join(project, "results", "ci-compare", "*.json"))
             if not p.endswith("machine.json")]
    by_env = {Results.load(p).env_name: Results.load(p) for p in files}
    assert sorted(name.rsplit("-", 1)[-1] for name in by_env) == [
        "TORCH_OVERHEAD_INJECT_US0", "TORCH_OVERHEAD_INJECT_US2000"]
    name = "layers.DynamoEager.time_add1"
    for env_name, results in by_env.items():
        label = "B" if env_name.endswith("2000") else "A"
        samples = results.get_result_samples(name, results.get_result_params(name))[0]
        assert len(samples) == sum(len(r["variants"][f"{name}(False, False, False, False)"][label]["samples"])
                                   for r in rounds)


def test_ctrl_c_keeps_finished_rounds_and_the_same_command_resumes(tmp_path):
    """An A/A comparison (one interpreter, no settings; the pairing the other tests do not use): side B is
    recorded as ci-compare-b."""
    project = make_project(tmp_path / "project")
    cmd = compare_cmd(project, "--bench", EAGER, "--max-rounds", "2", "--pairing", "back-to-back")
    job = terminal_job(cmd, env_for(project))
    deadline = time.time() + 600
    while not states(project) and time.time() < deadline and job.poll() is None:
        time.sleep(0.2)
    ctrl_c(job)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 130, out[-2000:] + err[-2000:]
    assert "finished rounds are kept" in err
    (path,) = states(project)
    with open(path) as f:
        kept = json.load(f)["rounds"]
    assert len(kept) == 1

    done = subprocess.run(cmd, capture_output=True, text=True, env=env_for(project), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"resuming from {path}: {len(kept)} rounds recorded" in done.stdout
    with open(path) as f:
        rounds = json.load(f)["rounds"]
    assert len(rounds) == 2 and rounds[0] == kept[0]
    assert os.path.isdir(os.path.join(project, "results", "ci-compare-b"))


def test_ctrl_c_while_a_round_s_servers_close_closes_each_once_then_interrupts():
    """Ctrl-C while one side's servers close: the other side's are closed too, each side's once,
    and the interrupt comes after; the cleanup that closes the round again finds nothing left."""
    closed = []

    class Servers:  # a side's servers; closing the first sends the Ctrl-C
        def __init__(self, label):
            self.label = label

        def close(self):
            closed.append(self.label)
            if len(closed) == 1:
                os.kill(os.getpid(), signal.SIGINT)

    round_servers = compare.RoundServers.__new__(compare.RoundServers)  # a round's servers, no interpreter started
    round_servers.sides = [(None, Servers("A")), (None, Servers("B"))]
    round_servers.pool = concurrent.futures.ThreadPoolExecutor(1)
    round_servers.barriers = []
    with pytest.raises(KeyboardInterrupt):
        round_servers.close()
    round_servers.close()
    assert sorted(closed) == ["A", "B"]


def test_ctrl_c_while_a_wave_s_servers_close_keeps_the_wave(tmp_path, monkeypatch):
    """Ctrl-C while a finished wave's servers close: its rounds are saved, in both sides' results
    and the state, before compare stops with 130, so the same command resumes after them."""
    saved, closes = [], []

    class Servers:  # a wave's servers, no interpreter started; the first close sends the Ctrl-C
        hash_seeds = ["7"]

        def __init__(self, sides, *args):
            self.order = sides[::-1]

        def ready(self):
            return None

        def close(self):
            closes.append(True)
            if len(closes) == 1:
                os.kill(os.getpid(), signal.SIGINT)

    def run_wave(first, todo, reps, *args):
        return [{"round": first + r, "started": "2026-12-07T05:00:00+00:00", "import": 0, "variants": {}}
                for r in range(reps)]

    monkeypatch.setattr(compare, "RoundServers", Servers)
    monkeypatch.setattr(compare, "run_wave", run_wave)
    monkeypatch.setattr(compare, "open_results", lambda side, conf, repo: types.SimpleNamespace(save=saved.append))
    args = types.SimpleNamespace(band=0.02, estimator="median", max_rounds=0, budget_seconds=60,
                                 pairing="back-to-back", hash_seed="common")
    conf, path = types.SimpleNamespace(results_dir=str(tmp_path / "results")), str(tmp_path / "state.json")
    sides = [types.SimpleNamespace(label=label) for label in "AB"]
    state = {"rounds": []}
    code = compare.loop(args, sides, [compare.Lane(None)], conf, None, [("add1", None, 0)], state, path, {},
                        time.perf_counter())
    assert code == 130
    with open(path) as f:
        kept = json.load(f)["rounds"]
    assert [entry["round"] for entry in kept] == [1] and kept[0]["hash_seed"] == "7" and kept[0]["seconds"] > 0
    assert kept[0]["first"] == "B"  # the side the wave's servers started first
    assert saved == [conf.results_dir] * 2


def test_which_side_starts_first_is_drawn_for_each_round(monkeypatch):
    """A round's servers start in the order it drew, and each pair submits its processes in that
    order: over rounds, each side goes first (a fixed first side would carry its start through the
    whole comparison)."""
    started, submitted = [], []

    class SideServers:  # one side's interpreter, none started
        def __init__(self, env, root, lane_envs):
            started.append(env)
            self.server_proc, self.lanes = types.SimpleNamespace(pid=0), [types.SimpleNamespace(preimport=lambda: None)]

        def close(self):
            pass

    def run_benchmark(benchmark, spawner, **kwargs):
        submitted.append(spawner)
        return {}

    class InOrder:  # the pair's two threads, run one after the other in the order submitted
        def __init__(self, workers):
            pass

        def map(self, fn, items):
            return [fn(item) for item in items]

        def shutdown(self, wait):
            pass

    monkeypatch.setattr(compare, "SideServers", SideServers)
    monkeypatch.setattr(compare, "run_benchmark", run_benchmark)
    sides = [types.SimpleNamespace(label=label, env=label, process_env={}, python="python") for label in "AB"]
    conf = types.SimpleNamespace(benchmark_dir="benchmarks")
    firsts = []
    for seed in range(8):
        started.clear(), submitted.clear()
        servers = compare.RoundServers(sides, [compare.Lane([0])], conf, True, [], "independent", random.Random(seed))
        with monkeypatch.context() as pair:
            pair.setattr(compare.concurrent.futures, "ThreadPoolExecutor", InOrder)
            compare.run_at_once(None, 0, servers.order, servers.spawners[0][0], servers.barriers[0], {},
                                random.Random(0))
        first = servers.order[0].label
        other = "B" if first == "A" else "A"
        assert started == [first, other]
        assert submitted == [servers.spawners[0][0][first], servers.spawners[0][0][other]]
        firsts.append(first)
        servers.close()
    assert set(firsts) == {"A", "B"}, firsts  # seeds 0-7 of random.Random draw both


def test_each_round_of_a_wave_forks_from_an_import_of_its_own(monkeypatch):
    """A wave of three rounds starts three interpreters a side, both sides of each under one hash
    seed of its own, and each round's pairs fork from its import's servers (rounds of one import
    share its offset and would count once): the state records each round's import and seed."""
    started, ran = [], []

    class SideServers:  # one side's interpreter, none started; its lanes' servers name it
        def __init__(self, env, root, lane_envs):
            name = f"{env}{sum(e == env for e, _ in started)}"
            started.append((env, os.environ.get("PYTHONHASHSEED")))
            self.server_proc = types.SimpleNamespace(pid=0)
            self.lanes = [types.SimpleNamespace(preimport=lambda: None, name=f"{name}/lane{k}") for k in range(2)]

        def close(self):
            pass

    def run_benchmark(benchmark, spawner, **kwargs):
        ran.append(spawner.name)
        return types.SimpleNamespace(result=[1.0], samples=[[1.0]], errcode=0, stderr="")

    monkeypatch.setattr(compare, "SideServers", SideServers)
    monkeypatch.setattr(compare, "run_benchmark", run_benchmark)
    sides = [types.SimpleNamespace(label=label, env=label, process_env={}, python="python",
                                   results=types.SimpleNamespace(add_result=lambda *a, **k: None)) for label in "AB"]
    lanes = [compare.Lane(None), compare.Lane(None)]
    servers = compare.RoundServers(sides, lanes, types.SimpleNamespace(benchmark_dir="benchmarks"), False, [],
                                   "common", random.Random(0), 3)
    assert sorted(started) == sorted((label, seed) for seed in servers.hash_seeds for label in "AB")
    assert len(set(servers.hash_seeds)) == 3
    entries = compare.run_wave(1, [("v", None, 0)], 3, sides, lanes, servers, {}, random.Random(0), False)
    servers.close()
    assert [e["import"] for e in entries] == [0, 1, 2]
    # round r's pair ran in lane r % 2 (one variant: task r), forked from import r of each side
    assert sorted(ran) == sorted(f"{label}{r}/lane{r % 2}" for r in range(3) for label in "AB"), ran


@pytest.mark.parametrize("args, message", [
    (["--python-b", "/nonexistent/python"], "cannot start /nonexistent/python"),
    (["--python-b", "/bin/sh"], "could not report its torch build"),
    (["--env-b", "NOEQUALS"], "give KEY=VALUE"),
    (["--band", "0"], "--band 0.0"),
    (["--bench", "no_such_benchmark"], "matches no benchmark"),
    # A backward on a shared CPU that the suite cannot count either (compile times have no counts).
    (["--bench", r"CompileTime\.track_cold_seconds\(True, False, True, False\)", "--cpu-affinity", "0"],
     "and the suite has no instruction count of"),
    # Out of range on a machine of fewer than 4 CPUs (asv's check), else more than two (compare's).
    (["--pairing", "simultaneous", "--cpu-affinity", "1,2,3"], "--cpu-affinity"),
    (["--pairing", "simultaneous", "--cpu-affinity", "0,1,0"], "with --pairing simultaneous give one CPU"),
    (["--jobs", "2", "--cpu-affinity", "0"], "--jobs 2 with 1 CPUs"),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, args, message):
    project = make_project(tmp_path / "project")
    done = subprocess.run(compare_cmd(project, *args), capture_output=True, text=True, env=env_for(project),
                          timeout=300)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert not glob.glob(os.path.join(project, "results", "ci*"))


def test_each_side_counts_under_a_folder_of_its_own(tmp_path, monkeypatch):
    """The two sides count at once: each side's warm caches and their lock (``caches_held``) lie
    under its own TMPDIR, and both folders' paths have one length (a path's length moves a count)."""
    import tempfile

    from torch_overhead.lib.paired_counts import side_tmpdir
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folders = [side_tmpdir(label) for label in "AB"]
    assert folders[0] != folders[1] and len(folders[0]) == len(folders[1])
    code = "from benchmarks.instruction_count import WARM_CACHE; print(WARM_CACHE)"
    caches = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, TMPDIR=folder),
                             capture_output=True, text=True, check=True).stdout.strip() for folder in folders]
    assert [os.path.dirname(cache) for cache in caches] == folders, caches
