"""The whole telemetry chain on a generated default fleet: generate, then the scheduled chain, with a TF import beside.

make demo                # runs/<timestamp>/
make demo OUT=/tmp/run   # or python -m jobs.demo --out /tmp/run
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

from pipelines import chain
from pipelines.cli import Steps, job_parser, report, run
from pipelines.config import as_dict
from pipelines.context import driver_peak_memory_mb, get_or_create
from pipelines.evaluation.report import MODEL_LABELS
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.registry import TELEMETRY_CHAIN
from pipelines.telemetry import sources
from pipelines.telemetry.generate import generate_fleet
from pipelines.tfimport.demo_step import train_export_import_evaluate

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")

parser = job_parser(
    __doc__.splitlines()[0], sections=("generate", "ingest", "windows", "train", "evaluate", "alerting", "tfimport")
)
parser.add_argument("--out", default=None, help="run folder (default: runs/<UTC timestamp>)")
MODEL_RUN = "lstm"  # the model's run folder inside --out, as in pipelines.registry
parser.writes(
    "out",
    "fleet",
    "ingest",
    "windows",
    "tf_model",
    fallback=lambda args: f"runs/{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}",
)
parser.writes("out", "config.json", mode="overwrite")
parser.writes(
    "out",
    *(
        f"{MODEL_RUN}/{part}"
        for part in (RunLayout.PREDICTIONS, RunLayout.ALERTING, RunLayout.RISK, RunLayout.REPORT, RunLayout.MODEL)
    ),
    f"{MODEL_RUN}/{RunLayout.TRAINING}",
    f"{MODEL_RUN}/{RunLayout.METRICS}",
    mode="overwrite",
)
parser.writes(
    "out",
    f"{MODEL_RUN}/{RunLayout.CHECKPOINTS}",
    f"{MODEL_RUN}/{RunLayout.SUMMARIES}",
    f"{MODEL_RUN}/{RunLayout.MEMBERS}",
    mode="append",
)


def run_demo(spark, out: str, config) -> dict:
    """Generate a fleet into `out/fleet`, run the scheduled chain (`pipelines.registry`) on it into `out`, and the
    TensorFlow leg beside it; returns the metrics written to the model run's metrics.json."""
    step = Steps()
    fs.write_json(spark, f"{out}/config.json", as_dict(config))
    fleet = f"{out}/fleet"
    results = {"generate": step("generate", generate_fleet, spark, config.generate, fleet)}
    run = RunLayout(f"{out}/{MODEL_RUN}")
    for chain_step in TELEMETRY_CHAIN:
        if chain_step.name == "report":  # the TensorFlow leg and the counts go into metrics.json before the report
            run.merge_metrics(spark, tf_leg(spark, step, out, config, results))
        function = getattr(chain, f"{chain_step.name}_run")
        results[chain_step.name] = step(
            chain_step.name, function, spark, config, **chain_step.keywords(input=fleet, run=out)
        )
    return run.merge_metrics(spark, {"timings_s": step.with_total(), "driver_memory": driver_peak_memory_mb(spark)})


def tf_leg(spark, step: Steps, out: str, config, results: dict) -> dict:
    """A TensorFlow LSTM trained on the driver, frozen, imported into BigDL and evaluated; with the chain's counts."""
    spec = sources.read_window_spec(spark, f"{out}/windows")
    tf_imported = step(
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
    training = results["train"]
    return {
        "tf_imported": tf_imported,
        "counts": {
            "fleet": results["generate"],
            "ingest": results["ingest"],
            "windows": results["windows"],
            "training": {k: training[k] for k in ("epochs", "iterations", "batch_size")},
            "risk": results["score"]["by_band"],
        },
    }


def summary_table(metrics: dict) -> str:
    lines = [f"{'model':<22}" + "".join(f"{k:>11}" for k in SUMMARY_KEYS)]
    rows = [
        (MODEL_LABELS["lstm"], metrics["test"]),
        ("TF LSTM in BigDL", metrics["tf_imported"]),
        (MODEL_LABELS["baseline"], metrics["baseline"]),
        *((MODEL_LABELS.get(name, name), row) for name, row in metrics.get("peers", {}).items()),
    ]
    for label, row in rows:
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
        f"\nrun folder: {out} (the model's run: {out}/{MODEL_RUN})\nwall time: {wall:.0f} s "
        f"(steps: {', '.join(f'{k} {v:.0f} s' for k, v in metrics['timings_s'].items())})\n"
        f"driver peak memory: JVM heap {memory['jvm_heap_peak_mb']:.0f} MB, Python {memory['python_peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    sys.exit(run(main, parser))
