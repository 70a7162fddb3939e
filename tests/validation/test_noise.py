"""The machine-noise diagnostic (``python -m torch_overhead noise``) on the CPU."""

import re
import subprocess
import sys

from conftest import ROOT


def test_noise_reports_every_block_with_its_cpu_share_and_the_steal_time():
    result = subprocess.run(
        [sys.executable, "-m", "torch_overhead", "noise", "--device", "cpu",
         "--processes", "2", "--blocks", "2", "--block-seconds", "0.05"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    blocks = re.findall(r"([\d.]+) +([\d.]+) +(\d+)% cpu(\d+)", result.stdout)
    assert len(blocks) == 4, result.stdout
    for python_us, add1_us, share, cpu in blocks:
        assert 0 < float(python_us) < float(add1_us)  # a 300-element sum beats a compiled call
        # a share of the block's wall time: some CPU was spent, never more than the wall time (rounded);
        # how much is the machine's load (25% seen with the suite's other tests on both CPUs)
        assert 0 < int(share) <= 101
    assert re.search(r"4 blocks in \d+ s; steal over that time, all \d+ CPUs together: [\d.]+ s", result.stdout)
    assert re.search(r"add1's CPU share of wall time: median \d+%, lowest \d+%", result.stdout)
