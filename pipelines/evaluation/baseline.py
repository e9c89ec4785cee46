"""Last-reading baseline: logistic regression on the final reading of each window.

It sees one time step only, so it measures how much of the signal the sequence model adds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

LAST_COL = "last"
WEIGHT_COL = "class_weight"


def last_reading(df: DataFrame, *, n_features: int, features_col: str = "features") -> DataFrame:
    """Add a `last` vector column: the last `n_features` values of the row-major flattened window."""
    if n_features < 1:
        raise ValueError(f"n_features must be positive, got {n_features}")
    size = F.size(features_col)
    checked = F.when(
        (size < n_features) | (size % n_features != 0),
        F.raise_error(F.lit(f"{features_col} length is not a positive multiple of n_features={n_features}")),
    ).otherwise(F.col(features_col))
    return df.withColumn(LAST_COL, array_to_vector(F.slice(checked, -n_features, n_features)))


def fit_baseline(
    train_df: DataFrame,
    *,
    n_features: int,
    class_weights: Sequence[float] | str | None = None,
    reg_param: float = 0.01,
    max_iter: int = 100,
) -> PipelineModel:
    """Fit a standardised logistic regression on the last reading of each training window: a PipelineModel
    (`LastReading`, the regression) that scores windows with `probability_scores`.

    `class_weights`: None (unweighted), [w0, w1], or "balanced" (each class weighs n / (2 * n_class)).
    """
    lr = LogisticRegression(
        featuresCol=LAST_COL, labelCol="label", standardization=True, regParam=reg_param, maxIter=max_iter
    )
    data = train_df.withColumn("label", F.col("label").cast("double"))
    weights = resolve_class_weights(data, class_weights)
    if weights is not None:
        w0, w1 = weights
        log.info("baseline class weights: 0 -> %s, 1 -> %s", w0, w1)
        data = data.withColumn(WEIGHT_COL, F.when(F.col("label") == 1, F.lit(w1)).otherwise(F.lit(w0)))
        lr.setWeightCol(WEIGHT_COL)
    return Pipeline(stages=[LastReading(nFeatures=n_features), lr]).fit(data)


def probability_scores(model: PipelineModel, windows: DataFrame) -> DataFrame:
    """DataFrame[device_id, window_end, (label,) score]: a Spark ML classifier's probability of class 1 for each
    window (the label when `windows` has one)."""
    keys = ["device_id", "window_end", *(["label"] if "label" in windows.columns else [])]
    scored = model.transform(windows)
    return scored.select(*keys, vector_to_array(F.col("probability"))[1].alias("score"))


def resolve_class_weights(data: DataFrame, class_weights: Sequence[float] | str | None) -> tuple[float, float] | None:
    if class_weights is None:
        return None
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"class_weights must be None, [w0, w1] or 'balanced', got {class_weights!r}")
        row = data.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("label").cast("long")).alias("p")).collect()[0]
        n, p = int(row["n"]), int(row["p"] or 0)
        if p == 0 or p == n:
            raise ValueError("class_weights='balanced' needs both classes in the training data")
        return n / (2.0 * (n - p)), n / (2.0 * p)
    weights = tuple(float(w) for w in class_weights)
    if len(weights) != 2 or min(weights) <= 0:
        raise ValueError(f"class_weights must be two positive numbers, got {class_weights!r}")
    return weights[0], weights[1]


class LastReading(Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """`last_reading` as a Spark ML Transformer: `outputCol` (a vector) is the last `nFeatures` values of the
    flattened window in `inputCol`; the baseline's first stage in a Pipeline."""

    nFeatures = Param(Params._dummy(), "nFeatures", "values per time step", TypeConverters.toInt)

    def __init__(self, **params) -> None:
        super().__init__()
        self._setDefault(inputCol="features", outputCol=LAST_COL)
        self._set(**params)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        last = last_reading(dataset, n_features=self.getOrDefault("nFeatures"), features_col=self.getInputCol())
        return last.withColumnRenamed(LAST_COL, self.getOutputCol()) if self.getOutputCol() != LAST_COL else last
