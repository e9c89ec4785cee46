"""The telemetry chain's train and evaluate steps on a run folder (`RunLayout`): what the jobs, the demos and the
schedulers run."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from pipelines.errors import InputError
from pipelines.evaluation.alerting import run_alerting
from pipelines.evaluation.evaluate import evaluate_models
from pipelines.evaluation.report import write_report
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.models.train import load_model, save_model, train_lstm
from pipelines.telemetry import sources

log = logging.getLogger(__name__)


def train_run(spark: SparkSession, windows_root: str, run_dir: str, config, *, resume: bool = False) -> dict:
    """Train on the train split, validate on val, save the model; returns the training record (training.json)."""
    run = RunLayout(run_dir)
    spec = sources.read_window_spec(spark, windows_root)
    result = train_lstm(
        spark,
        sources.read_windows(spark, windows_root, "train"),
        sources.read_windows(spark, windows_root, "val"),
        config=config.train,
        length=spec.length,
        n_features=spec.n_features,
        run_dir=run_dir,
        resume=resume,
    )
    save_model(result.model, run.model)
    record = {
        "epochs": result.epochs,
        "iterations": result.iterations,
        "batch_size": result.batch_size,
        "train_loss": result.train_loss,
        "validation": result.validation,
        "learning_rate": result.learning_rate,
    }
    fs.write_json(spark, run.training, record)
    log.info("trained %d epochs (%d iterations); model in %s", result.epochs, result.iterations, run.model)
    return record


def evaluate_run(spark: SparkSession, windows_root: str, run_dir: str, config, failures_uri: str | None = None) -> dict:
    """Evaluate, write predictions, alerting and the report, and merge the figures into the run's metrics.json."""
    run = RunLayout(run_dir)
    if not fs.exists(spark, run.model):
        raise InputError(f"no trained model at {run.model}: run train_lstm first")
    model = load_model(run.model)
    spec = sources.read_window_spec(spark, windows_root)
    metrics, predictions = evaluate_models(
        model,
        sources.read_windows(spark, windows_root, "train"),
        sources.read_windows(spark, windows_root, "test"),
        spec=spec,
        config=config,
    )
    with fs.atomic_output(spark, run.predictions) as tmp:
        predictions.write.partitionBy("model").parquet(tmp)
    metrics["alerting"] = run_alerting(
        spark, model, windows_root, run_dir, config, spec=spec, model_uri=run.model, failures_uri=failures_uri
    )
    run.merge_metrics(spark, metrics)
    write_report(spark, run_dir)
    return metrics
