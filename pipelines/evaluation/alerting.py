"""The alert policy: calibrated probabilities, an alert threshold, an "uncertain" band, and what they give.

Everything is chosen on the validation split and reported on the test split:
1. a `Calibrator` (calibration.py) maps the model's scores to probabilities;
2. the alert threshold comes from the policy:
   - `false_alarm_rate`: the lowest threshold whose false-alarm rate per device-day on the validation split is at
     most `target_false_alarm_rate`;
   - `cost`: alert when p >= 1 / (1 + cost_ratio), the decision that minimises the expected cost when a missed
     failure costs `cost_ratio` false alarms and p is calibrated;
3. the review threshold (lower edge of the "uncertain" band, for human review) is the threshold for
   `review_false_alarm_rate`, never above the alert threshold.

Device-days: the windows of a device ending on the same UTC day are one device-day, alerted when any of them is,
and positive when any of them is labelled "fails within the horizon". The false-alarm rate per device-day is
alerted negative device-days / negative device-days (for daily data, one window is one device-day), where the
negative device-days are those of devices that do not fail in the data: an alert on a failing device before its
horizon is early, not false (recall counts it, as it counts every alert before the failure), so the days of a
device with any positive day are left out of the rate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.config import AlertingConfig
from pipelines.evaluation.calibration import Calibrator, calibrated_column, fit_calibrators, reliability_profiles
from pipelines.evaluation.lead_time import first_alerts, lead_time_records, summarize
from pipelines.io.fs import atomic_output as fs_atomic
from pipelines.io.fs import read_json, write_json
from pipelines.layout import RunLayout

log = logging.getLogger(__name__)

POLICIES = ("false_alarm_rate", "cost")
ALERT, UNCERTAIN, OK = "alert", "uncertain", "ok"
FAR_TARGETS = (0.001, 0.005, 0.01, 0.02, 0.05)
WEIGHT, REPLICATE, MODEL = "weight", "replicate", "model"
INTERVAL = (0.05, 0.95)  # the validation estimate's bootstrap interval
BOOTSTRAP_SEED = 0
BOOTSTRAP_TAIL = 5.0  # the replicates' thresholds are sought above the point threshold for this many times the target
# P(N <= k) for N ~ Poisson(1), k = 0..7: a device's count in a bootstrap replicate (P(N > 7) < 1e-5).
_POISSON_CDF = tuple(sum(math.exp(-1) / math.factorial(j) for j in range(k + 1)) for k in range(8))


@dataclass(frozen=True)
class AlertPolicy:
    """A calibrator and two thresholds on its probabilities: alert >= alert_threshold, uncertain >= review_threshold."""

    calibrator: Calibrator
    alert_threshold: float
    review_threshold: float
    policy: str
    target_false_alarm_rate: float | None = None
    review_false_alarm_rate: float | None = None
    cost_ratio: float | None = None
    validation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.review_threshold > self.alert_threshold:
            raise ValueError("the review threshold must not be above the alert threshold")

    def band(self, probability: Column | str) -> Column:
        p = F.col(probability) if isinstance(probability, str) else probability
        return (
            F.when(p.isNull(), F.lit(None).cast("string"))
            .when(p >= self.alert_threshold, F.lit(ALERT))
            .when(p >= self.review_threshold, F.lit(UNCERTAIN))
            .otherwise(F.lit(OK))
        )

    def apply(self, df: DataFrame, *, score_col: str = "score") -> DataFrame:
        """`df` with `probability`, `band` and `alert` (boolean) columns."""
        scored = df.withColumn("probability", self.calibrator.column(score_col))
        return scored.withColumn("band", self.band("probability")).withColumn("alert", F.col("band") == ALERT)

    def describe(self) -> str:
        if self.policy == "cost":
            rule = f"cost ratio {self.cost_ratio:g}: alert when p >= 1/(1+{self.cost_ratio:g})"
        else:
            rule = f"false alarms <= {self.target_false_alarm_rate:.2%} of device-days on the validation split"
        return (
            f"{self.calibrator.method} calibration; alert at p >= {self.alert_threshold:.4g} ({rule}); "
            f"uncertain for {self.review_threshold:.4g} <= p < {self.alert_threshold:.4g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.calibrator.to_dict(),
            "alert_threshold": self.alert_threshold,
            "review_threshold": self.review_threshold,
            "policy": self.policy,
            "target_false_alarm_rate": self.target_false_alarm_rate,
            "review_false_alarm_rate": self.review_false_alarm_rate,
            "cost_ratio": self.cost_ratio,
            "validation": self.validation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertPolicy:
        return cls(
            calibrator=Calibrator.from_dict(data["calibration"]),
            alert_threshold=float(data["alert_threshold"]),
            review_threshold=float(data["review_threshold"]),
            policy=data["policy"],
            target_false_alarm_rate=data.get("target_false_alarm_rate"),
            review_false_alarm_rate=data.get("review_false_alarm_rate"),
            cost_ratio=data.get("cost_ratio"),
            validation=data.get("validation", {}),
        )


def check_config(config: AlertingConfig) -> None:
    if config.policy not in POLICIES:
        raise ValueError(f"alerting.policy must be one of {POLICIES}, not {config.policy!r}")
    for name in ("target_false_alarm_rate", "review_false_alarm_rate"):
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"alerting.{name} must be in [0, 1), got {value}")
    if config.cost_ratio <= 0:
        raise ValueError("alerting.cost_ratio must be positive")
    if not 0.0 <= config.threshold_confidence < 1.0:
        raise ValueError(f"alerting.threshold_confidence must be in [0, 1), got {config.threshold_confidence}")
    if config.threshold_confidence > 0 and config.bootstrap_replicates < 10:
        raise ValueError(f"alerting.bootstrap_replicates must be at least 10, got {config.bootstrap_replicates}")


# ---------------------------------------------------------------------------------------------------- device-days


def device_days(
    predictions: DataFrame, *, prob_col: str = "probability", label_col: str = "label", by: Sequence[str] = ()
) -> DataFrame:
    """`*by, device_id, day, probability, label`: per device and UTC day (and per value of the `by` columns, a
    model's name), the highest probability and label; the negative days of failing devices (devices with a positive
    day) are left out (see the module's docstring)."""
    keys = [*by, "device_id"]
    days = predictions.groupBy(*keys, F.to_date("window_end").alias("day")).agg(
        F.max(prob_col).alias("probability"), F.max(F.col(label_col).cast("int")).alias("label")
    )
    failing = days.withColumn("_failing", F.max("label").over(Window.partitionBy(*keys)))
    return failing.where((F.col("label") == 1) | (F.col("_failing") == 0)).drop("_failing")


def threshold_for_false_alarm_rate(days: DataFrame, target: float, *, prob_col: str = "probability") -> float:
    """The lowest threshold t (alert when p >= t) whose false-alarm rate on the negative rows of `days` is <= target.

    Candidates are every distinct probability (of any row) and, when even the highest would alert on too many
    negatives, the next float above the highest negative probability (no negative alerts). Exact with ties; one row
    reaches the driver.
    """
    return thresholds_for_false_alarm_rates(days, [target], prob_col=prob_col)[0]


def thresholds_for_false_alarm_rates(
    days: DataFrame, targets: Sequence[float], *, prob_col: str = "probability"
) -> list[float]:
    """`threshold_for_false_alarm_rate` for several targets in one Spark job."""
    one = days.withColumn(WEIGHT, F.lit(1)).withColumn(_ALL, F.lit(0))
    rows = _grouped_thresholds(one, targets, by=[_ALL], prob_col=prob_col)
    if not rows:
        raise ValueError("threshold_for_false_alarm_rate: no predictions")
    thresholds, n_neg = rows[(0,)]
    if not n_neg:
        log.warning("no negative device-days: every probability is within the false-alarm target")
    return thresholds


_ALL = "_all"  # a constant grouping column: the whole frame as one group


def _grouped_thresholds(
    days: DataFrame,
    targets: Sequence[float],
    *,
    by: Sequence[str],
    prob_col: str = "probability",
    exact_col: str | None = None,
) -> dict[tuple, tuple[list[float], float]]:
    """Per group of the `by` columns: the thresholds for `targets` on `days`' negatives counted `weight` times each,
    and that group's weighted number of negatives. `exact_col`: the highest probability of the row when `prob_col`
    holds a value below it (several days as one row), so that a threshold above every negative is above that. One
    Spark job; one row per group reaches the driver."""
    negative = F.col("label") == 0
    grouped = days.groupBy(*by, F.col(prob_col).cast("double").alias("t")).agg(
        F.sum(F.when(negative, F.col(WEIGHT)).otherwise(0)).cast("long").alias("neg"),
        F.max(F.when(negative, F.col(exact_col or prob_col))).cast("double").alias("top"),
    )
    # Thresholds from high to low only add false alarms: the valid ones are a prefix, its end is the answer.
    above = Window.partitionBy(*by).orderBy(F.col("t").desc()).rowsBetween(Window.unboundedPreceding, 0)
    cum = grouped.withColumn("fp", F.sum("neg").over(above)).withColumn(
        "n_neg", F.sum("neg").over(Window.partitionBy(*by))
    )
    rows = (
        cum.groupBy(*by)
        .agg(
            *[
                F.min(F.when(F.col("fp") <= F.lit(float(target)) * F.col("n_neg"), F.col("t"))).alias(f"ok{i}")
                for i, target in enumerate(targets)
            ],
            F.max(F.when(F.col("neg") > 0, F.col("top"))).alias("max_negative"),
            F.max("n_neg").alias("n_neg"),
        )
        .collect()
    )
    out = {}
    for row in rows:
        above_every_negative = math.nextafter(float(row["max_negative"] or 0.0), math.inf)
        found = [row[f"ok{i}"] for i in range(len(targets))]
        thresholds = [above_every_negative if t is None else float(t) for t in found]
        out[tuple(row[k] for k in by)] = (thresholds, float(row["n_neg"] or 0))
    return out


def false_alarm_rate(days: DataFrame, threshold: float, *, prob_col: str = "probability") -> dict[str, Any]:
    """Alerted negative device-days / negative device-days at `threshold`, with the counts."""
    return false_alarm_rates(days, [threshold], prob_col=prob_col)[0]


def false_alarm_rates(
    days: DataFrame, thresholds: Sequence[float], *, prob_col: str = "probability"
) -> list[dict[str, Any]]:
    """`false_alarm_rate` at several thresholds in one Spark job."""
    rates = _grouped_rates(
        days.withColumn(_ALL, F.lit(0)), [F.lit(t) for t in thresholds], by=[_ALL], prob_col=prob_col
    )
    return rates.get((0,)) or [_rate_record(0, 0, 0, 0)] * len(thresholds)


def _grouped_rates(
    days: DataFrame, thresholds: Sequence[Column], *, by: Sequence[str], prob_col: str = "probability"
) -> dict[tuple, list[dict[str, Any]]]:
    """Per group of the `by` columns: `false_alarm_rate`'s record at each of `thresholds` (columns, so that they can
    differ by group). One Spark job."""
    negative, positive = F.col("label") == 0, F.col("label") == 1
    rows = (
        days.groupBy(*by)
        .agg(
            F.sum(F.when(negative, 1).otherwise(0)).alias("neg"),
            F.sum(F.when(positive, 1).otherwise(0)).alias("pos"),
            *[
                F.sum(F.when(negative & (F.col(prob_col) >= t), 1).otherwise(0)).alias(f"fa{i}")
                for i, t in enumerate(thresholds)
            ],
            *[
                F.sum(F.when(positive & (F.col(prob_col) >= t), 1).otherwise(0)).alias(f"tp{i}")
                for i, t in enumerate(thresholds)
            ],
        )
        .collect()
    )
    return {
        tuple(row[k] for k in by): [
            _rate_record(int(row["neg"] or 0), int(row["pos"] or 0), int(row[f"fa{i}"] or 0), int(row[f"tp{i}"] or 0))
            for i in range(len(thresholds))
        ]
        for row in rows
    }


def _rate_record(neg: int, pos: int, fa: int, tp: int) -> dict[str, Any]:
    return {
        "device_days": neg + pos,
        "negative_device_days": neg,
        "false_alarm_device_days": fa,
        "false_alarm_rate_per_device_day": fa / neg if neg else None,
        "positive_device_days": pos,
        "alerted_positive_device_days": tp,
    }


def by_model(values: dict[str, float], *, model_col: str = "model") -> Column:
    """A column holding `values[model]` on each row (null for a model not in `values`)."""
    pairs = [item for name, value in values.items() for item in (F.lit(name), F.lit(float(value)))]
    return F.create_map(*pairs)[F.col(model_col)]


# ---------------------------------------------------------------------------------------------------- the policy


def fit_policy(val_predictions: DataFrame, config: AlertingConfig, *, score_col: str = "score") -> AlertPolicy:
    """Calibrate on `val_predictions` (device_id, window_end, label, score) and choose the thresholds there: the
    policy of `fit_policies` for one model."""
    one = val_predictions.withColumn(MODEL, F.lit(""))
    return fit_policies(one, config, score_col=score_col)[""]


def fit_policies(
    val_predictions: DataFrame,
    config: AlertingConfig,
    *,
    score_col: str = "score",
    calibrators: dict[str, Calibrator] | None = None,
) -> dict[str, AlertPolicy]:
    """Per model (`model` column of `val_predictions`: model, device_id, window_end, label, score): calibrate
    (unless its calibrator is given in `calibrators`) and choose the thresholds on its validation predictions, every
    model in the same Spark jobs.

    With `threshold_confidence` c > 0, the validation devices are resampled (`bootstrap_replicates` replicates, each
    device drawn Poisson(1) times with all its days): each replicate gives its own thresholds, and the policy takes
    their c-quantile, so that the false-alarm target holds in a fraction c of the replicates rather than on the one
    sample of devices at hand. The validation block gives the point estimate at the chosen threshold and its
    bootstrap interval (`INTERVAL`)."""
    check_config(config)
    if calibrators is None:
        calibrators = fit_calibrators(val_predictions, method=config.calibration, group=MODEL, score_col=score_col)
    probability = calibrated_column(calibrators, score_col=score_col, model_col=MODEL)
    days = device_days(val_predictions.withColumn("probability", probability), by=[MODEL]).cache()
    targets = [config.target_false_alarm_rate, config.review_false_alarm_rate]
    bootstrap = config.threshold_confidence > 0
    try:
        weighted = days.withColumn(WEIGHT, F.lit(1))
        tail = [min(BOOTSTRAP_TAIL * max(targets), 1.0)] if bootstrap else []
        found_point = _grouped_thresholds(weighted, [*targets, *tail], by=[MODEL])
        point = {key[0]: t[:2] for key, (t, _) in found_point.items()}
        chosen = dict(point)
        if bootstrap:
            # A replicate's thresholds lie in the tail of its model's probabilities (a replicate whose false alarms
            # would be BOOTSTRAP_TAIL times fewer there than in the sample does not occur): the tail's device-days
            # stay as they are, the rest of a device's days are one row of their count, each weighted by the draw.
            cutoffs = {key[0]: t[2] for key, (t, _) in found_point.items()}
            in_tail = F.when(F.col("probability") >= by_model(cutoffs), F.col("probability")).otherwise(F.lit(-1.0))
            rows = days.groupBy(MODEL, "device_id", "label", in_tail.alias("t")).agg(
                F.count(F.lit(1)).alias("days"), F.max("probability").alias("top")
            )
            replicated = bootstrap_replicates(rows, config.bootstrap_replicates)
            replicated = replicated.withColumn(WEIGHT, F.col(WEIGHT) * F.col("days"))
            per_replicate = _grouped_thresholds(
                replicated, targets, by=[MODEL, REPLICATE], prob_col="t", exact_col="top"
            )
            for name in calibrators:
                found = [t for (model, _), (t, n_neg) in per_replicate.items() if model == name and n_neg]
                if found:
                    chosen[name] = [
                        float(np.quantile([t[i] for t in found], config.threshold_confidence, method="higher"))
                        for i in range(2)
                    ]
        alert = {
            name: 1.0 / (1.0 + config.cost_ratio) if config.policy == "cost" else chosen[name][0]
            for name in calibrators
        }
        review = {name: min(chosen[name][1], alert[name]) for name in calibrators}
        rates = _grouped_rates(days, [by_model(alert), by_model(review)], by=[MODEL])
        intervals = {}
        if bootstrap:  # from the tail's rows when no alert threshold is below it
            if all(alert[name] >= cutoffs[name] for name in alert):
                source = replicated.withColumn("probability", F.col("t"))
            else:
                source = bootstrap_replicates(days, config.bootstrap_replicates)
            intervals = replicate_false_alarm_rates(source, alert)
    finally:
        days.unpersist()
    policies = {}
    for name, calibrator in calibrators.items():
        validation, at_review = rates[(name,)]
        validation["review_false_alarm_rate_per_device_day"] = at_review["false_alarm_rate_per_device_day"]
        validation["point_threshold"] = point[name][0]
        validation["threshold_confidence"] = config.threshold_confidence
        if bootstrap:
            validation["bootstrap_replicates"] = config.bootstrap_replicates
            validation["false_alarm_rate_interval"] = _interval(intervals.get(name, []))
        policies[name] = AlertPolicy(
            calibrator=calibrator,
            alert_threshold=float(alert[name]),
            review_threshold=float(review[name]),
            policy=config.policy,
            target_false_alarm_rate=config.target_false_alarm_rate if config.policy == "false_alarm_rate" else None,
            review_false_alarm_rate=config.review_false_alarm_rate,
            cost_ratio=config.cost_ratio if config.policy == "cost" else None,
            validation=validation,
        )
        log.info("alert policy%s: %s", f" of {name}" if name else "", policies[name].describe())
    return policies


def bootstrap_replicates(days: DataFrame, replicates: int, *, seed: int = BOOTSTRAP_SEED) -> DataFrame:
    """`days` once per replicate (`replicate` 0..replicates-1) with a `weight`: how many times the replicate draws
    the device (Poisson(1), the same for all its days and every model, from a hash of device, replicate and seed);
    rows of weight 0 are left out. Resampling devices, not days, keeps a device's correlated days together."""
    span = 1 << 30
    u = F.pmod(F.xxhash64(F.col("device_id").cast("string"), F.col(REPLICATE), F.lit(seed)), F.lit(span)) / span
    weight = F.when(u < _POISSON_CDF[0], 0)
    for k, cdf in enumerate(_POISSON_CDF[1:], start=1):
        weight = weight.when(u < cdf, k)
    each = days.withColumn(REPLICATE, F.explode(F.sequence(F.lit(0), F.lit(replicates - 1))))
    return each.withColumn(WEIGHT, weight.otherwise(len(_POISSON_CDF))).where(F.col(WEIGHT) > 0)


def replicate_false_alarm_rates(replicated: DataFrame, thresholds: dict[str, float]) -> dict[str, list[float]]:
    """Per model: the weighted false-alarm rate at its threshold of each replicate that has negatives."""
    negative = F.when(F.col("label") == 0, F.col(WEIGHT)).otherwise(0)
    rows = (
        replicated.groupBy(MODEL, REPLICATE)
        .agg(
            F.sum(negative).alias("neg"),
            F.sum(F.when(F.col("probability") >= by_model(thresholds), negative).otherwise(0)).alias("fa"),
        )
        .collect()
    )
    out: dict[str, list[float]] = {}
    for row in rows:
        if row["neg"]:
            out.setdefault(row[MODEL], []).append(row["fa"] / row["neg"])
    return out


def _interval(values: Sequence[float]) -> list[float] | None:
    return [float(v) for v in np.quantile(values, INTERVAL)] if values else None


def evaluate_policy(
    policy: AlertPolicy,
    test_predictions: DataFrame,
    *,
    failures: DataFrame | None,
    bins: int = 10,
    score_col: str = "score",
    targets: Sequence[float] = FAR_TARGETS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The policy on the test split: the `alerting` block of metrics.json and the per-device lead times.

    Keys: threshold, review_threshold, false_alarm_rate_per_device_day, recall (failed devices alerted before their
    failure), mean/median lead time in days, the window-level confusion matrix at the alert threshold, reliability
    of the raw scores and of the calibrated probabilities (equal-width bins, and log-spaced bins for the figures), and
    operating points: for each of `targets`, the threshold chosen on the test split itself, the rate reached, device
    recall and lead times (optimistic: for comparing models, not for setting policy).
    Without `failures` the lead-time figures are None. Four Spark queries, whatever the number of targets.
    """
    applied = policy.apply(test_predictions, score_col=score_col).cache()
    try:
        days = device_days(applied).cache()
        try:
            points_at = thresholds_for_false_alarm_rates(days, targets)
            thresholds = [policy.alert_threshold, policy.review_threshold, *points_at]
            rates = false_alarm_rates(days, thresholds)
        finally:
            days.unpersist()
        alerted = F.col("probability") >= policy.alert_threshold
        curves, profiles, extra = reliability_profiles(
            applied, [score_col, "probability"], bins=bins, extra={"alert": alerted.cast("int")}
        )
        alerting = [alerted, *(F.col("probability") >= t for t in points_at)]
        firsts = first_alerts(applied, failures, alerting) if failures is not None else None
    finally:
        applied.unpersist()
    far, at_review = rates[0], rates[1]
    leads = lead_time_records(firsts, 0) if firsts is not None else []
    summary = summarize([r["lead_time_days"] for r in leads])
    uncertain = sum(at_review[k] - far[k] for k in ("false_alarm_device_days", "alerted_positive_device_days"))
    by_alert = {int(r["bin"]): (int(r["n"]), int(r["pos"])) for r in extra["alert"]}
    (n0, pos0), (n1, pos1) = by_alert.get(0, (0, 0)), by_alert.get(1, (0, 0))
    confusion = {"tn": n0 - pos0, "fp": n1 - pos1, "fn": pos0, "tp": pos1}
    points = []
    for i, (target, t) in enumerate(zip(targets, points_at)):
        point = {"target_false_alarm_rate": target, "threshold": t, **rates[2 + i]}
        if firsts is not None:
            point.update(summarize([r["lead_time_days"] for r in lead_time_records(firsts, 1 + i)]))
        points.append(point)
    tp, fp, fn = confusion["tp"], confusion["fp"], confusion["fn"]
    block = {
        "policy": policy.policy,
        "description": policy.describe(),
        "calibration": policy.calibrator.method,
        "threshold": policy.alert_threshold,
        "review_threshold": policy.review_threshold,
        "target_false_alarm_rate": policy.target_false_alarm_rate,
        "cost_ratio": policy.cost_ratio,
        "false_alarm_rate_per_device_day": far["false_alarm_rate_per_device_day"],
        "recall": summary["recall"],
        "mean_lead_time_days": summary["mean_lead_time_days"],
        "median_lead_time_days": summary["median_lead_time_days"],
        "lead_time": summary,
        "device_days": far,
        "uncertain_device_days": uncertain,
        "window_recall": tp / (tp + fn) if tp + fn else None,
        "window_precision": tp / (tp + fp) if tp + fp else None,
        "confusion_matrix": confusion,
        "validation": policy.validation,
        "reliability": {"raw": curves[score_col], "calibrated": curves["probability"]},
        "log_profile": {"raw": profiles[score_col], "calibrated": profiles["probability"]},
        "operating_points": points,
    }
    log.info(
        "alerting on test: threshold %.4g, false alarms %s per device-day, %d of %d failed devices alerted in time "
        "(recall %s), mean lead time %s days",
        policy.alert_threshold,
        _fmt(block["false_alarm_rate_per_device_day"]),
        summary["detected"],
        summary["failed_devices"],
        _fmt(block["recall"]),
        _fmt(block["mean_lead_time_days"]),
    )
    return block, leads


def at_policy(block: dict[str, Any]) -> dict[str, Any]:
    """The operating point of an `alerting` block: what a model does at its policy on the test split."""
    lead = block.get("lead_time", {})
    return {
        "threshold": block.get("threshold"),
        "false_alarm_rate_per_device_day": block.get("false_alarm_rate_per_device_day"),
        **{k: lead.get(k) for k in ("detected", "failed_devices", "recall")},
        **{k: lead.get(k) for k in ("mean_lead_time_days", "median_lead_time_days")},
    }


def policy_points(
    policies: dict[str, AlertPolicy], scored: DataFrame, *, failures: DataFrame | None
) -> dict[str, dict[str, Any]]:
    """`at_policy` of each model's policy on its rows of `scored` (model, device_id, window_end, label, score),
    without the rest of `evaluate_policy`: every model in the same few Spark jobs."""
    calibrators = {name: policy.calibrator for name, policy in policies.items()}
    thresholds = {name: policy.alert_threshold for name, policy in policies.items()}
    applied = (
        scored.where(F.col(MODEL).isin(list(policies)))
        .withColumn("probability", calibrated_column(calibrators, model_col=MODEL))
        .cache()
    )
    try:
        rates = _grouped_rates(device_days(applied, by=[MODEL]), [by_model(thresholds)], by=[MODEL])
        leads: dict[str, list[float | None]] = {name: [] for name in policies}
        if failures is not None:
            rows = first_alerts(applied, failures, [F.col("probability") >= by_model(thresholds)], by=[MODEL])
            for row, record in zip(rows, lead_time_records(rows)):
                leads[row[MODEL]].append(record["lead_time_days"])
    finally:
        applied.unpersist()
    empty = _rate_record(0, 0, 0, 0)
    return {
        name: at_policy(
            {"threshold": thresholds[name], **rates.get((name,), [empty])[0], "lead_time": summarize(leads[name])}
        )
        for name in policies
    }


def policies_by_model(
    val_scores: DataFrame,
    test_predictions: DataFrame,
    config: AlertingConfig,
    *,
    failures: DataFrame | None,
    calibrators: dict[str, Calibrator] | None = None,
) -> tuple[dict[str, AlertPolicy], dict[str, dict[str, Any]]]:
    """Each model's alert policy, fitted on its validation scores (`val_scores`: model, device_id, window_end, label,
    score), and what it does at that policy: `at_policy` on its test predictions (`test_predictions` where `model` is
    its name), with the validation split's own figures under "validation" (optimistic there: the thresholds were
    chosen on it). All models are fitted and measured together, in the same Spark jobs; `calibrators`: as for
    `fit_policies`."""
    policies = fit_policies(val_scores, config, calibrators=calibrators)
    on_validation = policy_points(policies, val_scores, failures=failures)
    on_test = policy_points(policies, test_predictions, failures=failures)
    points = {}
    for name, policy in policies.items():
        on_validation[name]["alerted_positive_device_days"] = policy.validation["alerted_positive_device_days"]
        points[name] = {**on_test[name], "validation": on_validation[name]}
    return policies, points


def best_on_validation(points: dict[str, dict[str, Any]]) -> str:
    """The model whose policy alerts the most failed devices of the validation split; ties go to the fewest false
    alarms there (the most margin to keep the target on unseen devices), then to the most positive device-days
    alerted, then to the LSTM."""

    def merit(name: str) -> tuple:
        v = points[name]["validation"]
        caught = v["detected"] if v["failed_devices"] else 0
        far = v["false_alarm_rate_per_device_day"] or 0.0
        return caught or 0, -far, v["alerted_positive_device_days"] or 0, name == "lstm"

    return max(points, key=merit)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


# ---------------------------------------------------------------------------------------------------- the run step

POLICY_FILE = "policy.json"  # in the run's alerting folder (RunLayout.POLICY)
LEAD_TIMES_FILE = "lead_times.json"


def run_alerting(
    spark,
    policy: AlertPolicy,
    test_predictions: DataFrame,
    run_dir: str,
    config,
    *,
    scoring: dict[str, Any],
    failures: DataFrame | None,
) -> dict[str, Any]:
    """Evaluate the alert policy on its model's test predictions and write `run_dir/alerting/`, atomically:
    policy.json (the policy and `scoring`, what score_fleet needs to build, normalise and score windows the same
    way: model, length, interval, features, normalisation) and lead_times.json. Returns the `alerting` block."""
    if failures is None:
        log.warning("no failure list given: lead times are not computed")
    block, leads = evaluate_policy(policy, test_predictions, failures=failures, bins=config.alerting.reliability_bins)
    with fs_atomic(spark, RunLayout(run_dir).alerting) as tmp:
        write_json(spark, f"{tmp}/{POLICY_FILE}", {**policy.to_dict(), "scoring": scoring})
        write_json(spark, f"{tmp}/{LEAD_TIMES_FILE}", leads)
    return block


def load_policy(spark, uri: str) -> tuple[AlertPolicy, dict[str, Any]]:
    """(policy, scoring info) from a policy.json written by `run_alerting` or `save_policy`."""
    data = read_json(spark, uri)
    return AlertPolicy.from_dict(data), data.get("scoring", {})


def save_policy(spark, uri: str, policy: AlertPolicy, scoring: dict[str, Any]) -> None:
    write_json(spark, uri, {**policy.to_dict(), "scoring": scoring})
