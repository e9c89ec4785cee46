"""Peers of the LSTM on the same windows and splits: Spark ML models on a summary of each window.

Each window (length x n_features, row-major) is summarised per feature by its last value, minimum, maximum, mean and
change over the window (last minus first): what a careful analyst would hand a classic model. On that summary a
standardised logistic regression (`logistic_window`) and gradient-boosted trees (`gbt_window`) learn from the training
split, class-weighted as the LSTM is. They are reported beside the LSTM and the last-reading baseline, so that the
sequence model has to earn its keep.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import StandardScaler
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config import PEERS
from pipelines.evaluation.baseline import WEIGHT_COL, resolve_class_weights

log = logging.getLogger(__name__)

SUMMARY_COL = "summary"
STATISTICS = ("last", "min", "max", "mean", "change")


def summary_names(features: Sequence[str]) -> list[str]:
    """The summary's entries in order: `<feature>_<statistic>`."""
    return [f"{name}_{stat}" for name in features for stat in STATISTICS]


def window_summary(df: DataFrame, *, length: int, n_features: int, features_col: str = "features") -> DataFrame:
    """Add `summary` (a vector of len(STATISTICS) values per feature, see `summary_names`) to each window's row,
    computed in the executors' JVMs (`pipelines.ml.WindowSummary`)."""
    if length < 1 or n_features < 1:
        raise ValueError("length and n_features must be positive")
    from pipelines.models.extension import register_window_summary

    name = register_window_summary(df.sparkSession)
    checked = F.call_function(name, F.col(features_col), F.lit(length), F.lit(n_features))
    return df.withColumn(SUMMARY_COL, array_to_vector(checked))


class WindowSummary(Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """`window_summary` as a Spark ML Transformer, the peers' first stage; windows that already hold their `summary`
    (several peers scoring the same windows) are passed through."""

    length = Param(Params._dummy(), "length", "time steps per window", TypeConverters.toInt)
    nFeatures = Param(Params._dummy(), "nFeatures", "values per time step", TypeConverters.toInt)

    def __init__(self, **params) -> None:
        super().__init__()
        self._set(**params)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        if SUMMARY_COL in dataset.columns:
            return dataset
        return window_summary(dataset, length=self.getOrDefault("length"), n_features=self.getOrDefault("nFeatures"))


def fit_peers(
    train: DataFrame,
    *,
    length: int,
    n_features: int,
    peers: Sequence[str] = PEERS,
    class_weights: Sequence[float] | str | None = None,
    gbt_iterations: int = 30,
    seed: int = 0,
) -> dict[str, PipelineModel]:
    """Each peer named in `peers`, fitted on the training windows: PipelineModels (`WindowSummary`, the model) that
    score windows with `probability_scores`."""
    summarize = WindowSummary(length=length, nFeatures=n_features)
    data = summarize.transform(train).withColumn("label", F.col("label").cast("double"))
    weights = resolve_class_weights(data, class_weights)
    weight_col = ""
    if weights is not None:
        data = data.withColumn(WEIGHT_COL, F.when(F.col("label") == 1, F.lit(weights[1])).otherwise(F.lit(weights[0])))
        weight_col = WEIGHT_COL
    stages: dict[str, list[Any]] = {
        "logistic_window": [
            StandardScaler(inputCol=SUMMARY_COL, outputCol="scaled", withMean=True),
            LogisticRegression(featuresCol="scaled", regParam=0.01, maxIter=50, weightCol=weight_col or None),
        ],
        "gbt_window": [
            GBTClassifier(
                featuresCol=SUMMARY_COL, maxIter=gbt_iterations, maxDepth=4, seed=seed, weightCol=weight_col or None
            )
        ],
    }
    data = data.cache()

    def fit(name: str) -> PipelineModel:
        model = Pipeline(stages=[summarize, *stages[name]]).fit(data)
        log.info("fitted peer %s on %s", name, "weighted classes" if weight_col else "unweighted classes")
        return model

    try:  # side by side: their many small Spark jobs overlap
        with ThreadPoolExecutor(max_workers=max(len(peers), 1)) as pool:
            return dict(zip(peers, pool.map(fit, peers)))
    finally:
        data.unpersist()
