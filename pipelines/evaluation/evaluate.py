"""Test-split evaluation of the LSTM beside the last-reading baseline and the window-summary peers, on the cluster."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config import PipelineConfig
from pipelines.evaluation.baseline import fit_baseline, probability_scores
from pipelines.evaluation.metrics import binary_metrics
from pipelines.evaluation.peers import fit_peers, window_summary
from pipelines.models.train import predict_scores
from pipelines.telemetry.schema import WindowSpec

log = logging.getLogger(__name__)


def evaluate_models(
    model, train: DataFrame, test: DataFrame, *, spec: WindowSpec, config: PipelineConfig
) -> tuple[dict, DataFrame, dict[str, PipelineModel]]:
    """Metrics of the LSTM (`"test"`), of the baseline (`"baseline"`) and of each peer (`"peers"`) on `test`, all
    predictions (`model, device_id, window_end, label, score`), and the other models by name (Spark ML
    PipelineModels scoring windows with `probability_scores`).

    The baseline (a logistic regression on each window's last reading) and the peers (`pipelines.evaluation.peers`,
    `evaluate.peers`) are fitted on `train`, class-weighted as the LSTM is.
    """
    n_features, length = spec.n_features, spec.length
    lstm = predict_scores(
        model, test, length=length, n_features=n_features, batch_size=config.evaluate.batch_size
    ).withColumn("model", F.lit("lstm"))
    with ThreadPoolExecutor(max_workers=1) as pool:  # the baseline beside the peers
        baseline = pool.submit(fit_baseline, train, n_features=n_features, class_weights=config.train.class_weights)
        peers = fit_peers(
            train,
            length=length,
            n_features=n_features,
            peers=config.evaluate.peers,
            class_weights=config.train.class_weights,
            gbt_iterations=config.evaluate.gbt_iterations,
            seed=config.train.seed or 0,
        )
        others = {"baseline": baseline.result(), **peers}
    summarised = window_summary(test, length=length, n_features=n_features).cache() if peers else test
    predictions = lstm
    for name, fitted in others.items():
        predictions = predictions.unionByName(probability_scores(fitted, summarised).withColumn("model", F.lit(name)))
    predictions = predictions.cache()
    threshold = config.evaluate.threshold

    def of(name: str) -> dict:
        return binary_metrics(predictions.where(F.col("model") == name), threshold=threshold)

    metrics = {"test": of("lstm"), "baseline": of("baseline"), "peers": {name: of(name) for name in peers}}
    summarised.unpersist()  # the predictions, cached and counted above, hold what is needed of it
    log.info(
        "test PR-AUC: LSTM %s, last-reading baseline %s, %s",
        metrics["test"]["pr_auc"],
        metrics["baseline"]["pr_auc"],
        ", ".join(f"{name} {m['pr_auc']}" for name, m in metrics["peers"].items()) or "no peers",
    )
    return metrics, predictions, others
