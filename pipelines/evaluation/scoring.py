"""Fleet scoring: every device's latest window, a pluggable scorer, the alert policy, a risk table.

A scorer is any function `DataFrame[device_id, window_end, features] -> DataFrame[device_id, window_end, score]`
with score the probability-like output of a model (higher = more likely to fail); it runs on the executors.
`bigdl_scorer` wraps a trained BigDL model (log-probabilities out, as `pipelines.models.lstm` builds them),
`stack_scorer` the stacked model (`pipelines.evaluation.stacking`), `tf_scorer` a TensorFlow graph imported into
BigDL (`pipelines.tfimport`), and `load_scorer` any
"module:function" factory, so another team's model plugs in without changes here.

The latest window of a device is its last `length` readings when they all belong to its last segment (no gap too
long to fill); a device with less history is listed as `insufficient_history` and not scored. Windows are normalised
with the statistics the model was trained with (the `scoring` block of alerting/policy.json).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.evaluation.alerting import ALERT, OK, UNCERTAIN, AlertPolicy
from pipelines.evaluation.baseline import probability_scores
from pipelines.evaluation.calibration import Calibrator
from pipelines.evaluation.stacking import stacked_scores, with_model
from pipelines.io import fs
from pipelines.telemetry.schema import MASK_FEATURE, padded_steps

log = logging.getLogger(__name__)

Scorer = Callable[[DataFrame], DataFrame]
INSUFFICIENT = "insufficient_history"
RISK_TABLE_DIR, RISK_SUMMARY_FILE = "table", "summary.json"
RISK_COLUMNS = [
    "device_id",
    "model",
    "window_end",
    "last_reading",
    "history_readings",
    "score",
    "probability",
    "band",
    "alert",
    "reason",
    "scored_by",
]


# ---------------------------------------------------------------------------------------------------- scorers


def bigdl_scorer(model, *, length: int, n_features: int, batch_size: int) -> Scorer:
    """Scores from a BigDL model giving log-probabilities of (healthy, failing): score = exp(out[1])."""
    from pipelines.models.train import predict_scores

    def score(windows: DataFrame) -> DataFrame:
        scored = predict_scores(
            model, windows.withColumn("label", F.lit(0)), length=length, n_features=n_features, batch_size=batch_size
        )
        return scored.select("device_id", "window_end", "score")

    return score


def spark_ml_scorer(model) -> Scorer:
    """Scores from a Spark ML classifier over windows (the baseline's or a peer's PipelineModel): P(class 1)."""

    def score(windows: DataFrame) -> DataFrame:
        return probability_scores(model, windows).select("device_id", "window_end", "score")

    return score


def stack_scorer(members: dict[str, tuple[Scorer, Calibrator]]) -> Scorer:
    """Scores of the stacked model (`pipelines.evaluation.stacking`): the mean of its members' calibrated
    probabilities, each member scored by its own scorer."""

    def score(windows: DataFrame) -> DataFrame:
        scored = {name: scorer(windows) for name, (scorer, _) in members.items()}
        calibrators = {name: calibrator for name, (_, calibrator) in members.items()}
        keys = ["device_id", "window_end"]
        return stacked_scores(with_model(scored, [*keys, "score"]), calibrators, keys=keys)

    return score


def tf_scorer(
    spark: SparkSession,
    pb_uri: str,
    *,
    length: int,
    n_features: int,
    batch_size: int,
    bin_uri: str | None = None,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    output_kind: str | None = None,
) -> Scorer:
    """Scores from a TensorFlow graph imported into BigDL with `pipelines.tfimport` (Softmax, LogSoftmax or
    Sigmoid output; see `pipelines.tfimport.evaluate`)."""
    from pipelines.tfimport.evaluate import predict_scores
    from pipelines.tfimport.load import import_tensorflow_model

    imported = import_tensorflow_model(pb_uri, inputs, outputs, bin_uri, spark=spark, output_kind=output_kind)

    def score(windows: DataFrame) -> DataFrame:
        scored = predict_scores(
            imported, windows.withColumn("label", F.lit(0)), length=length, n_features=n_features, batch_size=batch_size
        )
        return scored.select("device_id", "window_end", "score")

    return score


def openvino_scorer(
    spark: SparkSession,
    model_uri: str,
    *,
    length: int,
    n_features: int,
    batch_size: int,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
) -> Scorer:
    """Scores from OpenVINO on the executors (`pipelines.openvino_ir`): `model_uri` is an IR folder written by
    `jobs.export_openvino` or a frozen TensorFlow graph, converted here."""
    from pipelines import openvino_ir

    ir = openvino_ir.ir_for(model_uri, spark, inputs=inputs, outputs=outputs)
    ir.check_window_shape(length, n_features)

    def score(windows: DataFrame) -> DataFrame:
        keep = ("device_id", "window_end")
        return openvino_ir.score_windows(
            ir, windows, length=length, n_features=n_features, batch_size=batch_size, keep=keep
        )

    return score


def load_scorer(spec: str, **kwargs: Any) -> Scorer:
    """The scorer made by the factory named "package.module:function", called with `kwargs` (spark, run_dir,
    length, n_features, batch_size)."""
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"a scorer is named 'package.module:function', not {spec!r}")
    factory = getattr(importlib.import_module(module_name), func_name)
    return factory(**kwargs)


# ---------------------------------------------------------------------------------------------------- windows


def latest_windows(
    readings: DataFrame,
    *,
    features: list[str],
    length: int,
    normalization: dict[str, Any],
    min_history: int | None = None,
) -> DataFrame:
    """One row per device: `device_id, model, last_reading, history_readings, window_end, features, top_feature,
    top_z`. `features` (row-major, normalised) and `window_end` are null when the device's last segment holds
    fewer than `min_history` readings (default `length`); a shorter history than `length` is left-padded as the
    training windows were (`MASK_FEATURE`). `top_feature`/`top_z` name the most abnormal feature of the last
    reading."""
    names, means, stds = normalization["features"], normalization["mean"], normalization["std"]
    if list(names) != list(features):
        raise ValueError(f"the normalisation is for {names}, the model takes {features}")
    latest_first = Window.partitionBy("device_id").orderBy(F.col("timestamp").desc())
    value = {c: F.lit(1.0) if c == MASK_FEATURE else F.col(c) for c in features}
    z = [((value[c] - F.lit(m)) / F.lit(s)).cast("float") for c, m, s in zip(features, means, stds)]
    recent = (
        readings.select(
            "device_id",
            "model",
            "timestamp",
            "segment",
            F.array(*z).alias("_step"),
        )
        .withColumn("_rank", F.row_number().over(latest_first))
        .withColumn("_last_segment", F.first("segment").over(latest_first))
        .where((F.col("_rank") <= length) & (F.col("segment") == F.col("_last_segment")))
    )
    per_device = recent.groupBy("device_id").agg(
        F.max_by("model", "timestamp").alias("model"),
        F.max("timestamp").alias("last_reading"),
        F.count(F.lit(1)).alias("history_readings"),
        F.sort_array(F.collect_list(F.struct("timestamp", "_step"))).alias("_steps"),
    )
    complete = F.col("history_readings") >= (min_history or length)
    last_step = F.element_at(F.col("_steps"), -1)["_step"]
    signals = F.array(
        *[
            F.struct(F.abs(last_step[i]).alias("a"), F.lit(name).alias("n"), last_step[i].alias("z"))
            for i, name in enumerate(features)
            if name != MASK_FEATURE
        ]
    )
    top = F.array_max(signals)
    return per_device.select(
        "device_id",
        "model",
        "last_reading",
        "history_readings",
        F.when(complete, F.col("last_reading")).alias("window_end"),
        F.when(complete, padded_steps(F.col("_steps")["_step"], length=length, n_features=len(features))).alias(
            "features"
        ),
        top["n"].alias("top_feature"),
        top["z"].cast("double").alias("top_z"),
    )


# ---------------------------------------------------------------------------------------------------- the table


def score_fleet(
    readings: DataFrame, scorer: Scorer, policy: AlertPolicy, scoring: dict[str, Any], *, scored_by: str = "bigdl"
) -> DataFrame:
    """The risk table (`RISK_COLUMNS`): every device of `readings`, its latest window scored and banded.

    `scoring` is the `scoring` block of alerting/policy.json: `length`, `features`, `normalization`.
    """
    windows = latest_windows(
        readings,
        features=list(scoring["features"]),
        length=int(scoring["length"]),
        normalization=scoring["normalization"],
        min_history=scoring.get("min_history"),
    ).cache()
    complete = windows.where(F.col("features").isNotNull())
    scores = scorer(complete.select("device_id", "window_end", "features"))
    fleet_latest = F.max("last_reading").over(Window.partitionBy(F.lit(1)))
    table = (
        windows.join(scores.select("device_id", "score"), "device_id", "left")
        .withColumn("probability", policy.calibrator.column("score"))
        .withColumn("band", F.coalesce(policy.band("probability"), F.lit(INSUFFICIENT)))
        .withColumn("alert", F.col("band") == ALERT)
        .withColumn("_fleet_latest", fleet_latest)
    )
    signal = F.format_string("strongest signal %s (%+.1f sd)", F.col("top_feature"), F.col("top_z"))
    reason = (
        F.when(
            F.col("band") == INSUFFICIENT,
            F.format_string(
                "not scored: %d of %d readings since the last long gap",
                F.col("history_readings"),
                F.lit(int(scoring.get("min_history") or scoring["length"])),
            ),
        )
        .when(
            F.col("band") == ALERT,
            F.concat_ws(
                "; ",
                F.format_string("p=%.3f >= alert threshold %.3f", F.col("probability"), F.lit(policy.alert_threshold)),
                signal,
            ),
        )
        .when(
            F.col("band") == UNCERTAIN,
            F.concat_ws(
                "; ",
                F.format_string(
                    "p=%.3f in the review band [%.3f, %.3f): human review",
                    F.col("probability"),
                    F.lit(policy.review_threshold),
                    F.lit(policy.alert_threshold),
                ),
                signal,
            ),
        )
        .otherwise(
            F.format_string(
                "p=%.4f below the review threshold %.3f", F.col("probability"), F.lit(policy.review_threshold)
            )
        )
    )
    stale = F.when(
        F.col("last_reading") < F.col("_fleet_latest"),
        F.format_string(
            "no reading since %s (fleet latest %s)",
            F.date_format("last_reading", "yyyy-MM-dd HH:mm"),
            F.date_format("_fleet_latest", "yyyy-MM-dd HH:mm"),
        ),
    )
    return table.select(
        "device_id",
        "model",
        "window_end",
        "last_reading",
        F.col("history_readings").cast("int").alias("history_readings"),
        "score",
        "probability",
        "band",
        "alert",
        F.concat_ws("; ", reason, stale).alias("reason"),
        F.lit(scored_by).alias("scored_by"),
    )


def write_risk_table(
    spark: SparkSession, table: DataFrame, out_uri: str, *, policy: AlertPolicy, top: int = 20
) -> dict[str, Any]:
    """Write `out_uri/table/` (Parquet) and `out_uri/summary.json` atomically; return the summary.

    The summary: devices, count per band, when the fleet was last seen, the policy, and the `top` devices by
    probability (alerts first)."""
    with fs.atomic_output(spark, out_uri) as tmp:
        table.write.parquet(f"{tmp}/{RISK_TABLE_DIR}")
        written = spark.read.parquet(f"{tmp}/{RISK_TABLE_DIR}")
        by_band = {r["band"]: int(r["count"]) for r in written.groupBy("band").count().collect()}
        latest = written.agg(F.max("last_reading")).collect()[0][0]
        top_rows = (
            written.where(F.col("probability").isNotNull())
            .orderBy(F.col("probability").desc(), "device_id")
            .limit(top)
            .collect()
        )
        summary = {
            "devices": sum(by_band.values()),
            "by_band": {b: by_band.get(b, 0) for b in (ALERT, UNCERTAIN, OK, INSUFFICIENT)},
            "scored_at": latest.isoformat(sep=" ") if latest else None,
            "policy": policy.describe(),
            "alert_threshold": policy.alert_threshold,
            "review_threshold": policy.review_threshold,
            "top": [
                {
                    "device_id": r["device_id"],
                    "window_end": r["window_end"].isoformat(sep=" ") if r["window_end"] else None,
                    "score": r["score"],
                    "probability": r["probability"],
                    "band": r["band"],
                    "reason": r["reason"],
                }
                for r in top_rows
            ],
        }
        fs.write_json(spark, f"{tmp}/{RISK_SUMMARY_FILE}", summary)
    log.info("risk table of %d devices written to %s: %s", summary["devices"], out_uri, summary["by_band"])
    return summary
