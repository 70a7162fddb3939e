"""Where the suite lives, and its torch-free constants (``benchmarks/settings.py``).

The benchmarks run in the benchmarked interpreter, which need not have this package, so
the constants they share with the runner live beside them. ``benchmarks`` is not an
installed package (asv imports it from the project's benchmark_dir), so the runner loads
that one file by path.
"""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARK_DIR = os.path.join(ROOT, "benchmarks")


def _load_settings():
    spec = importlib.util.spec_from_file_location("torch_overhead_suite_settings",
                                                  os.path.join(BENCHMARK_DIR, "settings.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


settings = _load_settings()

# The instruction counts' benchmarks as asv names them (benchmarks/instruction_count.py), for the
# commands that read them back.
COUNTS = "instruction_count.InstructionCount.track_instructions"
LAYER_COUNTS = "instruction_count.LayerInstructionCount.track_instructions"
