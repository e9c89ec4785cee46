"""The stacked model: the mean of its members' calibrated probabilities, each member calibrated on the validation
split by its own alert policy. Equal weights, so nothing more is fitted on the validation split than the members'
calibrations and the stack's own policy; it is evaluated beside its members and put in force when it is best there."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.evaluation.calibration import Calibrator, calibrated_column

STACK = "stack"


def stacked_scores(scores: DataFrame, calibrators: dict[str, Calibrator], *, keys: Sequence[str]) -> DataFrame:
    """`scores` (model, *keys, score) of the members named in `calibrators` -> (*keys, score): the mean of the
    members' calibrated probabilities, for the windows every member scored."""
    probability = calibrated_column(calibrators)
    return (
        scores.where(F.col("model").isin(list(calibrators)))
        .groupBy(*keys)
        .agg(F.avg(probability).alias("score"), F.count(F.lit(1)).alias("_members"))
        .where(F.col("_members") == len(calibrators))
        .drop("_members")
    )


def with_model(frames: dict[str, DataFrame], columns: Sequence[str]) -> DataFrame:
    """One frame of `columns` and `model` from frames by model name."""
    parts = [frame.select(*columns).withColumn("model", F.lit(name)) for name, frame in frames.items()]
    return reduce(DataFrame.unionByName, parts)
