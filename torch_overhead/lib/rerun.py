"""Which recorded figures a new run would replace.

asv merges a run into the results file of the same build, machine and environment and
overwrites every variant it runs, without a word: a ``--quick`` run (one sample) would
silently replace a full run's median. The runner asks first (``run --replace``).
"""

import glob
import os
import re

from asv.results import Results

from .recorded import recorded_variants


def replaced(results_dir, machine, commit, env_name, patterns):
    """``(variants, full)``: the variants recorded for this build, machine and environment that
    ``patterns`` select (as ``asv run --bench``: searched in ``name(params)``; none selects all),
    and whether any of them came from a full run (more than one sample; ``--quick`` takes one).
    The results files were checked readable before (``recorded.check``)."""
    variants, full = [], False
    for path in sorted(glob.glob(os.path.join(results_dir, machine, "*.json"))):
        if os.path.basename(path) == "machine.json":
            continue
        results = Results.load(path)
        if results.commit_hash != commit or results.env_name != env_name:
            continue
        for variant, value, stat in recorded_variants(results):
            if value is None or value != value or (patterns and not any(re.search(p, variant) for p in patterns)):
                continue  # failed, skipped, or not selected: no figure to lose
            variants.append(variant)
            full = full or (stat or {}).get("repeat", 1) > 1
    return variants, full
