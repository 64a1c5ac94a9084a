"""Claims decided over seeds: intervals against hand-computed ones, and every verdict reachable."""

import math

import pytest

from reslearn.experiments.claim_statistics import (
    FAILS,
    HOLDS,
    UNDECIDED,
    binomial_se,
    decide,
    decide_slope,
    mean_interval,
    seeds_to_decide,
)

# Student's t, two-sided 95%, from printed tables (not from scipy)
T_2 = 4.302653


def test_the_interval_is_students_t_over_the_paired_differences():
    mean, low, high = mean_interval([0.010, 0.014, 0.018])
    sd = math.sqrt(((0.010 - 0.014) ** 2 + (0.018 - 0.014) ** 2) / 2)  # 0.004
    assert mean == pytest.approx(0.014)
    assert low == pytest.approx(0.014 - T_2 * sd / math.sqrt(3), rel=1e-6)
    assert high == pytest.approx(0.014 + T_2 * sd / math.sqrt(3), rel=1e-6)
    assert mean_interval([0.2]) == (0.2, None, None)


def test_a_claim_holds_only_for_every_seed_and_an_interval_clear_of_zero():
    higher = {0: 0.20, 1: 0.21, 2: 0.19}
    holds = decide("A below B", {0: 0.10, 1: 0.12, 2: 0.09}, higher)
    assert holds["verdict"] == HOLDS and holds["holds"]
    assert holds["per_seed"] == {"0": True, "1": True, "2": True}
    assert holds["mean_difference"] == pytest.approx((0.10 + 0.09 + 0.10) / 3)
    fails = decide("A below B", {0: 0.30, 1: 0.31, 2: 0.32}, higher)
    assert fails["verdict"] == FAILS and not fails["holds"]
    # two seeds agree, one does not: the interval straddles zero
    mixed = decide("A below B", {0: 0.15, 1: 0.16, 2: 0.25}, higher)
    assert mixed["verdict"] == UNDECIDED and mixed["per_seed"]["2"] is False
    assert mixed["ci_low"] < 0 < mixed["ci_high"]
    needed = seeds_to_decide(mixed["differences"])
    assert f"about {needed} seeds would decide it" in mixed["evidence"]
    assert "would decide" not in holds["evidence"] + fails["evidence"]


def test_an_undecided_claim_says_how_many_seeds_would_decide_it():
    # differences 0, 1, 2 points: 7 seeds (see the test below); one seed has no spread to go by
    result = decide("A below B", {0: 0.10, 1: 0.10, 2: 0.10}, {0: 0.10, 1: 0.11, 2: 0.12})
    assert result["verdict"] == UNDECIDED and result["seeds_to_decide"] == 7
    assert result["evidence"].endswith("over 3 seeds; about 7 seeds would decide it")
    assert "would decide" not in decide("A below B", {0: 0.1}, {0: 0.3})["evidence"]


def test_one_seed_or_a_margin_below_noise_is_never_decided():
    one = decide("A below B", {0: 0.10}, {0: 0.30})
    assert one["verdict"] == UNDECIDED and "one seed" in one["evidence"]
    clear = decide("A below B", {0: 0.10, 1: 0.11, 2: 0.10}, {0: 0.2, 1: 0.2, 2: 0.2},
                   below_noise=True)  # fmt: skip
    assert clear["verdict"] == UNDECIDED and "below seed noise" in clear["evidence"]


def test_only_seeds_both_sides_have_are_paired():
    result = decide("A below B", {0: 0.1, 1: 0.1, 5: 0.1}, {0: 0.2, 1: 0.3, 7: 0.2})
    assert result["differences"] == pytest.approx([0.1, 0.2])


def test_the_seeds_that_would_decide_a_small_margin():
    # differences 1.0 +- 1.0 (sample std): n seeds decide once t(n-1) / sqrt(n) < 1
    values = [0.0, 1.0, 2.0]
    assert seeds_to_decide(values) == 7  # t(5)=2.571/sqrt(6)=1.05; t(6)=2.447/sqrt(7)=0.925
    assert seeds_to_decide([1.0]) is None and seeds_to_decide([-1.0, 1.0]) is None


def test_a_slope_against_depth_over_every_run():
    # error falls 0.1 points per layer, with seed-to-seed offsets
    points = [(s, d, 0.20 - 0.001 * d + 0.002 * s) for s in (0, 1, 2) for d in (20, 32, 44, 56)]
    result = decide_slope("error falls with depth", points)
    assert result["verdict"] == HOLDS
    assert result["mean_difference"] == pytest.approx(0.001)
    rising = [(s, d, 0.10 + 0.001 * d + 0.0005 * ((d + s) % 3)) for s in (0, 1) for d in (20, 56)]
    assert decide_slope("error falls with depth", rising)["verdict"] == FAILS


def test_the_binomial_standard_error_of_a_test_error():
    assert binomial_se(0.1, 10_000) == pytest.approx(0.003)  # the 0.3 points


def test_a_slope_over_one_seed_says_it_has_no_interval():
    # reproduce cifar with one seed: both ResNets ran, so the slope is there but has no interval
    result = decide_slope("error falls with depth", [(0, 20, 0.10), (0, 56, 0.082)])
    assert result["verdict"] == UNDECIDED
    assert "one seed: no interval" in result["evidence"]
    assert "no paired runs" not in result["evidence"]
    assert result["mean_difference"] == pytest.approx(0.018 / 36)
    assert result["ci_low"] is None and result["per_seed"] == {"0": True}
    assert decide_slope("error falls with depth", [(0, 20, 0.1)])["evidence"] == "no paired runs"
