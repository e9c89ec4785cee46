"""Evaluate an imported TensorFlow model on telemetry windows on the cluster, and check it against TensorFlow.

Scores: the BigDL LSTM outputs log-probabilities (score = exp(out[1])); imported models usually end in a
Softmax (score = out[1]) or a single Sigmoid (score = out[0]). The kind is read from the graph's last op
(`ImportedModel.output_kind`) or given explicitly; a graph ending in anything else needs it given.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.evaluation.metrics import binary_metrics
from pipelines.models.stages import BigDLModel
from pipelines.tfimport import jvm
from pipelines.tfimport.errors import InputShapeError, TFImportError
from pipelines.tfimport.load import OUTPUT_KINDS, SIGMOID, ImportedModel

log = logging.getLogger(__name__)


def resolve_output_kind(imported: ImportedModel, output_kind: str | None) -> str:
    kind = output_kind or imported.output_kind
    if kind is None:
        raise TFImportError(
            f"the output {imported.outputs[0]} is produced by a {imported.output_op} op, which does not say whether it "
            f"gives probabilities: pass output_kind (one of {', '.join(OUTPUT_KINDS)})"
        )
    if kind not in OUTPUT_KINDS:
        raise TFImportError(f"unknown output kind {kind!r}; one of {', '.join(OUTPUT_KINDS)}")
    return kind


def check_windows_shape(imported: ImportedModel, windows: DataFrame, *, length: int, n_features: int) -> None:
    """Refuse before any Spark job when the graph or the data do not take (length, n_features) windows."""
    imported.check_input_shape((length, n_features))
    row = windows.select(F.size("features").alias("n")).first()
    if row is not None and row["n"] != length * n_features:
        raise InputShapeError(
            f"the windows' features hold {row['n']} values, not length x n_features = {length} x {n_features}"
        )


def predict_scores(
    imported: ImportedModel,
    windows: DataFrame,
    *,
    length: int,
    n_features: int,
    batch_size: int,
    output_kind: str | None = None,
) -> DataFrame:
    """`device_id, window_end, label, score` (probability of failure) computed on the executors."""
    kind = resolve_output_kind(imported, output_kind)
    check_windows_shape(imported, windows, length=length, n_features=n_features)
    stage = BigDLModel(imported.model, featureShape=[length, n_features], batchSize=batch_size, outputKind=kind)
    with jvm.distributed(imported.model):  # the one broadcast happens here, the scores when the frame is read
        scored = jvm.call(
            "predicting with the imported model",
            stage.transform,
            windows.select("device_id", "window_end", "label", "features"),
        )
    return scored.select("device_id", "window_end", "label", "score")


def top1_accuracy(predictions: DataFrame, output_kind: str) -> float | None:
    """The share of windows whose most probable class is their label, from the scores already computed (no second
    pass of the model over the data): for the two-class outputs the windows' 0/1 labels go with, the most probable
    class is 1 exactly when its probability is above 0.5. None for a single-sigmoid output."""
    if output_kind == SIGMOID:
        return None
    row = predictions.agg(F.avg(((F.col("score") > 0.5).cast("int") == F.col("label")).cast("double"))).first()
    return None if row is None or row[0] is None else float(row[0])


def evaluate_imported(
    imported: ImportedModel,
    windows: DataFrame,
    *,
    length: int,
    n_features: int,
    batch_size: int,
    threshold: float = 0.5,
    output_kind: str | None = None,
) -> tuple[dict[str, Any], DataFrame]:
    """`binary_metrics` of the imported model on `windows` (same keys as the BigDL LSTM's), and its predictions."""
    predictions = predict_scores(
        imported, windows, length=length, n_features=n_features, batch_size=batch_size, output_kind=output_kind
    ).cache()
    metrics = binary_metrics(predictions, threshold=threshold)
    log.info(
        "imported model: PR-AUC %s, ROC-AUC %s on %d windows", metrics["pr_auc"], metrics["roc_auc"], metrics["count"]
    )
    return metrics, predictions
