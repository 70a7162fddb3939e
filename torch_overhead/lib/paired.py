"""The statistics of a paired comparison: per-process estimates, per-round ratios, an interval, a verdict.

Each round times both sides once per variant, in fresh processes back to back; the ratio
B/A of the two processes' estimates is one paired observation, and what the machine
does over minutes (a slow spell, a drift) cancels out of it. Over the rounds, the
interval is the exact distribution-free one of the Wilcoxon signed-rank test on the
log-ratios, around their Hodges-Lehmann estimate (the median of the Walsh averages):
with A and B in a random order each round, an A/A log-ratio is symmetric about 0 by
construction, which is all the interval assumes, and it keeps about 95% of a t-interval's
efficiency while one round in a slow spell moves it little. Written here because the
standard library has no signed-rank test and scipy is not a dependency (nor on the H200).
"""

import math
import re
import statistics

CONFIDENCE = 0.95  # two-sided coverage of every interval
BAND = 0.02  # compare's default: a ratio within 1 +- 2% is "same"
ESTIMATORS = {
    # A process's samples -> one number. Which one represents the call is decided by
    # measurement (docs/paired-comparison.md); the state keeps every sample, so each can be redone.
    "median": statistics.median,  # what asv records
    "min": min,  # Chen & Revels: noise only adds time
    "q25": lambda samples: statistics.quantiles(samples, n=4, method="inclusive")[0] if len(samples) > 1 else samples[0],
}
VERDICTS = ("slower", "faster", "same", "unknown")


def read_report(path):
    """``{variant: (A us or None, B/A or None, verdict)}`` from the table of compare's Markdown
    report (``commands/compare.py`` ``write_report``), for the tools that run compare in a
    subprocess. The verdict cell is whole: "unknown: side B failed ...", "n/a: ..."."""
    number = lambda text: float(text) if re.fullmatch(r"[0-9.]+", text) else None  # noqa: E731
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("| `"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                rows[cells[0].strip("`")] = (number(cells[2]), number(cells[4]), cells[6])
    return rows


def estimate(samples, estimator="median"):
    return ESTIMATORS[estimator](samples)


def _signed_rank_counts(n):
    """How many of the 2**n sign patterns give each signed-rank sum 0..n(n+1)/2 (exact null)."""
    counts = [1]
    for rank in range(1, n + 1):
        grown = counts + [0] * rank
        for total, ways in enumerate(counts):
            grown[total + rank] += ways
        counts = grown
    return counts


def interval(log_ratios, confidence=CONFIDENCE):
    """``(estimate, low, high)`` of the centre of ``log_ratios``: the Hodges-Lehmann estimate and
    the signed-rank interval of at least ``confidence``; low and high are None while there are too
    few rounds for any interval that narrow in probability (fewer than 6 at 95%)."""
    n = len(log_ratios)
    if n == 0:
        return None, None, None
    walsh = sorted((log_ratios[i] + log_ratios[j]) / 2 for i in range(n) for j in range(i, n))
    centre = statistics.median(walsh)
    counts, tail, total = _signed_rank_counts(n), 0, 2 ** n
    depth = 0  # how many Walsh averages each end of the interval leaves out
    for ways in counts:
        if (tail + ways) / total > (1 - confidence) / 2:
            break
        tail += ways
        depth += 1
    if depth == 0:
        return centre, None, None
    return centre, walsh[depth - 1], walsh[len(walsh) - depth]


def verdict(low, high, band):
    """slower / faster: the ratio's interval lies wholly beyond ``1 +- band``; same: wholly within it;
    unknown otherwise (more rounds narrow it), or while there is no interval yet."""
    if low is None:
        return "unknown"
    if low > 1 + band:
        return "slower"
    if high < 1 - band:
        return "faster"
    if low >= 1 - band and high <= 1 + band:
        return "same"
    return "unknown"


def wave_of(entry):
    """Which wave a compare round ran in: the rounds of one wave start together."""
    return entry["started"]


def import_of(entry):
    """Which pair of imports a compare round forked from: its wave (``started``) and, where a wave
    gave its rounds imports of their own (since 2026-12-07), its ``import``. The rounds of one
    import land together (docs/paired-comparison.md, "Rounds of one import"): they are one draw."""
    return wave_of(entry), entry.get("import", 0)


def summarize(pairs, band, estimator="median", confidence=CONFIDENCE, imports=None):
    """One variant's figures from its rounds, each ``(samples of A's process, samples of B's)``:
    ``{"rounds", "imports", "ratio", "low", "high", "verdict", "a", "b"}`` (ratio B/A and its interval;
    a and b: the median over rounds of each side's per-process estimate, in the samples' unit).
    ``imports``: each round's ``import_of``. Rounds forked from one import of each side share its
    offset, so their mean log(B/A) is one draw of the interval, not each round; without
    ``imports`` every round is a draw of its own."""
    a = [estimate(sa, estimator) for sa, _ in pairs]
    b = [estimate(sb, estimator) for _, sb in pairs]
    logs = [math.log(y / x) for x, y in zip(a, b)]
    grouped = {}
    for key, log in zip(imports if imports is not None else range(len(logs)), logs):
        grouped.setdefault(key, []).append(log)
    centre, low, high = interval([statistics.fmean(got) for got in grouped.values()], confidence)
    back = lambda v: None if v is None else math.exp(v)  # noqa: E731
    return {"rounds": len(pairs), "imports": len(grouped), "ratio": back(centre), "low": back(low), "high": back(high),
            "verdict": verdict(back(low), back(high), band),
            "a": statistics.median(a) if a else None, "b": statistics.median(b) if b else None}


def spread(pairs, estimator="median"):
    """Standard deviation of the per-round log(B/A): how far one round's pair can land from another's."""
    logs = [math.log(estimate(b, estimator) / estimate(a, estimator)) for a, b in pairs]
    return statistics.stdev(logs) if len(logs) > 1 else None


def rounds_needed(sd, band):
    """About how many rounds bring the interval's half-width down to ``band`` at spread ``sd``:
    the signed-rank interval is about 2.0 sd / sqrt(n) each side (1.96 sd / sqrt(n) for a
    t-interval, over its 95% efficiency)."""
    return math.ceil((2.0 * sd / math.log(1 + band)) ** 2)


def spreads(pairs_by_variant):
    """``{estimator: (median, max)}`` of the per-variant spreads, variants with 2+ rounds."""
    out = {}
    for name in ESTIMATORS:
        values = [s for s in (spread(p, name) for p in pairs_by_variant.values() if len(p) > 1) if s is not None]
        if values:
            out[name] = (statistics.median(values), max(values))
    return out


def _named_logs(entry):
    """A round's ``{variant: log(B/A)}`` of its variants measured on both sides."""
    return {name: math.log(estimate(v["B"]["samples"]) / estimate(v["A"]["samples"]))
            for name, v in entry["variants"].items() if "samples" in v["A"] and "samples" in v["B"]}


def _logs(entry):
    """A round's log(B/A) of its variants measured on both sides."""
    return list(_named_logs(entry).values())


def _round_logs(state):
    """Each round's log(B/A) of its variants measured on both sides, for the rounds with 2 or more."""
    return [got for got in map(_logs, state["rounds"]) if len(got) > 1]


def _import_means(state, first=None):
    """Each import's mean log(B/A) over the variants of its rounds, for those with 2 or more (only
    the waves whose servers started side ``first`` first, if given): the rounds of one import
    (``import_of``) lean together, so an import is the unit that varies independently, not a round."""
    means = {}
    for entry in state["rounds"]:
        if first is None or entry.get("first") == first:
            means.setdefault(import_of(entry), []).extend(_logs(entry))
    return [statistics.fmean(got) for got in means.values() if len(got) > 1]


def _mean_se(means):
    return (statistics.fmean(means), statistics.stdev(means) / math.sqrt(len(means))) if len(means) > 2 else None


def shared_by_round(state):
    """How much of the rounds' spread every variant of a round shares: ``(sd of the round's mean
    log(B/A) over its variants, what that sd would be were the variants independent)``, or None
    under 2 rounds of 2+ variants. A round's lanes fork from one import per side and share what it
    set up (its memory layout, its hash seed); where that moves them, the verdicts of all variants
    err together, not one by one."""
    rounds = _round_logs(state)
    if len(rounds) < 2:
        return None
    logs = [x for got in rounds for x in got]
    return (statistics.stdev(statistics.fmean(got) for got in rounds),
            statistics.pstdev(logs) / math.sqrt(statistics.fmean(len(got) for got in rounds)))


def shared_within(state, key, apart=None):
    """``(covariance of log(B/A) between two rounds of one variant, between rounds of two variants)``
    over the pairs of rounds that share ``key(entry)`` (a wave's ``started``, or ``import_of``) and,
    if given, differ in ``apart(entry)``, each variant's mean removed; None where no two rounds do.
    Near 0: they vary independently."""
    logs, groups = {}, {}
    for entry in state["rounds"]:
        for name, log in _named_logs(entry).items():
            logs.setdefault(name, []).append(log)
            groups.setdefault(key(entry), []).append((name, log, apart(entry) if apart else None))
    mean = {name: statistics.fmean(got) for name, got in logs.items()}
    same, other = [], []
    for got in groups.values():
        for i, (n1, x1, a1) in enumerate(got):
            for n2, x2, a2 in got[i + 1:]:
                if apart is None or a1 != a2:
                    (same if n1 == n2 else other).append((x1 - mean[n1]) * (x2 - mean[n2]))
    if not same and not other:
        return None
    return tuple(statistics.fmean(got) if got else None for got in (same, other))


def decided_after(state, band=BAND, by_import=True):
    """Replaying a state's waves in order: ``(seconds of rounds until the last verdict, how many
    variants got one, how many were timed on both sides)``, each variant's verdict taken at the first
    wave that gave it one (compare stops running a decided variant), its interval over imports or
    each round a draw."""
    waves = {}
    for entry in state["rounds"]:
        waves.setdefault(wave_of(entry), []).append(entry)
    names = {name for entry in state["rounds"] for name in _named_logs(entry)}
    decided, seconds, last, so_far = set(), 0.0, 0.0, []
    for got in waves.values():
        so_far += got
        seconds += sum(entry["seconds"] for entry in got)
        for name, (pairs, imports) in pairs_of_state({"rounds": so_far}, imports=True).items():
            if name not in decided and summarize(pairs, band, imports=imports if by_import else None)["verdict"] != "unknown":
                decided.add(name)
                last = seconds
        if decided == names:
            break
    return last, len(decided), len(names)


def excluding_one(state):
    """``(how many variants' intervals over imports leave out 1, how many have an interval)``. In
    an A/A comparison each of its 95% intervals should leave out 1 about one time in 20; far more
    often, and the interval is narrower than the noise it claims to cover."""
    got = [summarize(pairs, BAND, imports=keys) for pairs, keys in pairs_of_state(state, imports=True).values()]
    got = [s for s in got if s["low"] is not None]
    return sum(not s["low"] <= 1 <= s["high"] for s in got), len(got)


def lean(state):
    """How far the comparison as a whole leans: ``(the mean over its imports of an import's mean
    log(B/A), that mean's standard error from the imports' spread)``, or None under 3 imports of 2+
    variant-pairs. Each variant's interval takes its imports as independent draws; in an A/A
    comparison a lean many standard errors from 0 is a difference between the sides that lasted
    longer than an import, which no interval built from its imports covers."""
    return _mean_se(_import_means(state))


def lean_by_first(state):
    """``{side: lean}`` over the waves whose servers started that side first (the state's ``first``,
    drawn each wave since 2026-12-07), or None where it is not recorded or a side has under 3 such
    imports. If going first moved a side, the two leans differ by more than their standard errors."""
    split = {side: _mean_se(_import_means(state, side)) for side in "AB"}
    return split if all(split.values()) else None


def halves(state):
    """``(lean of the first half of the imports, lean of the second half)``, or None under 8: a
    difference between the sides that lasts the whole comparison leans both halves alike, one that
    lasts minutes need not."""
    means = _import_means(state)
    if len(means) < 8:
        return None
    return _mean_se(means[:len(means) // 2]), _mean_se(means[len(means) // 2:])


def halves_line(pairs):
    """Over A/A states' ``halves``: how alike each comparison's two halves leaned (0 expected for each)."""
    first, second = [m for (m, _), _ in pairs], [m for _, (m, _) in pairs]
    product = statistics.fmean(x * y for x, y in zip(first, second))
    scale = math.sqrt(statistics.fmean(x * x for x in first) * statistics.fmean(y * y for y in second))
    return (f"mean product of their halves' leans {product:+.6f}, correlation {product / scale if scale else 0:+.2f} "
            f"(near 1: a lean lasting the whole comparison; near 0: leans of minutes)")


def first_effect(splits):
    """Over states' ``lean_by_first``: ``(lean with A first - lean with B first, its standard error)``,
    weighted by each state's own standard error; the side started second reads slower where it is
    positive. The difference cancels what differs between the builds, so A/B states count too."""
    diffs = [(a - b, math.hypot(se_a, se_b)) for (a, se_a), (b, se_b) in ((s["A"], s["B"]) for s in splits)]
    weights = [1 / se ** 2 for _, se in diffs]
    return sum(d * w for (d, _), w in zip(diffs, weights)) / sum(weights), 1 / math.sqrt(sum(weights))


def between_comparisons(leans):
    """From A/A comparisons' ``lean`` figures: ``(sd of their leans, the part of it that their
    imports' own spread does not explain)``: what changes from one comparison to the next, or over
    minutes of it, sqrt(var(leans) - mean(se^2)), 0 where the imports explain it all."""
    spread = statistics.pstdev(m for m, _ in leans)
    return spread, math.sqrt(max(0.0, spread ** 2 - statistics.fmean(se ** 2 for _, se in leans)))


def lean_line(whole):
    """A ``lean`` as printed: the mean log(B/A), its B/A, and how many standard errors from 0."""
    mean, se = whole
    return (f"{mean:+.4f} (B/A {math.exp(mean):.4f}), "
            f"{abs(mean) / se if se else math.inf:.1f} standard errors ({se:.4f}) from 0")


def between_line(leans):
    """``between_comparisons`` as printed, with the leans' mean (0 expected over A/A states)."""
    spread, unexplained = between_comparisons(leans)
    return (f"mean of their leans {statistics.fmean(m for m, _ in leans):+.4f}, sd {spread:.4f}, of which their "
            f"imports leave unexplained {unexplained:.4f} (a lean that lasts longer than an import, where they are A/A)")


def pairs_of_state(state, imports=False):
    """``{variant: [(samples of A, samples of B)]}`` from a compare state file's rounds; with
    ``imports``, ``{variant: ([pairs], [each pair's import_of])}``, as ``summarize`` takes them."""
    out = {}
    for entry in state["rounds"]:
        for name, got in entry["variants"].items():
            if "samples" in got["A"] and "samples" in got["B"]:
                pairs, keys = out.setdefault(name, ([], []))
                pairs.append((got["A"]["samples"], got["B"]["samples"]))
                keys.append(import_of(entry))
    return out if imports else {name: pairs for name, (pairs, _) in out.items()}


if __name__ == "__main__":
    # python -m torch_overhead.lib.paired STATE.json[.gz] ...: each estimator's spread over the state's
    # processes (states committed under docs/measurements are gzipped: 200 samples a process).
    import gzip
    import json
    import sys

    leans, both, splits, coverage = [], [], [], [0, 0]
    for path in sys.argv[1:]:
        with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
            state = json.load(f)
        rounds = state["rounds"]
        print(f"{path}: {len(rounds)} rounds, " + ", ".join(f"{r['seconds']:.1f}" for r in rounds) + " s")
        pairs = pairs_of_state(state)
        for name, got in pairs.items():
            # back to back: which side ran first; simultaneous (no order): "=", both at once
            orders = [e["variants"][name].get("order", "=") for e in rounds
                      if all("samples" in e["variants"].get(name, {}).get(side, {}) for side in "AB")]
            print(f"  {name}: B/A per round (first side, = at once) "
                  + " ".join(f"{estimate(b) / estimate(a):.3f}({o[0]})" for (a, b), o in zip(got, orders)))
        for name, (median, worst) in spreads(pairs).items():
            print(f"  {name:6s} sd of the per-round log(B/A): median over variants {median:.3f}, max {worst:.3f}")
        within = [statistics.stdev(s) / statistics.median(s) for p in pairs.values() for pair in p for s in pair
                  if len(s) > 1]
        print(f"  within one process: sd / median of its samples, median over processes {statistics.median(within):.3f}")
        shared = shared_by_round(state)
        if shared:
            print(f"  shared by a round's variants: sd of the round's mean log(B/A) {shared[0]:.4f}, "
                  f"{shared[1]:.4f} were they independent")
        for what, key, apart in (("wave", wave_of, None), ("wave from different imports", wave_of, import_of),
                                 ("import", import_of, None)):
            cov = shared_within(state, key, apart)
            if cov:
                print(f"  rounds of one {what}: covariance of log(B/A), one variant "
                      + ", two variants ".join("-" if c is None else f"{c:.6f}" for c in cov))
        for how, as_imports in (("over imports", True), ("each round a draw of its own", False)):
            took, got, of = decided_after(state, BAND, as_imports)
            print(f"  replayed wave by wave, interval {how}: {got} of {of} variants decided after {took:.0f} s of rounds "
                  f"(of {sum(r['seconds'] for r in rounds):.0f})")
        by_import = pairs_of_state(state, imports=True)
        for how, as_imports in (("over imports", True), ("each round a draw of its own (before 2026-12-07)", False)):
            got = [summarize(p, BAND, imports=w if as_imports else None)["verdict"] for p, w in by_import.values()]
            print(f"  verdicts at band {BAND}, interval {how}: "
                  + ", ".join(f"{got.count(v)} {v}" for v in VERDICTS if got.count(v)))
        left_out = excluding_one(state)
        coverage = [a + b for a, b in zip(coverage, left_out)]
        print(f"  intervals over imports leaving out 1: {left_out[0]} of {left_out[1]} variants")
        whole = lean(state)
        if whole:
            leans.append(whole)
            print(f"  the whole comparison: mean of the imports' mean log(B/A) {lean_line(whole)}")
        parts = halves(state)
        if parts:
            both.append(parts)
            print(f"  its halves: first {lean_line(parts[0])}; second {lean_line(parts[1])}")
        split = lean_by_first(state)
        if split:
            splits.append(split)
            (a, se_a), (b, se_b) = split["A"], split["B"]
            print(f"  by the side whose servers started first: A {lean_line(split['A'])}; B {lean_line(split['B'])}; "
                  f"apart by {abs(a - b) / math.hypot(se_a, se_b):.1f} standard errors")
    if len(leans) > 2:  # meaningful for A/A states only: there every lean's expected value is 0
        print(f"over {len(leans)} states: {between_line(leans)}")
    if len(sys.argv) > 2:  # the same: in A/A states, about 1 in 20 of 95% intervals
        print(f"over {len(sys.argv) - 1} states: intervals over imports leaving out 1, {coverage[0]} of {coverage[1]} "
              f"variant-comparisons ({100 * coverage[0] / max(coverage[1], 1):.1f}%; A/A: about 5% expected)")
    if len(splits) > 1:
        effect, se = first_effect(splits)
        print(f"over the {len(splits)} states with the first side drawn: lean with A first - lean with B first "
              f"{effect:+.4f}, {abs(effect) / se:.1f} standard errors ({se:.4f}) from 0")
    if len(both) > 2:
        print(f"over the {len(both)} states of 8+ imports: {halves_line(both)}")
