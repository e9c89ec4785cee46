"""Test-split evaluation of the LSTM beside the last-reading baseline, on the cluster."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config import PipelineConfig
from pipelines.evaluation.baseline import baseline_predictions, fit_baseline
from pipelines.evaluation.metrics import binary_metrics
from pipelines.models.train import predict_scores
from pipelines.telemetry.schema import WindowSpec

log = logging.getLogger(__name__)


def evaluate_models(
    model, train: DataFrame, test: DataFrame, *, spec: WindowSpec, config: PipelineConfig
) -> tuple[dict, DataFrame]:
    """Metrics of the LSTM (`"test"`) and of the baseline (`"baseline"`) on `test`, and all predictions.

    The baseline is a logistic regression on each window's last reading, fitted on `train`.
    Predictions are `model, device_id, window_end, label, score`.
    """
    n_features = spec.n_features
    lstm = predict_scores(
        model, test, length=spec.length, n_features=n_features, batch_size=config.evaluate.batch_size
    ).withColumn("model", F.lit("lstm"))
    baseline_model = fit_baseline(train, n_features=n_features, class_weights=config.train.class_weights)
    baseline = baseline_predictions(baseline_model, test, n_features=n_features).withColumn("model", F.lit("baseline"))
    predictions = lstm.unionByName(baseline).cache()
    threshold = config.evaluate.threshold
    metrics = {
        "test": binary_metrics(predictions.where("model = 'lstm'"), threshold=threshold),
        "baseline": binary_metrics(predictions.where("model = 'baseline'"), threshold=threshold),
    }
    log.info("test PR-AUC: LSTM %s, last-reading baseline %s", metrics["test"]["pr_auc"], metrics["baseline"]["pr_auc"])
    return metrics, predictions
