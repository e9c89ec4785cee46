"""Calibration, the alert thresholds, lead times and fleet scoring on Spark, with small fixed data."""

import json
import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F

from pipelines.config import AlertingConfig, defaults
from pipelines.evaluation import alerting, scoring
from pipelines.evaluation.alerting import AlertPolicy, device_days, fit_policy, threshold_for_false_alarm_rate
from pipelines.evaluation.calibration import Calibrator, fit_calibrator, reliability_profiles
from pipelines.evaluation.lead_time import first_alerts, lead_time_records, summarize

T0 = datetime(2026, 1, 1)


def miscalibrated(spark, n: int, seed: int):
    """Windows whose true failure probability is p but whose raw score is p ** 0.3 (far too high)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 4.0, n)
    label = (rng.random(n) < p).astype(int)
    rows = [(f"d{i}", T0, int(y), float(s)) for i, (y, s) in enumerate(zip(label, p**0.3))]
    return spark.createDataFrame(rows, "device_id string, window_end timestamp, label int, score double")


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_brings_the_reliability_curve_closer_to_the_diagonal(spark, method):
    val, test = miscalibrated(spark, 3000, seed=1), miscalibrated(spark, 3000, seed=2)
    calibrator = fit_calibrator(val, method=method)
    assert calibrator.fitted_on["rows"] == 3000
    calibrated = test.withColumn("probability", calibrator.column("score"))
    curves, profiles, _ = reliability_profiles(calibrated, ["score", "probability"])
    raw, fixed = curves["score"], curves["probability"]
    assert raw["count"] == sum(b["count"] for b in profiles["score"]) == 3000
    assert raw["ece"] > 0.2
    assert fixed["ece"] < 0.05 and fixed["ece"] < raw["ece"] / 4
    assert fixed["brier"] < raw["brier"]
    # The Spark column and the NumPy mapping are the same function.
    rows = calibrated.limit(50).collect()
    assert np.allclose([r["probability"] for r in rows], calibrator.predict([r["score"] for r in rows]), atol=1e-9)
    # A device without a score (too little history) gets no probability.
    unscored = spark.createDataFrame([(None,)], "score double").select(calibrator.column("score").alias("p"))
    assert unscored.first()["p"] is None


def days_frame(spark, negatives, positives):
    rows = [(f"n{i}", T0, p, 0) for i, p in enumerate(negatives)] + [
        (f"p{i}", T0, p, 1) for i, p in enumerate(positives)
    ]
    return spark.createDataFrame(rows, "device_id string, day timestamp, probability double, label int")


def test_threshold_for_a_target_false_alarm_rate_is_the_lowest_that_keeps_it(spark):
    negatives = [k / 100 for k in range(1, 101)]  # 0.01 .. 1.00
    days = days_frame(spark, negatives, [0.955, 0.5])
    t = threshold_for_false_alarm_rate(days, 0.05)
    assert t == 0.955  # 5 negatives (0.96 .. 1.00) at or above it; 0.95 would make 6
    far = alerting.false_alarm_rate(days, t)
    assert far["false_alarm_device_days"] == 5 and far["false_alarm_rate_per_device_day"] == 0.05
    assert threshold_for_false_alarm_rate(days, 0.0) == math.nextafter(1.0, math.inf)  # nothing may alert
    assert (
        threshold_for_false_alarm_rate(days, 0.5) == 0.51
    )  # 50 negatives from 0.51; at 0.50 (tied with a positive) 51
    tied = days_frame(spark, [0.9] * 10 + [0.1] * 90, [0.95])
    assert threshold_for_false_alarm_rate(tied, 0.05) == 0.95  # the tie of 10 cannot be split


def test_device_days_take_the_highest_probability_and_label_of_a_day(spark):
    rows = [("a", T0 + timedelta(days=1, hours=h), 0.1 * h, int(h == 20)) for h in (1, 5, 20)]
    rows += [("a", T0 + timedelta(hours=2), 0.9, 0)]  # the failing device, before its horizon: an early alert
    rows += [("b", T0 + timedelta(days=d, hours=h), 0.01 * h, 0) for d in (0, 1) for h in (3, 4)]
    preds = spark.createDataFrame(rows, "device_id string, window_end timestamp, probability double, label int")
    got = sorted(
        (r["device_id"], r["day"].day, round(r["probability"], 6), r["label"]) for r in device_days(preds).collect()
    )
    assert got == [("a", 2, 2.0, 1), ("b", 1, 0.04, 0), ("b", 2, 0.04, 0)]
    # Early alerts are not false alarms: only b's days are negatives.
    assert alerting.false_alarm_rate(device_days(preds), 0.5)["negative_device_days"] == 2


def test_policy_from_a_false_alarm_target_or_a_cost_ratio(spark):
    val = miscalibrated(spark, 2000, seed=3)
    policy = fit_policy(
        val, defaults(AlertingConfig, calibration="platt", target_false_alarm_rate=0.01, review_false_alarm_rate=0.05)
    )
    assert policy.review_threshold <= policy.alert_threshold
    assert policy.validation["false_alarm_rate_per_device_day"] <= 0.01
    assert policy.validation["review_false_alarm_rate_per_device_day"] <= 0.05
    assert AlertPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    cost = fit_policy(val, defaults(AlertingConfig, calibration="platt", policy="cost", cost_ratio=9.0))
    assert cost.alert_threshold == pytest.approx(0.1) and cost.cost_ratio == 9.0
    bands = {r["band"] for r in policy.apply(val).select("band").distinct().collect()}
    assert bands == {"alert", "uncertain", "ok"}
    block, leads = alerting.evaluate_policy(policy, val, failures=None)
    counts = policy.apply(val).groupBy("label", (F.col("probability") >= policy.alert_threshold).alias("a")).count()
    cells = {(r["label"], r["a"]): r["count"] for r in counts.collect()}
    assert block["confusion_matrix"] == {
        "tn": cells.get((0, False), 0),
        "fp": cells.get((0, True), 0),
        "fn": cells.get((1, False), 0),
        "tp": cells.get((1, True), 0),
    }
    assert block["recall"] is None and leads == []  # no failures given: no lead times
    with pytest.raises(ValueError, match="alerting.policy"):
        fit_policy(val, defaults(AlertingConfig, policy="gut_feeling"))


def heterogeneous_devices(rng, devices: int, days: int = 10):
    """Healthy devices whose daily scores sit at a level of their own (some devices are noisier than others):
    the reason why a threshold fitted on a few devices misses its false-alarm target on others."""
    level = rng.normal(0.0, 1.0, (devices, 1))
    return 1 / (1 + np.exp(-(1.5 * level + 0.5 * rng.normal(0.0, 1.0, (devices, days)) - 4)))


def test_a_conservative_threshold_keeps_the_false_alarm_target_on_unseen_devices(spark):
    target = 0.02
    population = heterogeneous_devices(np.random.default_rng(100), 50_000).ravel()  # the unseen devices

    def true_rate(threshold: float) -> float:
        return float(np.mean(population >= threshold))

    config = defaults(AlertingConfig, calibration="none", target_false_alarm_rate=target, threshold_confidence=0.9)
    kept_point, kept_conservative = 0, 0
    for seed in range(6):
        scores = heterogeneous_devices(np.random.default_rng(seed), 60)
        rows = [
            (f"d{d}", T0 + timedelta(days=k), 0, float(s))
            for d in range(scores.shape[0])
            for k, s in enumerate(scores[d])
        ]
        rows += [(f"f{d}", T0, 1, 0.9) for d in range(3)]
        val = spark.createDataFrame(rows, "device_id string, window_end timestamp, label int, score double")
        policy = fit_policy(val, config)
        validation = policy.validation
        point = validation["point_threshold"]
        assert policy.alert_threshold >= point and validation["bootstrap_replicates"] == 200
        low, high = validation["false_alarm_rate_interval"]
        assert low <= validation["false_alarm_rate_per_device_day"] <= high
        kept_point += true_rate(point) <= target
        kept_conservative += true_rate(policy.alert_threshold) <= target
    # The plain threshold is a coin toss on unseen devices; the bootstrap's 0.9-quantile keeps the promise.
    assert kept_point <= 4 and kept_conservative >= 5
    with pytest.raises(ValueError, match="threshold_confidence"):
        fit_policy(val, defaults(AlertingConfig, threshold_confidence=1.0))


def test_bootstrap_in_the_tail_equals_every_device_day_replicated(spark):
    """The replicates' thresholds and interval, sought in the tail of the probabilities, equal those of the whole
    validation split replicated day by day; for a false-alarm target and for a cost ratio below the tail."""
    scores = heterogeneous_devices(np.random.default_rng(7), 60)
    rows = [(f"d{d}", T0 + timedelta(days=k), 0, float(s)) for d in range(60) for k, s in enumerate(scores[d])]
    rows += [(f"f{d}", T0, 1, 0.9) for d in range(3)]
    val = spark.createDataFrame(rows, "device_id string, window_end timestamp, label int, score double")
    days = device_days(val.withColumn("probability", F.col("score"))).withColumn(alerting.MODEL, F.lit(""))
    replicated = alerting.bootstrap_replicates(days, 200)
    for config in (
        defaults(AlertingConfig, calibration="none", target_false_alarm_rate=0.02),
        defaults(AlertingConfig, calibration="none", policy="cost", cost_ratio=99.0),  # alerts at p >= 0.01
    ):
        policy = fit_policy(val, config)
        targets = [config.target_false_alarm_rate, config.review_false_alarm_rate]
        found = alerting._grouped_thresholds(replicated, targets, by=[alerting.MODEL, alerting.REPLICATE])
        review = float(np.quantile([t[1] for t, n in found.values() if n], 0.9, method="higher"))
        assert policy.review_threshold == min(review, policy.alert_threshold)
        if config.policy == "false_alarm_rate":
            assert policy.alert_threshold == float(
                np.quantile([t[0] for t, n in found.values() if n], 0.9, method="higher")
            )
        rates = alerting.replicate_false_alarm_rates(replicated, {"": policy.alert_threshold})[""]
        assert policy.validation["false_alarm_rate_interval"] == pytest.approx(
            list(np.quantile(rates, alerting.INTERVAL))
        )


def test_policies_fitted_together_equal_each_models_own(spark):
    """Every model's policy and operating point come from the same Spark jobs; grouping must not mix them up."""
    config = defaults(AlertingConfig, calibration="platt", target_false_alarm_rate=0.02, bootstrap_replicates=20)
    day = lambda d: T0 + timedelta(days=d)  # noqa: E731
    frames = {}
    for name, seed in (("sharp", 3), ("dull", 4)):
        rng = np.random.default_rng(seed)
        rows = [
            (f"d{d}", day(k), 0, float(rng.beta(1, 8 if name == "sharp" else 3))) for d in range(80) for k in range(5)
        ]
        rows += [
            (f"f{d}", day(k), int(k >= 3), float(rng.beta(4 if name == "sharp" else 2, 2)))
            for d in range(8)
            for k in range(5)
        ]
        frames[name] = spark.createDataFrame(rows, "device_id string, window_end timestamp, label int, score double")
    together = (
        frames["sharp"]
        .withColumn("model", F.lit("sharp"))
        .unionByName(frames["dull"].withColumn("model", F.lit("dull")))
    )
    failures = spark.createDataFrame([(f"f{d}", day(5)) for d in range(8)], "device_id string, failure_time timestamp")
    policies, points = alerting.policies_by_model(together, together, config, failures=failures)
    assert set(policies) == {"sharp", "dull"}
    for name, frame in frames.items():
        alone = fit_policy(frame, config)
        assert policies[name].alert_threshold == pytest.approx(alone.alert_threshold, rel=1e-9)
        assert policies[name].review_threshold == pytest.approx(alone.review_threshold, rel=1e-9)
        mine = policies[name].calibrator
        assert (mine.a, mine.b) == pytest.approx((alone.calibrator.a, alone.calibrator.b))
        assert mine.fitted_on == alone.calibrator.fitted_on
        assert policies[name].validation.keys() == alone.validation.keys()
        for key, value in alone.validation.items():
            assert policies[name].validation[key] == pytest.approx(value), key
        one = alerting.policy_points({name: alone}, frame.withColumn("model", F.lit(name)), failures=failures)[name]
        assert {k: v for k, v in points[name].items() if k != "validation"} == pytest.approx(one)
    assert points["sharp"]["detected"] >= points["dull"]["detected"]
    assert points["sharp"]["failed_devices"] == 8


def test_lead_time_edges(spark):
    day = lambda d, h=0: T0 + timedelta(days=d, hours=h)  # noqa: E731
    rows = [
        ("early", day(5), False),
        ("early", day(6), True),
        ("early", day(8), True),
        ("early", day(9), False),
        ("late", day(3), False),
        ("late", day(10), True),
        ("late", day(11), True),  # alerts at and after the failure
        ("silent", day(8), False),
        ("silent", day(9), False),
        ("healthy", day(4), True),
    ]
    alerts = spark.createDataFrame(rows, "device_id string, window_end timestamp, alert boolean")
    failures = spark.createDataFrame(
        [("early", day(10)), ("late", day(10)), ("silent", day(10, 12)), ("no_windows", day(2)), ("early", day(20))],
        "device_id string, failure_time timestamp",
    )
    leads = {r["device_id"]: r for r in lead_time_records(first_alerts(alerts, failures, [F.col("alert")]))}
    assert set(leads) == {"early", "late", "silent"}  # "healthy" never failed, "no_windows" has nothing evaluated
    assert leads["early"]["lead_time_days"] == 4.0 and leads["early"]["first_alert"] == "2026-01-07 00:00:00"
    assert leads["late"]["lead_time_days"] is None and leads["silent"]["lead_time_days"] is None
    summary = summarize([r["lead_time_days"] for r in leads.values()])
    assert (summary["detected"], summary["missed"], summary["mean_lead_time_days"]) == (1, 2, 4.0)
    # Several thresholds at once (operating points) give the same answer.
    scored = alerts.withColumn("probability", F.col("alert").cast("double"))
    rows = first_alerts(scored, failures, [F.col("probability") >= 0.5, F.col("probability") >= 2.0])
    assert lead_time_records(rows, 0) == list(leads.values())
    assert [r["lead_time_days"] for r in lead_time_records(rows, 1)] == [None, None, None]


def first_feature_scorer(windows):
    """A stand-in model: the sigmoid of the last reading's first feature."""
    return windows.select("device_id", "window_end", (1 / (1 + F.exp(-F.element_at("features", -2)))).alias("score"))


def make_scorer(**kwargs):
    return first_feature_scorer


def test_fleet_scoring_with_a_plugged_scorer(spark, tmp_path):
    rows = []
    for device, x, days, segment_break in (
        ("hot", 3.0, range(0, 5), None),
        ("cool", -3.0, range(0, 5), None),
        ("warm", 0.0, range(0, 5), None),
        ("gappy", 5.0, range(0, 5), 3),
        ("stale", 0.2, range(0, 3), None),
    ):
        for d in days:
            segment = 1 if segment_break is not None and d >= segment_break else 0
            rows.append((device, "M", T0 + timedelta(days=d), segment, x * 2 + 1, 7.0))
    readings = spark.createDataFrame(
        rows, "device_id string, model string, timestamp timestamp, segment int, a double, b double"
    )
    info = {
        "length": 3,
        "features": ["a", "b"],
        "normalization": {"features": ["a", "b"], "mean": [1.0, 7.0], "std": [2.0, 1.0]},
    }
    policy = AlertPolicy(
        Calibrator("none"),
        alert_threshold=0.9,
        review_threshold=0.45,
        policy="false_alarm_rate",
        target_false_alarm_rate=0.01,
    )
    scorer = scoring.load_scorer("test_scoring_alerting:make_scorer", spark=spark)
    table = scoring.score_fleet(readings, scorer, policy, info, scored_by="stub")
    got = {r["device_id"]: r for r in table.collect()}
    assert list(table.columns) == scoring.RISK_COLUMNS
    assert got["hot"]["band"] == "alert" and got["hot"]["alert"] is True
    assert got["hot"]["score"] == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert "strongest signal a (+3.0 sd)" in got["hot"]["reason"] and "alert threshold" in got["hot"]["reason"]
    assert got["warm"]["band"] == "uncertain" and "human review" in got["warm"]["reason"]
    assert got["cool"]["band"] == "ok" and not got["cool"]["alert"]
    assert got["gappy"]["band"] == "insufficient_history" and got["gappy"]["score"] is None
    assert got["gappy"]["reason"].startswith("not scored: 2 of 3 readings")
    assert (
        got["stale"]["window_end"] == T0 + timedelta(days=2) and "no reading since 2026-01-03" in got["stale"]["reason"]
    )

    out = str(tmp_path / "risk")
    summary = scoring.write_risk_table(spark, table, out, policy=policy)
    assert summary["by_band"] == {"alert": 1, "uncertain": 2, "ok": 1, "insufficient_history": 1}
    assert summary["top"][0]["device_id"] == "hot" and (tmp_path / "risk" / "_SUCCESS").exists()
    assert spark.read.parquet(f"{out}/table").count() == 5
