"""Calibration and lead-time arithmetic without Spark: the fitted mappings and the summaries are plain functions."""

import math

import numpy as np
import pytest

from pipelines.evaluation.calibration import Calibrator, _newton_platt, expected_calibration_error
from pipelines.evaluation.lead_time import summarize


def test_platt_and_isotonic_calibrators_map_scores_and_round_trip():
    platt = Calibrator("platt", a=2.0, b=-1.0, fitted_on={"rows": 10, "positives": 2})
    s = np.array([0.1, 0.5, 0.9])
    z = 2.0 * np.log(s / (1 - s)) - 1.0
    assert np.allclose(platt.predict(s), 1 / (1 + np.exp(-z)))
    assert np.all(np.diff(platt.predict(s)) > 0)  # never reorders devices
    iso = Calibrator("isotonic", knots_x=(0.2, 0.6), knots_y=(0.0, 0.5))
    assert np.allclose(iso.predict([0.0, 0.2, 0.4, 0.6, 1.0]), [0.0, 0.0, 0.25, 0.5, 0.5])
    for c in (platt, iso, Calibrator("none")):
        assert Calibrator.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="one of"):
        Calibrator("beta")


def test_expected_calibration_error_is_the_weighted_distance_from_the_diagonal():
    on_diagonal = [
        {"count": 10, "mean_predicted": 0.1, "observed_rate": 0.1},
        {"count": 5, "mean_predicted": 0.8, "observed_rate": 0.8},
    ]
    assert expected_calibration_error(on_diagonal) == 0.0
    off = [
        {"count": 30, "mean_predicted": 0.5, "observed_rate": 0.2},
        {"count": 10, "mean_predicted": 0.9, "observed_rate": 0.5},
    ]
    assert math.isclose(expected_calibration_error(off), (30 * 0.3 + 10 * 0.4) / 40)


def test_lead_time_summary_counts_misses_and_uses_detected_devices_only():
    summary = summarize([3.0, None, 1.0, 8.0, None], not_evaluable=2)
    assert summary["failed_devices"] == 5 and summary["detected"] == 3 and summary["missed"] == 2
    assert summary["not_evaluable"] == 2
    assert summary["recall"] == pytest.approx(0.6)
    assert summary["mean_lead_time_days"] == pytest.approx(4.0)
    assert summary["median_lead_time_days"] == 3.0
    assert (summary["min_lead_time_days"], summary["max_lead_time_days"]) == (1.0, 8.0)


def test_lead_time_summary_edges():
    none_failed = summarize([])
    assert none_failed["recall"] is None and none_failed["mean_lead_time_days"] is None
    all_missed = summarize([None, None])
    assert all_missed["recall"] == 0.0 and all_missed["median_lead_time_days"] is None


def test_the_policy_in_force_is_the_one_catching_most_failed_devices_on_validation():
    from pipelines.evaluation.alerting import best_on_validation

    def point(detected, far, failed=6, days=0):
        return {
            "validation": {
                "detected": detected,
                "failed_devices": failed,
                "false_alarm_rate_per_device_day": far,
                "alerted_positive_device_days": days,
            }
        }

    points = {"lstm": point(3, 0.009, days=9), "gbt_window": point(4, 0.01, days=8), "stack": point(4, 0.008, days=8)}
    assert best_on_validation(points) == "stack"  # most caught; of those, fewest false alarms
    assert best_on_validation({**points, "stack": point(4, 0.01, days=7)}) == "gbt_window"  # then more days alerted
    assert best_on_validation({**points, "lstm": point(4, 0.008, days=8)}) == "lstm"  # a tie on all goes to the LSTM
    no_failures = {"lstm": point(0, 0.01, failed=0, days=2), "baseline": point(0, 0.01, failed=0, days=5)}
    assert best_on_validation(no_failures) == "baseline"  # without a failure list: positive device-days


def test_newton_platt_recovers_the_generating_mapping():
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 2.0, 40_000)
    y = (rng.random(x.size) < 1 / (1 + np.exp(-(1.7 * x - 2.0)))).astype(float)
    a, b = _newton_platt(x, y, np.ones_like(x))
    assert a == pytest.approx(1.7, abs=0.06) and b == pytest.approx(-2.0, abs=0.06)
    # Counts of repeated rows are weights: the same fit from the distinct rows.
    values, counts = np.unique(np.stack([np.round(x, 1), y]), axis=1, return_counts=True)
    assert _newton_platt(values[0], values[1], counts.astype(float)) == pytest.approx(
        _newton_platt(np.round(x, 1), y, np.ones_like(x)), rel=1e-6
    )
