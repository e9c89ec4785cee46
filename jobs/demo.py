"""The whole telemetry chain on a generated default fleet: generate, ingest, window, train, evaluate, TF import.

make demo                # runs/<timestamp>/
make demo OUT=/tmp/run   # or python -m jobs.demo --out /tmp/run
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

from pipelines.chain import evaluate_run, train_run
from pipelines.cli import Steps, job_parser, report, run
from pipelines.config import as_dict
from pipelines.context import driver_peak_memory_mb, get_or_create
from pipelines.evaluation.report import write_report
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.telemetry import sources
from pipelines.telemetry.generate import generate_fleet
from pipelines.telemetry.ingest import ingest
from pipelines.telemetry.schema import WindowSpec
from pipelines.telemetry.windows import build_window_dataset
from pipelines.tfimport.demo_step import train_export_import_evaluate

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")

parser = job_parser(
    __doc__.splitlines()[0], sections=("generate", "ingest", "windows", "train", "evaluate", "tfimport")
)
parser.add_argument("--out", default=None, help="run folder (default: runs/<UTC timestamp>)")
parser.writes(
    "out",
    "fleet",
    "ingest",
    "windows",
    RunLayout.PREDICTIONS,
    RunLayout.ALERTING,
    RunLayout.REPORT,
    fallback=lambda args: f"runs/{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}",
)
parser.writes(
    "out", "config.json", RunLayout.MODEL, RunLayout.TRAINING, "tf_model", RunLayout.METRICS, mode="overwrite"
)
parser.writes("out", RunLayout.CHECKPOINTS, RunLayout.SUMMARIES, mode="append")


def run_demo(spark, out: str, config) -> dict:
    """Every step into `out`; returns the metrics written to `out/metrics.json`."""
    step = Steps()

    fs.write_json(spark, f"{out}/config.json", as_dict(config))
    fleet = step("generate", generate_fleet, spark, config.generate, f"{out}/fleet")
    ingest_counts = step("ingest", ingest, spark, f"{out}/fleet", f"{out}/ingest", config.ingest)

    def windows_step():
        readings = sources.read_parquet(spark, f"{out}/ingest/clean", "clean readings")
        failures = sources.read_failures(spark, f"{out}/fleet/failures.csv")
        windows, stats = build_window_dataset(
            readings, failures, config=config.windows, interval_minutes=config.ingest.interval_minutes
        )
        return sources.write_windows(spark, windows, stats, f"{out}/windows", spec=WindowSpec.of(config))

    window_counts = step("windows", windows_step)
    training = step("train", train_run, spark, f"{out}/windows", out, config)
    metrics = step(
        "evaluate", evaluate_run, spark, f"{out}/windows", out, config, failures_uri=f"{out}/fleet/failures.csv"
    )
    spec = sources.read_window_spec(spark, f"{out}/windows")
    metrics["tf_imported"] = step(
        "tf_import",
        train_export_import_evaluate,
        spark,
        f"{out}/windows",
        out,
        length=spec.length,
        n_features=spec.n_features,
        threshold=config.evaluate.threshold,
        epochs=config.tfimport.demo_epochs,
        batch_size=config.tfimport.demo_batch_size,
        hidden=config.tfimport.demo_hidden,
        max_train_windows=config.tfimport.demo_max_train_windows,
    )

    metrics.update(
        counts={
            "fleet": fleet,
            "ingest": ingest_counts,
            "windows": window_counts,
            "training": {k: training[k] for k in ("epochs", "iterations", "batch_size")},
        },
        timings_s=step.with_total(),
        driver_memory=driver_peak_memory_mb(spark),
    )
    fs.write_json(spark, RunLayout(out).metrics, metrics)
    write_report(spark, out)
    return metrics


def summary_table(metrics: dict) -> str:
    lines = [f"{'model':<22}" + "".join(f"{k:>11}" for k in SUMMARY_KEYS)]
    for name, label in (
        ("test", "BigDL LSTM"),
        ("tf_imported", "TF LSTM in BigDL"),
        ("baseline", "last-reading LogReg"),
    ):
        row = metrics[name]
        lines.append(f"{label:<22}" + "".join(f"{_fmt(row[k]):>11}" for k in SUMMARY_KEYS))
    return "\n".join(lines)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(args, config) -> None:
    started = time.perf_counter()
    out = args.out  # the parser's fallback: runs/<UTC timestamp>
    spark = get_or_create(master=args.master, app_name="demo")
    metrics = run_demo(spark, out, config)
    wall = time.perf_counter() - started
    memory = metrics["driver_memory"]
    report(summary_table(metrics))
    report(
        f"\nrun folder: {out}\nwall time: {wall:.0f} s "
        f"(steps: {', '.join(f'{k} {v:.0f} s' for k, v in metrics['timings_s'].items())})\n"
        f"driver peak memory: JVM heap {memory['jvm_heap_peak_mb']:.0f} MB, Python {memory['python_peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    sys.exit(run(main, parser))
