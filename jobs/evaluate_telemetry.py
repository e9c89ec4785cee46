"""Evaluate the LSTM, the baseline and the peers on the test split, put the best alert policy in force, report.

python -m jobs.evaluate_telemetry --windows OUT/windows --run-dir OUT/run
"""

from __future__ import annotations

import logging
import sys

from pipelines.chain import evaluate_run, report_run
from pipelines.cli import job_parser, run
from pipelines.context import get_or_create
from pipelines.layout import RunLayout

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0], sections=("windows", "train", "evaluate"))
parser.add_argument("--windows", required=True, help="folder written by build_windows")
parser.add_argument("--run-dir", required=True, help="run folder holding model/ (from train_lstm)")
parser.add_argument("--failures", default=None, help="failure events CSV (device_id,failure_time): lead times")
parser.reads("windows")
parser.reads("run_dir", RunLayout.MODEL)
parser.reads("failures")
parser.writes("run_dir", RunLayout.PREDICTIONS, RunLayout.ALERTING, RunLayout.REPORT)
parser.writes("run_dir", RunLayout.METRICS, mode="merge")


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="evaluate_telemetry")
    metrics = evaluate_run(spark, config, windows=args.windows, run_dir=args.run_dir, failures=args.failures)
    report_run(spark, config, run_dir=args.run_dir)
    for name in ("test", "baseline"):
        log.info(
            "%s: %s",
            name,
            {k: metrics[name][k] for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")},
        )


if __name__ == "__main__":
    sys.exit(run(main, parser))
