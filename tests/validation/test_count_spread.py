"""count-spread: the resampled repeat of figures of k processes, and the command end to end on the CPU
(valgrind is installed by the test command)."""

import statistics
import subprocess
import sys

from conftest import one_error_line
from torch_overhead.validation.count_spread import TARGET, pairs_apart, processes_needed


def test_identical_processes_repeat_exactly_with_one_process():
    figures = [104_000.0] * 8
    assert set(pairs_apart(figures, 3)) == {0.0}
    assert processes_needed(figures) == 1


def test_more_processes_per_figure_bring_two_figures_closer():
    figures = [104_000 * (1 + 0.003 * z) for z in (-1.5, -1.0, -0.6, -0.3, 0.0, 0.2, 0.5, 0.8, 1.1, 1.4, 1.7, -0.9)]
    one, three = pairs_apart(figures, 1), pairs_apart(figures, 3)
    assert statistics.median(three) < statistics.median(one)
    sd = statistics.stdev(figures) / statistics.mean(figures) * 100  # about 0.3%
    needed = processes_needed(figures)
    assert 1.96 * sd * (2 / needed) ** 0.5 <= TARGET < 1.96 * sd * (2 / (needed - 1)) ** 0.5


def run(*args):
    return subprocess.run([sys.executable, "-m", "torch_overhead", "count-spread", *args],
                          capture_output=True, text=True, timeout=600)


def test_bad_input_is_one_error_line():
    for args, words in ((["--per-job", "1"], "--per-job must be at least 2"),
                        (["--variant", "inference_mode+backward"], "name the flags that are on")):
        result = run(*args)
        assert result.returncode == 2 and words in one_error_line(result)


def test_the_eager_call_counts_alike_in_every_process_on_the_cpu():
    """On the CPU nothing in the call races another thread: processes of one layout read one count."""
    result = run("--device", "cpu", "--layer", "eager", "--variant", "base", "--per-job", "2", "--calls", "2")
    assert result.returncode == 0, result.stderr
    assert "base at layer eager, 2 calls a block: 2 of 2 processes counted" in result.stdout
    calling = next(line for line in result.stdout.splitlines() if line.startswith("  calling thread:"))
    assert "sd 0.000% a process" in calling and calling.endswith("in 95% of runs: 1"), result.stdout
