"""Across recorded builds: the largest build-to-build steps per variant and layer, and a picture.

``python -m torch_overhead steps --machine cpu-2core [--top 3] [--plot docs/history-cpu-2core.png]``

Reads every build of ``builds.json`` that has results on the machine, in the index's date
order, and for the instruction counts and each host-clock layer prints, per seed variant,
the largest steps from one build to the next that has a figure (the ratio, and both
figures). Instruction counts are deterministic there, so a step in them is a change in
torch; a step in time is one only if it agrees with the counts or is confirmed side by side
(``python -m torch_overhead compare``): times recorded on different days carry the host's
drift (docs/history.md).

``--against MACHINE`` reads a second machine's results too and, for the builds both recorded,
prints each instruction count's ratio (this machine / the other) and each step between those
builds as the two machines measured it: whether a history's steps are torch's or the host's.

``--between OLD NEW`` prints instead, for two recorded builds (``2.12.1`` or ``2.12.1+cu130``), a
Markdown table of every variant's instruction count at every layer: the change per call and the
ratio, which says which layer carries a step in every variant at once.

``--plot`` draws, per variant, microseconds per call of each layer (solid) and the instruction
counts of each layer that has them (dashed, same color) across the builds, from the same figures.
"""

import math
import os
import statistics
import sys

from ..lib import builds, layers
from ..lib.expected import DEFAULT_MARGINS
from ..lib.recorded import RecordedResultsError, result_by_variant, results_for_commit
from ..lib.suite import COUNTS, LAYER_COUNTS, settings
from .breakdown import collect_counts

# (label, benchmark): host-clock add1 from eager up to Inductor's C++ wrapper, the layers
# every device records
LAYERS = [(label, benchmark) for label, benchmark, layer in layers.LAYERS if layer not in layers.CUDA_ONLY]


LAYER_OF = {label: layer for label, _, layer in layers.LAYERS}


def counts_key(label):
    """The table's key for a layer's instruction counts: the headline's benchmark (COUNTS), the
    other layers' as ``LayerInstructionCount``'s with the layer, its first parameter."""
    return COUNTS if label == "Inductor" else f"{LAYER_COUNTS}('{LAYER_OF[label]}')"


def series(project_root, machine):
    """``(versions, {benchmark: {variant: [value or None per build]}})``, builds in date order."""
    index = builds.load(os.path.join(project_root, "builds.json"))
    index.sort(key=lambda b: builds.timestamp_ms(b["date"]))
    results_dir = os.path.join(project_root, "results")
    recorded = []
    for build in index:
        try:
            recorded.append((build["version"], results_for_commit(results_dir, machine, build["commit"])))
        except RecordedResultsError:
            continue  # not recorded on this machine
    if not recorded:
        raise RecordedResultsError(f"no build of {project_root}/builds.json has results on machine {machine!r}")
    table = {}
    for name in [benchmark for _, benchmark in LAYERS]:
        per_build = [result_by_variant(results, name) if name in results.get_all_result_keys() else {}
                     for _, results in recorded]
        variants = sorted({v for figures in per_build for v in figures})
        table[name] = {v: [figures.get(v) for figures in per_build] for v in variants}
    counted = [collect_counts(results) for _, results in recorded]
    for label, _ in LAYERS:  # the headline's counts too: collect_counts reads them from COUNTS
        per_build = [{v: row[label] for v, row in c.items() if label in row} for c in counted]
        variants = sorted({v for figures in per_build for v in figures})
        if variants:
            table[counts_key(label)] = {v: [figures.get(v) for figures in per_build] for v in variants}
    return [version for version, _ in recorded], table


def steps(versions, values):
    """``[(ratio, from version, to version, before, after)]`` between consecutive builds with a figure."""
    known = [(version, value) for version, value in zip(versions, values) if value is not None]
    return [(b / a, va, vb, a, b) for (va, a), (vb, b) in zip(known, known[1:]) if a > 0]


def report(versions, table, top):
    lines = [f"builds with results, oldest first ({len(versions)}): {', '.join(versions)}"]
    for label, name, scale, digits in (("instructions per call, Inductor", COUNTS, 1, 0),
                                       ("us per call, Inductor", settings.HEADLINE, 1e6, 1)):
        if table.get(name):
            lines += ["", f"## {label} ({name}), by build",
                      f"{'variant':<38} " + " ".join(f"{v.split('+')[0]:>9}" for v in versions)]
            lines += [f"{settings.flags_name(variant):<38} " + " ".join(
                f"{v * scale:>9,.{digits}f}" if v is not None else f"{'-':>9}" for v in values)
                for variant, values in table[name].items()]
    for label, name, unit, scale in [(f"instructions per call, {label}", counts_key(label), "", 1) for label, _ in LAYERS] + [
            (f"us per call, {label}", name, " us", 1e6) for label, name in LAYERS]:
        if not table.get(name):
            continue
        lines += ["", f"## {label} ({name}): the {top} largest steps per variant"]
        for variant, values in table[name].items():
            found = sorted(steps(versions, values), key=lambda s: -abs(math.log(s[0])))[:top]
            described = "; ".join(f"{va} -> {vb} x{r:.3f} ({a * scale:,.{0 if not unit else 1}f} -> "
                                  f"{b * scale:,.{0 if not unit else 1}f}{unit})" for r, va, vb, a, b in found)
            lines.append(f"{settings.flags_name(variant):<38} {described or 'fewer than two builds with a figure'}")
    return lines


def build_position(versions, name):
    """Position of build ``name`` (a full version, or one without its local part) in ``versions``."""
    found = [i for i, version in enumerate(versions) if name in (version, version.split("+")[0])]
    if len(found) != 1:
        raise RecordedResultsError(f"--between {name}: {'no' if not found else 'more than one'} build of that version "
                                   f"has results on this machine; recorded: {', '.join(versions)}")
    return found[0]


def between(versions, table, old, new):
    """Markdown lines: per variant and layer, the instruction count's change per call from build
    ``old`` to build ``new``, and its ratio."""
    a, b = build_position(versions, old), build_position(versions, new)
    labels = [label for label, _ in LAYERS if table.get(counts_key(label))]
    variants = sorted({v for label in labels for v in table[counts_key(label)]})
    lines = [f"instructions per call, {versions[a]} -> {versions[b]}: the change per call (the ratio)", "",
             "| variant | " + " | ".join(labels) + " |", "| --- |" + " --- |" * len(labels)]
    for variant in variants:
        cells = []
        for label in labels:
            values = table[counts_key(label)].get(variant)
            before, after = (values[a], values[b]) if values else (None, None)
            cells.append(f"{after - before:+,.0f} (x{after / before:.3f})" if before and after else "-")
        lines.append(f"| {settings.flags_name(variant)} | " + " | ".join(cells) + " |")
    return lines


def against(mine, theirs, machine, other):
    """Lines comparing two machines' instruction counts over the builds both recorded: per count
    table, each figure's ratio (``machine`` / ``other``), then each step between consecutive
    shared builds on both, and a summary against the gate's margin for counts."""
    (versions, table), (other_versions, other_table) = mine, theirs
    shared = [v for v in versions if v in other_versions]
    margin = DEFAULT_MARGINS["instruction_count"]
    lines = [f"builds recorded on both {machine} and {other} ({len(shared)}): {', '.join(shared)}"]
    if not shared:
        return lines
    short = [v.split("+")[0] for v in shared]
    ratios, step_gaps = [], []
    for label, _ in LAYERS:
        key = counts_key(label)
        if not table.get(key) or not other_table.get(key):
            continue
        rows, step_rows = [], []
        for variant, values in table[key].items():
            if variant not in other_table[key]:
                continue
            a = dict(zip(versions, values))
            b = dict(zip(other_versions, other_table[key][variant]))
            pairs = [(a[v], b[v]) if a[v] is not None and b[v] is not None else None for v in shared]
            row = [pair[0] / pair[1] if pair else None for pair in pairs]
            ratios += [r for r in row if r is not None]
            rows.append(f"{settings.flags_name(variant):<38} " + " ".join(
                f"{r:>9.4f}" if r is not None else f"{'-':>9}" for r in row))
            known = [(v, pair) for v, pair in zip(short, pairs) if pair]
            cells = []
            for (va, (a0, b0)), (vb, (a1, b1)) in zip(known, known[1:]):
                cells.append(f"{va}->{vb} x{a1 / a0:.3f}|x{b1 / b0:.3f}")
                step_gaps.append(abs((a1 / a0) / (b1 / b0) - 1))
            if cells:
                step_rows.append(f"{settings.flags_name(variant):<38} " + "  ".join(cells))
        if rows:
            lines += ["", f"## instructions per call, {label}: {machine} / {other}",
                      f"{'variant':<38} " + " ".join(f"{v:>9}" for v in short), *rows]
        if step_rows:
            lines += ["", f"## instructions per call, {label}: steps between the shared builds, "
                          f"{machine} | {other}", *step_rows]
    if ratios:
        gaps = [abs(r - 1) for r in ratios]
        lines += ["", f"{len(ratios)} figures: median |1 - ratio| {100 * statistics.median(gaps):.2f}%, largest "
                      f"{100 * max(gaps):.2f}%, {sum(g <= margin for g in gaps)} within the gate's "
                      f"{100 * margin:g}% margin for counts"]
    if step_gaps:
        lines.append(f"{len(step_gaps)} steps: the two machines' step ratios differ by median "
                     f"{100 * statistics.median(step_gaps):.2f}%, largest {100 * max(step_gaps):.2f}%")
    return lines


def plot(versions, table, path):
    """Per variant: each layer's microseconds per call (left axis) and instructions per call
    (right axis, dashed, the layer's color) across the builds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = sorted({v for name in table for v in table[name]})
    variants = [v for v in variants if v in table.get(settings.HEADLINE, {})] or variants
    cols = 5
    rows = math.ceil(len(variants) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False, sharex=True)
    x = range(len(versions))
    for ax, variant in zip(axes.flat, variants):
        for color, (label, name) in enumerate(LAYERS):  # one color per layer in every panel
            values = table.get(name, {}).get(variant)
            if values and any(v is not None for v in values):
                ax.plot(x, [v * 1e6 if v is not None else math.nan for v in values], marker="o", ms=3,
                        color=f"C{color}", label=label)
        ax.set_title(settings.flags_name(variant), fontsize=9)
        ax.set_ylim(bottom=0)
        counted = [(color, label, table.get(counts_key(label), {}).get(variant)) for color, (label, _) in enumerate(LAYERS)]
        counted = [(color, label, [v / 1e3 if v is not None else math.nan for v in values])
                   for color, label, values in counted if values and any(v is not None for v in values)]
        if counted:
            twin = ax.twinx()
            for color, label, thousands in counted:
                twin.plot(x, thousands, "--", color=f"C{color}", marker="x", ms=4,
                          label=f"{label}, thousand instructions")
            twin.set_ylim(0, 1.1 * max(v for _, _, values in counted for v in values if v == v))
            twin.tick_params(labelsize=7)
        ax.set_xticks(list(x), versions, rotation=90, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    axes[0][0].set_ylabel("us per call")
    handles = axes[0][0].get_legend_handles_labels()
    extra = [ax for ax in fig.axes if ax not in axes.flat]
    if extra:
        more = extra[0].get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    fig.legend(*handles, loc="upper center", ncol=min(len(handles[1]), len(LAYERS)), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(args):
    try:
        versions, table = series(args.project_root, args.machine)
        lines = between(versions, table, *args.between) if args.between else report(versions, table, args.top)
        if args.against:
            other = series(args.project_root, args.against)
            lines += ["", *against((versions, table), other, args.machine, args.against)]
    except (RecordedResultsError, builds.BuildIndexError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    if args.plot:
        plot(versions, table, args.plot)
        print(f"\npicture: {args.plot}")
    return 0
