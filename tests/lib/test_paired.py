"""The statistics of compare: the signed-rank interval, the verdicts, and their error rates on simulated rounds."""

import math
import random
import statistics

from torch_overhead.lib import paired


def test_signed_rank_interval_matches_the_published_table():
    """n=10 at 95%: the critical value is 8 (P(T <= 8) = 25/1024), so the interval leaves out the
    9 smallest and 9 largest of the 55 Walsh averages; n=6 is the first n with any interval."""
    values = [0.3, -0.1, 0.5, 0.2, 0.9, -0.4, 0.1, 0.7, 0.0, 0.25]
    walsh = sorted((values[i] + values[j]) / 2 for i in range(10) for j in range(i, 10))
    centre, low, high = paired.interval(values)
    assert (low, high) == (walsh[8], walsh[46])
    assert centre == (walsh[27])
    assert paired.interval(values[:5])[1:] == (None, None)
    assert paired.interval(values[:6])[1:] == (min(values[:6]), max(values[:6]))


def test_null_distribution_counts_every_sign_pattern():
    counts = paired._signed_rank_counts(7)
    assert sum(counts) == 2 ** 7 and len(counts) == 7 * 8 // 2 + 1
    assert counts[:4] == [1, 1, 1, 2]  # sums 0, 1, 2, 3 (3 = {3} or {1, 2})


def test_verdicts_by_band():
    assert paired.verdict(1.03, 1.2, 0.02) == "slower"
    assert paired.verdict(0.8, 0.97, 0.02) == "faster"
    assert paired.verdict(0.99, 1.015, 0.02) == "same"
    assert paired.verdict(1.0, 1.05, 0.02) == "unknown"  # could be 0 or 5%: more rounds
    assert paired.verdict(None, None, 0.02) == "unknown"


def test_estimators():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert paired.estimate(samples, "median") == 3.0
    assert paired.estimate(samples, "min") == 1.0
    assert paired.estimate(samples, "q25") == 2.0


def _rounds(rng, n, shift, spread=0.08, slow_spell=0.3):
    """Simulated rounds: each process log-normal around its side's figure, one in five in a
    slow spell (the whole process slower), as the H200's processes are."""
    def process(centre):
        level = centre * math.exp(rng.gauss(0, spread)) * (1 + slow_spell * (rng.random() < 0.2))
        return [level * math.exp(rng.gauss(0, 0.01)) for _ in range(10)]
    return [(process(40e-6), process(40e-6 * shift)) for _ in range(n)]


def test_simulated_a_a_comparisons_rarely_claim_a_change():
    """Same figure on both sides: slower or faster in at most 5% of 400 comparisons of 6-16 rounds."""
    rng = random.Random(1)
    wrong = sum(paired.summarize(_rounds(rng, rng.randint(6, 16), 1.0), 0.02)["verdict"] in ("slower", "faster")
                for _ in range(400))
    assert wrong <= 20


def test_rounds_of_one_import_count_once_in_the_interval():
    """Eight imports of five rounds each, each import's rounds sharing an offset (sd 0.03; 0.01 their
    own): taken as 40 independent rounds the 95% interval misses the true ratio 1 in about two of
    five comparisons; as eight draws, one an import, in about one of twenty."""
    rng = random.Random(7)
    missed = {"rounds": 0, "imports": 0}
    for _ in range(200):
        offsets = [rng.gauss(0, 0.03) for _ in range(8)]
        pairs = [([1.0], [math.exp(x + rng.gauss(0, 0.01))]) for x in offsets for _ in range(5)]
        for how, imports in (("rounds", None), ("imports", [w for w in range(8) for _ in range(5)])):
            s = paired.summarize(pairs, 0.02, imports=imports)
            missed[how] += not s["low"] <= 1 <= s["high"]
            assert s["rounds"] == 40 and s["imports"] == (8 if imports else 40)
    assert missed["rounds"] > 60 and missed["imports"] <= 20, missed


def test_simulated_large_change_is_slower_and_ratio_is_near_it():
    rng = random.Random(2)
    summary = paired.summarize(_rounds(rng, 12, 1.5), 0.02)
    assert summary["verdict"] == "slower"
    assert 1.3 < summary["ratio"] < 1.7 and summary["low"] <= summary["ratio"] <= summary["high"]


def test_spread_and_the_rounds_it_costs():
    """The spread is the sd of the per-round log-ratios; the rounds a band needs grow as its square."""
    state = {"rounds": [
        {"variants": {"v": {"A": {"samples": [1.0]}, "B": {"samples": [b]}},
                      "broken": {"A": {"samples": [1.0]}, "B": {"error": "RuntimeError"}}}, "started": wave,
         **({"import": i} if i is not None else {})}
        for b, wave, i in ((1.1, "w1", None), (0.9, "w1", None), (1.0, "w2", 0), (1.0, "w2", 1))]}
    pairs = paired.pairs_of_state(state)
    assert list(pairs) == ["v"] and len(pairs["v"]) == 4
    # a wave recorded before its rounds had imports of their own (no "import"): one import
    assert paired.pairs_of_state(state, imports=True) == {"v": (pairs["v"], [("w1", 0), ("w1", 0), ("w2", 0), ("w2", 1)])}
    expected = statistics.stdev([math.log(1.1), math.log(0.9), 0.0, 0.0])
    assert math.isclose(paired.spread(pairs["v"]), expected)
    assert paired.spreads(pairs)["median"] == (paired.spread(pairs["v"]), paired.spread(pairs["v"]))
    assert paired.rounds_needed(0.2, 0.02) == math.ceil((0.4 / math.log(1.02)) ** 2) > 400
    assert paired.rounds_needed(0.02, 0.02) <= 5


def _state(offsets, waves=None, firsts=None):
    """A compare state whose rounds hold one pair a variant, B = A * exp(offset); each round a wave of
    its own unless ``waves`` gives each round's wave, and ``firsts`` the side each started first."""
    return {"rounds": [{"variants": {f"v{k}": {"A": {"samples": [1.0]}, "B": {"samples": [math.exp(x)]}}
                                     for k, x in enumerate(row)},
                        "started": str(waves[i] if waves else i),
                        **({"first": firsts[i]} if firsts else {})} for i, row in enumerate(offsets)]}


def test_shared_by_round_tells_variants_that_move_together_from_independent_ones():
    rng = random.Random(3)
    together = [[x] * 8 for x in (rng.gauss(0, 0.03) for _ in range(30))]  # one offset per round
    apart = [[rng.gauss(0, 0.03) for _ in range(8)] for _ in range(30)]
    shared, independent = paired.shared_by_round(_state(together))
    assert shared > 2 * independent  # sd of round means = the pairs' sd, not sd / sqrt(8)
    shared, independent = paired.shared_by_round(_state(apart))
    assert 0.5 * independent < shared < 1.5 * independent
    assert paired.shared_by_round(_state([[0.01, 0.02]])) is None  # one round: nothing to compare


def _comparison(rng, offset, rounds=40, variants=8, sd=0.03):
    """Rounds of independent pairs around a difference between the sides that lasts the comparison."""
    return _state([[offset + rng.gauss(0, sd) for _ in range(variants)] for _ in range(rounds)])


def test_lean_tells_a_lasting_difference_between_the_sides_from_round_to_round_noise():
    rng = random.Random(4)
    mean, se = paired.lean(_comparison(rng, 0.02))
    assert abs(mean - 0.02) < 3 * se and mean / se > 4  # 0.03 / sqrt(8 * 40) = 0.0017 a standard error
    mean, se = paired.lean(_comparison(rng, 0.0))
    assert abs(mean) < 3 * se
    assert paired.lean(_state([[0.01, 0.02], [0.0, 0.01]])) is None  # two rounds: no standard error worth the name


def test_lean_takes_the_rounds_of_one_import_as_one_draw():
    """Rounds forked from one import lean together: the lean's standard error comes from the
    imports' spread, as many draws as imports, not rounds."""
    offsets = [0.03, -0.01, 0.01]  # three waves of four rounds, each round its wave's offset
    state = _state([[x, x] for x in offsets for _ in range(4)], waves=[w for w in range(3) for _ in range(4)])
    mean, se = paired.lean(state)
    assert math.isclose(mean, 0.01, abs_tol=1e-9)
    assert math.isclose(se, statistics.stdev(offsets) / math.sqrt(3))  # twice what 12 rounds would claim


def test_lean_by_first_splits_the_waves_by_the_side_started_first():
    rng = random.Random(6)
    firsts = [rng.choice("AB") for _ in range(40)]
    moved = _state([[(0.02 if f == "A" else -0.02) + rng.gauss(0, 0.03) for _ in range(8)] for f in firsts],
                   firsts=firsts)
    split = paired.lean_by_first(moved)
    (a, se_a), (b, se_b) = split["A"], split["B"]
    assert abs(a - 0.02) < 3 * se_a and abs(b + 0.02) < 3 * se_b and (a - b) / math.hypot(se_a, se_b) > 4
    assert paired.lean_by_first(_state([[0.0, 0.01]] * 40)) is None  # not recorded (before 2026-12-07)
    assert paired.lean_by_first(_state([[0.0, 0.01]] * 5, firsts="AABBB")) is None  # two waves of A: too few


def test_halves_tell_a_lean_of_minutes_from_one_lasting_the_comparison():
    rng = random.Random(8)
    turning = _state([[(0.02 if i < 20 else -0.02) + rng.gauss(0, 0.01) for _ in range(4)] for i in range(40)])
    (first, se1), (second, se2) = paired.halves(turning)
    assert abs(first - 0.02) < 3 * se1 and abs(second + 0.02) < 3 * se2 and abs(paired.lean(turning)[0]) < 0.005
    lasting = [paired.halves(_comparison(rng, x)) for x in (0.02, -0.02, 0.01, -0.01)]
    correlation = float(paired.halves_line(lasting).split("correlation ")[1].split()[0])
    assert correlation > 0.8  # both halves of each lean its way
    assert paired.halves(_state([[0.0, 0.01]] * 7)) is None  # under 8 waves


def test_first_effect_weighs_each_comparison_by_its_standard_error():
    splits = [{"A": (0.01, 0.003), "B": (-0.01, 0.004)}, {"A": (0.0, 0.03), "B": (0.0, 0.04)}]
    effect, se = paired.first_effect(splits)
    assert math.isclose(se, 1 / math.sqrt(1 / 0.005 ** 2 + 1 / 0.05 ** 2))
    assert math.isclose(effect, 0.02 * (1 / 0.005 ** 2) / (1 / 0.005 ** 2 + 1 / 0.05 ** 2))  # the noisy one counts little


def test_between_comparisons_finds_what_the_rounds_do_not_explain():
    rng = random.Random(5)
    steady = [paired.lean(_comparison(rng, 0.0)) for _ in range(30)]
    drawn = [paired.lean(_comparison(rng, rng.gauss(0, 0.01))) for _ in range(30)]
    assert paired.between_comparisons(steady)[1] < 0.003
    spread, unexplained = paired.between_comparisons(drawn)
    assert 0.006 < unexplained < 0.014 and unexplained < spread


def test_shared_within_tells_rounds_that_move_together_from_independent_ones():
    """Two waves of two rounds of two variants: within each wave every log(B/A) moves by the wave's
    offset (+-0.02), so rounds of one wave covary by 0.0004 for one variant and for two; rounds
    of one wave forked from imports of their own (keyed by import) share no key, and give None;
    taken apart by import, the wave's rounds from different imports still covary by its offset."""
    state = _state([[x, x] for x in (0.02, 0.02, -0.02, -0.02)], waves=[0, 0, 1, 1])
    same, other = paired.shared_within(state, paired.wave_of)
    assert math.isclose(same, 0.0004) and math.isclose(other, 0.0004)
    for i, entry in enumerate(state["rounds"]):
        entry["import"] = i % 2
    same, other = paired.shared_within(state, paired.import_of)  # only the two variants of one round share one
    assert same is None and math.isclose(other, 0.0004)
    same, other = paired.shared_within(state, paired.wave_of, paired.import_of)
    assert math.isclose(same, 0.0004) and math.isclose(other, 0.0004)  # the wave's offset, across its imports
    for entry in state["rounds"]:
        entry["import"] = 0
    assert paired.shared_within(state, paired.wave_of, paired.import_of) is None  # one import a wave
    assert paired.shared_within(_state([[0.01], [0.02]]), paired.import_of) is None


def test_decided_after_replays_the_waves_until_every_variant_has_a_verdict():
    """Twelve waves of one round, B/A 1.001 or 0.999 in turn: "same" from the sixth wave on (the
    fewest a 95% signed-rank interval takes), not before; a variant still undecided is not counted."""
    state = _state([[0.001 * (-1) ** i] for i in range(12)])
    for entry in state["rounds"]:
        entry["seconds"] = 2.0
    assert paired.decided_after(state) == (12.0, 1, 1)
    assert paired.decided_after({"rounds": state["rounds"][:5]}) == (0.0, 0, 1)


def test_excluding_one_counts_the_intervals_that_leave_out_no_change():
    """Eight variants of 40 rounds: with no difference between the sides, about 1 in 20 of their 95%
    intervals leaves out 1; with B 10% slower, every one does. A variant with too few rounds for an
    interval is not counted."""
    rng = random.Random(8)
    left_out, of = paired.excluding_one(_comparison(rng, 0.0))
    assert of == 8 and left_out <= 2
    assert paired.excluding_one(_comparison(rng, math.log(1.1))) == (8, 8)
    assert paired.excluding_one(_state([[0.01], [0.02]])) == (0, 0)
