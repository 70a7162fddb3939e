"""compare-check end to end on the CPU, kept short: one A/A comparison and the injected one, one
cheap variant, one round each, then the same command again, reading them from its --keep folder.
What it must get right is what it runs and how it counts; the H200's figures are in
docs/paired-comparison.md."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_project

DYNAMO = r"^layers\.DynamoEager\.time_add1\(False, False, False, False\)"
DYNAMO_BACKWARD = r"^layers\.DynamoEager\.time_add1\(True, False, True, False\)"  # counted: both sides on CPU 1


def test_runs_the_a_a_and_the_injected_comparison_and_prints_the_four_figures(tmp_path):
    """A timed variant and a counted one; the counted one's injection is that percent of its A/A count in
    loop iterations, and all of them land in its count."""
    project = make_project(tmp_path / "project")
    keep = tmp_path / "keep"
    command = [sys.executable, "-m", "torch_overhead", "compare-check", "--project-root", str(project),
               "--device", "cpu", "--repeats", "1", "--percent", "50,25", "--max-rounds", "1", "--bench", DYNAMO,
               "--bench", DYNAMO_BACKWARD, "--cpu-affinity", "1",
               "--attribute", "repeat=5", "--attribute", "warmup_time=0.05", "--keep", str(keep)]
    check = lambda extra=(): subprocess.run(command + list(extra), capture_output=True, text=True,  # noqa: E731
                                            env=dict(os.environ, HOME=str(project)), timeout=2400)
    done = check()
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-3000:]  # one A/A: two figures cannot be met
    assert "A/A 1: " in out and "injected 25%: " in out and "injected 50%: " in out and "steal" in out
    for figure in ("false alarms", "sensitivity (50% injected: slower)", "cost", "stability",
                   "smallest change slower in 9 of 10"):
        assert figure in out
    assert re.search(r"^variant +A/A 1 +\+25% +\+50%$", out, re.M), out
    false_alarms = out.split("false alarms")[1].splitlines()[0]
    assert "of 2" in false_alarms and false_alarms.endswith("too few A/A (1 of 5)"), false_alarms  # two variants
    assert out.split("stability")[1].splitlines()[0].endswith("too few A/A (1 of 3)"), out
    spins = re.findall(r"counted variants: ([0-9,]+) loop iterations", out)  # 25%, then 50%
    quarter, iterations = (int(n.replace(",", "")) for n in spins)
    assert 0 < quarter and abs(iterations - 2 * quarter) <= 1, out
    share = re.search(r"counted, B - A: .+ \+[0-9,]+ \(([0-9]+)% of the spin's\)", out)
    assert share and 90 <= int(share.group(1)) <= 110, out
    assert "| counted |" in (keep / "injected-25pc-report.md").read_text()
    injected = (keep / "injected-50pc-report.md").read_text()
    assert "side A: " in injected and "TORCH_OVERHEAD_INJECT_FRACTION=0 TORCH_OVERHEAD_INJECT_ITERATIONS=0;" in injected
    assert f"TORCH_OVERHEAD_INJECT_FRACTION=0.5 TORCH_OVERHEAD_INJECT_ITERATIONS={iterations};" in injected
    counted = next(line for line in injected.splitlines() if "(True, False, True, False)" in line)
    assert "| counted |" in counted and counted.endswith("| slower |"), counted
    assert "- rounds: 1 (" in (keep / "aa0-report.md").read_text()  # --max-rounds reaches compare
    assert not os.path.exists(os.path.join(project, "results", "compare-check-compare"))  # throwaway copies

    assert "; lean " not in out  # one round: no lean to tell

    # Run again with the same folder: every finished comparison is read from it, none run again. Its A/A
    # state given four rounds (a wave each) of two variants, B/A 1.02, 1.00, 1.01, 1.01: the lean is read from the kept state.
    kept_state = next(keep.glob("aa0-compare-*.json"))
    state = json.loads(kept_state.read_text())
    state["rounds"] = [{"variants": {f"v{k}": {"A": {"samples": [1.0]}, "B": {"samples": [b]}} for k in range(2)},
                        "started": f"wave {i}"} for i, b in enumerate((1.02, 1.0, 1.01, 1.01))]
    kept_state.write_text(json.dumps(state))
    again = check()
    assert again.returncode == 1 and again.stdout.count(", kept") == 3, again.stdout[-3000:] + again.stderr[-3000:]
    assert re.search(r"^A/A 1: .*, kept; lean \+0\.0099 \(B/A 1\.0100\), ", again.stdout, re.M), again.stdout
    table = lambda text: [line for line in text.splitlines() if line.startswith("layers.")]  # noqa: E731
    assert table(again.stdout) == table(out) and len(table(out)) == 2, again.stdout
    other = check(["--band", "0.03"])  # other settings: nothing of the folder's is mixed in
    assert other.returncode != 0 and other.stderr.startswith("error: ") and "other settings" in other.stderr
    assert len(other.stderr.splitlines()) == 1, other.stderr


@pytest.mark.parametrize("percent", ["2,x", "0", "5,100"])
def test_a_bad_percent_is_one_error_line_and_exit_2(tmp_path, percent):
    done = subprocess.run([sys.executable, "-m", "torch_overhead", "compare-check", "--project-root", str(tmp_path),
                           "--device", "cpu", "--percent", percent], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert "--percent" in done.stderr


def test_a_busy_neighbour_ignores_ctrl_c_and_dies_when_killed():
    """Ctrl-C reaches the neighbours too; they must neither stop nor each print a traceback: compare
    reports the interruption once, and main kills them."""
    from torch_overhead.validation import compare_check
    (proc,) = compare_check._neighbours(1)
    try:
        deadline = time.monotonic() + 60
        while not _ignores_sigint(proc.pid):  # the handler is set once the interpreter has started
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL


def _ignores_sigint(pid):
    with open(f"/proc/{pid}/status") as status:
        mask = next(line for line in status if line.startswith("SigIgn:")).split()[1]
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))
