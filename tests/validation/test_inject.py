"""The injected per-call cost (torch_overhead/validation/inject): what compare-check and
gate-sensitivity add to side B is really spent, in the forward call and in the backward."""

import os
import runpy
import statistics
import subprocess
import sys
import time

import pytest
import torch

from benchmarks.callgrind import count_side_by_side

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITECUSTOMIZE = os.path.join(ROOT, "torch_overhead", "validation", "inject", "sitecustomize.py")
WORK_S = 200e-6


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def fake_compile(fn, **_):
    """A "compiled" function whose call costs WORK_S of CPU, as add1's would."""
    def compiled(a):
        spin(WORK_S)
        return fn(a)
    return compiled


def load_wrapper(monkeypatch, counting=False, **env):
    """torch.compile as the injection leaves it in asv's forkserver, or in an instruction-counting
    process (``counting``), around ``fake_compile``."""
    for key in ("TORCH_OVERHEAD_INJECT_US", "TORCH_OVERHEAD_INJECT_FRACTION", "TORCH_OVERHEAD_INJECT_ITERATIONS",
                "TORCH_OVERHEAD_LAYOUT_PAD"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if counting:
        monkeypatch.setenv("TORCH_OVERHEAD_LAYOUT_PAD", "")
    monkeypatch.setattr(sys, "argv", ["-c"] if counting else ["asv_runner", "run_server"])
    monkeypatch.setattr(torch, "compile", fake_compile)
    runpy.run_path(SITECUSTOMIZE)
    return torch.compile


def median_call(fn, a, calls=400, backward=False):
    """Median seconds per call (forward) or per ``.backward()`` of a fresh output, after the
    injection's calibration (its first 200 calls)."""
    times = []
    for _ in range(calls):
        out = fn(a).sum() if backward else None
        began = time.perf_counter()
        out.backward() if backward else fn(a)
        times.append(time.perf_counter() - began)
    return statistics.median(times[250:])


@pytest.mark.parametrize("backward", [False, True])
def test_a_fraction_adds_that_share_of_the_timed_call(monkeypatch, backward):
    """Forward variants time the call, backward variants only the backward: the fraction must
    land in what is timed. 0 installs the same wrapper and spins nothing (side A)."""
    a = torch.ones(2, requires_grad=backward)
    base = median_call(load_wrapper(monkeypatch, TORCH_OVERHEAD_INJECT_FRACTION="0")(lambda x: x + 1), a,
                       backward=backward)
    if backward:  # the backward hook is what costs here: the forward's spin is untimed preparation
        added = median_call(load_wrapper(monkeypatch, TORCH_OVERHEAD_INJECT_FRACTION="1")(lambda x: x + 1), a,
                            backward=True)
        assert added > 1.3 * base, (base, added)
        return
    added = median_call(load_wrapper(monkeypatch, TORCH_OVERHEAD_INJECT_FRACTION="0.5")(lambda x: x + 1), a)
    assert 1.3 < added / base < 1.8, (base, added)  # 0.5 of the period from one call to the next


def test_in_a_counting_process_the_spin_is_the_given_iterations_and_a_fraction_alone_spins_nothing(monkeypatch):
    """A counting process spins ``TORCH_OVERHEAD_INJECT_ITERATIONS`` loop iterations on each call from
    the first (compare-check sets them in instructions); a time fraction means nothing under callgrind."""
    a = torch.ones(2)
    base = median_call(load_wrapper(monkeypatch, counting=True, TORCH_OVERHEAD_INJECT_ITERATIONS="0")(lambda x: x + 1),
                       a, calls=300)
    slower = load_wrapper(monkeypatch, counting=True, TORCH_OVERHEAD_INJECT_ITERATIONS="100000")(lambda x: x + 1)
    times = []
    for _ in range(20):
        began = time.perf_counter()
        slower(a)
        times.append(time.perf_counter() - began)
    spin_loop = runpy.run_path(SITECUSTOMIZE)["spin_loop"]
    loops = []
    for _ in range(5):  # the fastest of five: one slow spell of this shared host once read 3x the spin
        began = time.perf_counter()
        spin_loop(100000)
        loops.append(time.perf_counter() - began)
    assert min(times) > base + 0.5 * min(loops), (base, loops, times)  # every call, the first too
    assert load_wrapper(monkeypatch, counting=True, TORCH_OVERHEAD_INJECT_FRACTION="0.5") is fake_compile


def test_the_counting_spin_costs_the_same_instructions_per_iteration_at_any_length():
    """compare-check sizes the counting spin from two counts of it: the third must lie on their line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(SITECUSTOMIZE), ROOT]))
    lengths = (100, 1100, 101100)  # a spin of tens of iterations, as compare-check's, and the two it is sized from
    got = count_side_by_side({str(n): ("sitecustomize:spin_calls", [n]) for n in lengths}, env, blocks=1, calls=1)
    short, middle, long = (got[str(n)]["calling_thread"] for n in lengths)
    per_iteration = (long - middle) / 100000
    assert per_iteration > 5, got
    assert abs((middle - short) - 1000 * per_iteration) < 10 * per_iteration, got


def test_microseconds_are_spent_as_given_and_nothing_outside_the_forkserver(monkeypatch):
    a = torch.ones(2)
    slower = load_wrapper(monkeypatch, TORCH_OVERHEAD_INJECT_US="300")(lambda x: x + 1)
    assert median_call(slower, a, calls=300) > WORK_S + 250e-6
    monkeypatch.setattr(sys, "argv", ["python", "-c"])  # a compiler check, the runner: no wrapper
    monkeypatch.setattr(torch, "compile", fake_compile)
    runpy.run_path(SITECUSTOMIZE)
    assert torch.compile is fake_compile


def test_in_a_fresh_forkserver_torch_is_imported_by_the_suite_and_compile_then_wrapped():
    """At interpreter start the folder on PYTHONPATH imports no torch (the suite's settings come
    first, benchmarks/forkserver.py); torch.compile is wrapped when torch is imported."""
    code = ("import sys\n"
            "before = 'torch' in sys.modules\n"
            "import torch\n"
            "print(before, hasattr(torch.compile, '__wrapped__'))\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(SITECUSTOMIZE), TORCH_OVERHEAD_INJECT_FRACTION="0.05")
    done = subprocess.run([sys.executable, "-c", code, "run_server"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.stdout.split() == ["False", "True"], done.stdout + done.stderr
