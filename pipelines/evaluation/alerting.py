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
alerted negative device-days / negative device-days (for daily data, one window is one device-day).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.config import AlertingConfig
from pipelines.evaluation.calibration import Calibrator, fit_calibrator, log_profile, reliability
from pipelines.evaluation.lead_time import collect_lead_times, lead_days_at, summarize
from pipelines.evaluation.metrics import confusion_matrix_at
from pipelines.io.fs import atomic_output as fs_atomic
from pipelines.io.fs import read_json, write_json
from pipelines.layout import RunLayout
from pipelines.telemetry.schema import WindowSpec

log = logging.getLogger(__name__)

POLICIES = ("false_alarm_rate", "cost")
ALERT, UNCERTAIN, OK = "alert", "uncertain", "ok"
FAR_TARGETS = (0.001, 0.005, 0.01, 0.02, 0.05)


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


# ---------------------------------------------------------------------------------------------------- device-days


def device_days(predictions: DataFrame, *, prob_col: str = "probability", label_col: str = "label") -> DataFrame:
    """`device_id, day, probability, label`: per device and UTC day, the highest probability and label."""
    return predictions.groupBy("device_id", F.to_date("window_end").alias("day")).agg(
        F.max(prob_col).alias("probability"), F.max(F.col(label_col).cast("int")).alias("label")
    )


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
    grouped = days.groupBy(F.col(prob_col).cast("double").alias("t")).agg(
        F.sum(F.when(F.col("label") == 0, 1).otherwise(0)).cast("long").alias("neg")
    )
    negatives = F.sum("neg").over(Window.partitionBy(F.lit(1)))
    # One partition, one row per distinct probability (already aggregated on the executors).
    above = Window.orderBy(F.col("t").desc()).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cum = grouped.withColumn("fp", F.sum("neg").over(above)).withColumn("n_neg", negatives)
    row = cum.agg(
        *[
            F.min(F.when(F.col("fp") <= F.lit(float(target)) * F.col("n_neg"), F.col("t"))).alias(f"ok{i}")
            for i, target in enumerate(targets)
        ],
        F.max(F.when(F.col("neg") > 0, F.col("t"))).alias("max_negative"),
        F.max("n_neg").alias("n_neg"),
        F.max("t").alias("max_all"),
    ).collect()[0]
    if row is None or row["max_all"] is None:
        raise ValueError("threshold_for_false_alarm_rate: no predictions")
    if not row["n_neg"]:
        log.warning("no negative device-days: every probability is within the false-alarm target")
    out = []
    for i in range(len(targets)):
        # Thresholds from high to low only add false alarms: the valid ones are a prefix, its end is the answer.
        if row[f"ok{i}"] is not None:
            out.append(float(row[f"ok{i}"]))
        else:
            out.append(math.nextafter(float(row["max_negative"]), math.inf))
    return out


def false_alarm_rate(days: DataFrame, threshold: float, *, prob_col: str = "probability") -> dict[str, Any]:
    """Alerted negative device-days / negative device-days at `threshold`, with the counts."""
    return false_alarm_rates(days, [threshold], prob_col=prob_col)[0]


def false_alarm_rates(
    days: DataFrame, thresholds: Sequence[float], *, prob_col: str = "probability"
) -> list[dict[str, Any]]:
    """`false_alarm_rate` at several thresholds in one Spark job."""
    negative, positive = F.col("label") == 0, F.col("label") == 1
    row = days.agg(
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
    ).collect()[0]
    neg, pos = int(row["neg"] or 0), int(row["pos"] or 0)
    out = []
    for i in range(len(thresholds)):
        fa, tp = int(row[f"fa{i}"] or 0), int(row[f"tp{i}"] or 0)
        out.append(
            {
                "device_days": neg + pos,
                "negative_device_days": neg,
                "false_alarm_device_days": fa,
                "false_alarm_rate_per_device_day": fa / neg if neg else None,
                "positive_device_days": pos,
                "alerted_positive_device_days": tp,
            }
        )
    return out


# ---------------------------------------------------------------------------------------------------- the policy


def fit_policy(val_predictions: DataFrame, config: AlertingConfig, *, score_col: str = "score") -> AlertPolicy:
    """Calibrate on `val_predictions` (device_id, window_end, label, score) and choose the thresholds there."""
    check_config(config)
    calibrator = fit_calibrator(val_predictions, method=config.calibration, score_col=score_col)
    days = device_days(val_predictions.withColumn("probability", calibrator.column(score_col))).cache()
    try:
        by_target, review = thresholds_for_false_alarm_rates(
            days, [config.target_false_alarm_rate, config.review_false_alarm_rate]
        )
        alert = 1.0 / (1.0 + config.cost_ratio) if config.policy == "cost" else by_target
        review = min(review, alert)
        validation, at_review = false_alarm_rates(days, [alert, review])
        validation["review_false_alarm_rate_per_device_day"] = at_review["false_alarm_rate_per_device_day"]
    finally:
        days.unpersist()
    policy = AlertPolicy(
        calibrator=calibrator,
        alert_threshold=float(alert),
        review_threshold=float(review),
        policy=config.policy,
        target_false_alarm_rate=config.target_false_alarm_rate if config.policy == "false_alarm_rate" else None,
        review_false_alarm_rate=config.review_false_alarm_rate,
        cost_ratio=config.cost_ratio if config.policy == "cost" else None,
        validation=validation,
    )
    log.info("alert policy: %s", policy.describe())
    return policy


def operating_points(
    days: DataFrame,
    failures: DataFrame | None,
    scored: DataFrame,
    *,
    targets=FAR_TARGETS,
    prob_col: str = "probability",
) -> list[dict[str, Any]]:
    """For each target false-alarm rate: the threshold chosen on `days` itself, the rate reached, device recall and
    lead times (from the windows in `scored`). Chosen on the data it is measured on, so optimistic: for comparing
    models, not for setting policy. Three Spark jobs whatever the number of targets."""
    thresholds = thresholds_for_false_alarm_rates(days, targets, prob_col=prob_col)
    rates = false_alarm_rates(days, thresholds, prob_col=prob_col)
    leads = lead_days_at(scored, failures, thresholds, prob_col=prob_col) if failures is not None else None
    points = []
    for i, (target, t) in enumerate(zip(targets, thresholds)):
        point = {"target_false_alarm_rate": target, "threshold": t, **rates[i]}
        if leads is not None:
            point.update(summarize(leads[i]))
        points.append(point)
    return points


def evaluate_policy(
    policy: AlertPolicy,
    test_predictions: DataFrame,
    *,
    failures: DataFrame | None,
    bins: int = 10,
    score_col: str = "score",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The policy on the test split: the `alerting` block of metrics.json and the per-device lead times.

    Keys: threshold, review_threshold, false_alarm_rate_per_device_day, recall (failed devices alerted before their
    failure), mean/median lead time in days, the window-level confusion matrix at the alert threshold, reliability
    of the raw scores and of the calibrated probabilities (equal-width bins, and log-spaced bins for the figures), and
    optimistic operating points (see `operating_points`).
    Without `failures` the lead-time figures are None.
    """
    applied = policy.apply(test_predictions, score_col=score_col).cache()
    try:
        days = device_days(applied).cache()
        far = false_alarm_rate(days, policy.alert_threshold)
        uncertain = days.where(
            (F.col("probability") >= policy.review_threshold) & (F.col("probability") < policy.alert_threshold)
        ).count()
        leads = collect_lead_times(applied, failures) if failures is not None else []
        summary = summarize([r["lead_time_days"] for r in leads]) if failures is not None else summarize([])
        confusion = confusion_matrix_at(applied, policy.alert_threshold, score_col="probability")
        raw_reliability = reliability(applied, prob_col=score_col, bins=bins)
        calibrated_reliability = reliability(applied, prob_col="probability", bins=bins)
        profiles = {
            "raw": log_profile(applied, prob_col=score_col),
            "calibrated": log_profile(applied, prob_col="probability"),
        }
        points = operating_points(days, failures, applied)
        days.unpersist()
    finally:
        applied.unpersist()
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
        "reliability": {"raw": raw_reliability, "calibrated": calibrated_reliability},
        "log_profile": profiles,
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


def policy_point(policy: AlertPolicy, test_predictions: DataFrame, *, failures: DataFrame | None) -> dict[str, Any]:
    """`at_policy` of `policy` on the test predictions, without the rest of `evaluate_policy` (a few Spark jobs)."""
    applied = policy.apply(test_predictions).cache()
    try:
        far = false_alarm_rate(device_days(applied), policy.alert_threshold)
        leads = [r["lead_time_days"] for r in collect_lead_times(applied, failures)] if failures is not None else []
    finally:
        applied.unpersist()
    return at_policy({"threshold": policy.alert_threshold, **far, "lead_time": summarize(leads)})


def models_at_policy(
    val: DataFrame,
    test_predictions: DataFrame,
    scorers: dict[str, Any],
    config: AlertingConfig,
    *,
    lstm: dict[str, Any],
    failures: DataFrame | None,
) -> dict[str, Any]:
    """Every model at its own alert policy (fitted on its validation scores as the LSTM's is) on the test split:
    `{model: at_policy(...)}`; the LSTM's from its `alerting` block, the others' scored on `val` by `scorers`."""
    out = {"lstm": at_policy(lstm)}
    for name, score in scorers.items():
        scored = score(val).cache()
        try:
            policy = fit_policy(scored, config)
        finally:
            scored.unpersist()
        out[name] = policy_point(policy, test_predictions.where(F.col("model") == name), failures=failures)
    return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


# ---------------------------------------------------------------------------------------------------- the run step

POLICY_FILE = "policy.json"  # in the run's alerting folder (RunLayout.POLICY)
LEAD_TIMES_FILE = "lead_times.json"


def run_alerting(
    spark,
    model,
    windows_root: str,
    run_dir: str,
    config,
    *,
    spec: WindowSpec,
    model_uri: str,
    failures_uri: str | None = None,
) -> dict[str, Any]:
    """Fit the policy on the validation split, evaluate it on the run's test predictions, write `run_dir/alerting/`.

    `model` is the trained BigDL model (log-probabilities out); `run_dir/predictions/model=lstm` holds its test
    predictions (evaluate_telemetry writes them); `spec` is the windows' (their windows.json).
    Writes, atomically: alerting/policy.json (the policy and what score_fleet needs to build and normalise windows
    the same way: length, interval, features, normalisation, model path) and alerting/lead_times.json.
    Returns the `alerting` block of metrics.json.
    """
    from pipelines.models.train import predict_scores
    from pipelines.telemetry import sources

    length, n_features = spec.length, spec.n_features
    val = predict_scores(
        model,
        sources.read_windows(spark, windows_root, "val"),
        length=length,
        n_features=n_features,
        batch_size=config.evaluate.batch_size,
    ).cache()
    try:
        policy = fit_policy(val, config.alerting)
    finally:
        val.unpersist()
    test = spark.read.parquet(RunLayout(run_dir).predictions).where(F.col("model") == "lstm")
    failures = sources.read_failures(spark, failures_uri) if failures_uri else None
    if failures is None:
        log.warning("no failure list given: lead times are not computed")
    block, leads = evaluate_policy(policy, test, failures=failures, bins=config.alerting.reliability_bins)
    prefix = run_dir.rstrip("/") + "/"
    scoring = {
        "model": model_uri[len(prefix) :] if model_uri.startswith(prefix) else model_uri,
        "output_kind": "log_probabilities",
        "length": length,
        "interval_minutes": spec.interval_minutes,
        "features": list(spec.features),
        "normalization": sources.read_normalization(spark, windows_root),
        "horizon_days": spec.horizon_days,
    }
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
