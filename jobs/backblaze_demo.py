"""The whole chain on Backblaze drive statistics: ingest, window, train, evaluate with alerting, score, report.

    python -m jobs.backblaze_demo --input ../shared/data/backblaze --out runs/backblaze

Everything goes under --out: ingest/, windows/, model/, summaries/, predictions/, alerting/, risk/, report/ and
metrics.json (`test`, `baseline`, `alerting`, `counts`, `timings_s`, `notes`). The `backblaze` config section sets
the windows and the training (`--set backblaze.train.epochs=3`), `alerting` the policy.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from pipelines.chain import evaluate_run, score_run, train_run
from pipelines.cli import Steps, job_parser, report, run
from pipelines.config import as_dict
from pipelines.context import driver_peak_memory_mb, get_or_create
from pipelines.evaluation.report import write_report
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.telemetry import backblaze

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0], sections=("backblaze", "alerting"))
parser.add_argument("--input", required=True, help="Backblaze daily files: folder, file or glob (*.csv, *.csv.gz)")
parser.add_argument("--out", default=None, help="run folder (default: runs/backblaze-<UTC timestamp>)")
parser.reads("input")
parser.writes(
    "out",
    "ingest",
    "windows",
    RunLayout.PREDICTIONS,
    RunLayout.ALERTING,
    RunLayout.RISK,
    RunLayout.REPORT,
    fallback=lambda args: f"runs/backblaze-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}",
)
parser.writes("out", "config.json", RunLayout.MODEL, RunLayout.TRAINING, RunLayout.METRICS, mode="overwrite")
parser.writes("out", RunLayout.CHECKPOINTS, RunLayout.SUMMARIES, mode="append")


def data_notes(counts: dict, window_counts: dict, config) -> list[str]:
    """What a Backblaze run of this size can and cannot show, from its own counts."""
    bb = config.backblaze
    first, last = counts["first_day"], counts["last_day"]
    days = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days + 1 if first and last else 0
    notes = [
        f"The data cover {days} days ({first} to {last}) of {counts['devices']:,} drives, {counts['failed_devices']} of "
        f"which failed. A window needs {bb.window_days} days of history, so no alert can come earlier than day "
        f"{bb.window_days} and no lead time can exceed {max(days - bb.window_days, 0)} days; the labels "
        f"(fails within {bb.horizon_days:g} days) train the model to warn at most about {bb.horizon_days:g} days ahead. "
        "Published lead times of 10 to 60 days come from years of data and cannot be confirmed or refuted here.",
    ]
    empty = [
        name for name, a in counts["attributes"].items() if a["files_absent"] + a["files_empty"] == counts["files"]
    ]
    if empty:
        notes.append(
            f"SMART attributes empty or absent in every file, so constant 0 for the model: {', '.join(empty)}."
        )
    test = window_counts.get("test", {})
    notes.append(
        f"Test split: {test.get('windows', 0):,} windows of {test.get('devices', 0):,} drives, "
        f"{test.get('positives', 0)} positive windows. Drives that vanished without failing: "
        f"{counts['disappeared_devices']} (their windows whose horizon passes their last day are "
        f"{'dropped' if bb.disappeared == 'censor' else 'kept as healthy'})."
    )
    return notes


def run_backblaze(spark, input_uri: str, out: str, config) -> dict:
    """Every step into `out`; returns metrics.json's content."""
    derived = backblaze.pipeline_config(config)
    run = RunLayout(out)
    step = Steps()

    fs.write_json(spark, f"{out}/config.json", as_dict(config))
    counts = step("ingest", backblaze.ingest_backblaze, spark, input_uri, f"{out}/ingest", config.backblaze)
    window_counts = step("windows", backblaze.write_windows, spark, f"{out}/ingest", f"{out}/windows", config)
    training = step("train", train_run, spark, derived, windows=f"{out}/windows", run_dir=out)
    metrics = step(
        "evaluate",
        evaluate_run,
        spark,
        derived,
        windows=f"{out}/windows",
        run_dir=out,
        failures=f"{out}/ingest/{backblaze.FAILURES_FILE}",
    )
    risk = step("score", score_run, spark, derived, clean=f"{out}/ingest/{backblaze.CLEAN_DIR}", run_dir=out)
    metrics.update(
        counts={
            "ingest": counts,
            "windows": window_counts,
            "training": {k: training[k] for k in ("epochs", "iterations", "batch_size")},
            "risk": risk["by_band"],
        },
        timings_s=step.with_total(),
        driver_memory=driver_peak_memory_mb(spark),
        notes=data_notes(counts, window_counts, config),
    )
    fs.write_json(spark, run.metrics, metrics)
    write_report(spark, out)
    return metrics


def main(args, config) -> None:
    out = args.out  # the parser's fallback: runs/backblaze-<UTC timestamp>
    spark = get_or_create(master=args.master, app_name="backblaze_demo")
    metrics = run_backblaze(spark, args.input, out, config)
    alerting = metrics["alerting"]
    report(
        f"BigDL LSTM test ROC-AUC {_f(metrics['test']['roc_auc'])}, PR-AUC {_f(metrics['test']['pr_auc'])}; "
        f"baseline ROC-AUC {_f(metrics['baseline']['roc_auc'])}, PR-AUC {_f(metrics['baseline']['pr_auc'])}\n"
        f"alerting: threshold {_f(alerting['threshold'])}, false alarms {_f(alerting['false_alarm_rate_per_device_day'])} "
        f"per device-day, recall {_f(alerting['recall'])}, mean lead {_f(alerting['mean_lead_time_days'])} days, "
        f"median {_f(alerting['median_lead_time_days'])} days\nrun folder: {out} (report: {out}/report/index.html)"
    )


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(run(main, parser))
