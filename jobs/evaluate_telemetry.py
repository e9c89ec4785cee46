"""Evaluate the trained LSTM and the last-reading baseline on the test split; writes metrics.json.

    python -m jobs.evaluate_telemetry --windows OUT/windows --run-dir OUT/run
"""
from __future__ import annotations

import logging
import sys

from jobs.train_lstm import MODEL_DIR, MODEL_FILE
from pipelines.cli import InputError, job_parser, run
from pipelines.context import get_or_create
from pipelines.evaluation.alerting import ALERTING_DIR, run_alerting
from pipelines.evaluation.evaluate import evaluate_models
from pipelines.evaluation.report import REPORT_DIR, write_report
from pipelines.io import fs
from pipelines.models.train import load_model
from pipelines.telemetry import sources

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PREDICTIONS_DIR = "predictions"

parser = job_parser(__doc__.splitlines()[0], sections=("windows", "train", "evaluate"))
parser.add_argument("--windows", required=True, help="folder written by build_windows")
parser.add_argument("--run-dir", required=True, help="run folder holding model/ (from train_lstm)")
parser.add_argument("--failures", default=None, help="failure events CSV (device_id,failure_time): lead times")
parser.reads("windows")
parser.reads("run_dir", f"{MODEL_DIR}/{MODEL_FILE}")
parser.reads("failures")
parser.writes("run_dir", PREDICTIONS_DIR, ALERTING_DIR, REPORT_DIR)
parser.writes("run_dir", METRICS_FILE, mode="merge")


def evaluate_run(spark, windows_root: str, run_dir: str, config, failures_uri: str | None = None) -> dict:
    """Evaluate, write predictions, alerting and the report, and merge the figures into the run's metrics.json."""
    model_uri = f"{run_dir}/{MODEL_DIR}/{MODEL_FILE}"
    if not fs.exists(spark, model_uri):
        raise InputError(f"no trained model at {model_uri}: run train_lstm first")
    model = load_model(model_uri)
    metrics, predictions = evaluate_models(
        model,
        sources.read_windows(spark, windows_root, "train"),
        sources.read_windows(spark, windows_root, "test"),
        config=config,
    )
    with fs.atomic_output(spark, f"{run_dir}/{PREDICTIONS_DIR}") as tmp:
        predictions.write.partitionBy("model").parquet(tmp)
    metrics_uri = f"{run_dir}/{METRICS_FILE}"
    merged = fs.read_json(spark, metrics_uri) if fs.exists(spark, metrics_uri) else {}
    metrics["alerting"] = run_alerting(
        spark, model, windows_root, run_dir, config, model_uri=model_uri, failures_uri=failures_uri
    )
    merged.update(metrics)
    fs.write_json(spark, metrics_uri, merged)
    write_report(spark, run_dir)
    return metrics


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="evaluate_telemetry")
    metrics = evaluate_run(spark, args.windows, args.run_dir, config, failures_uri=args.failures)
    for name in ("test", "baseline"):
        log.info("%s: %s", name, {k: metrics[name][k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")})


if __name__ == "__main__":
    sys.exit(run(main, parser))
