"""Write (or rewrite) the static HTML report of a run folder: <run-dir>/report/index.html and figures/*.png.

    python -m jobs.report --run-dir runs/20260101-120000

Reads metrics.json, training.json (or the summaries' event files), predictions/, alerting/ and risk/ when present;
evaluate_telemetry and the demos write the report themselves, this job refreshes it (after adding a model, say).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines.chain import report_run
from pipelines.cli import job_parser, report, run
from pipelines.config import PipelineConfig
from pipelines.context import get_or_create
from pipelines.layout import RunLayout

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="run folder (any Hadoop URI)")
    parser.add_argument(
        "--note", action="append", default=[], help="a sentence to add to the report's caveats (repeatable)"
    )
    parser.reads("run_dir", RunLayout.METRICS)
    parser.writes("run_dir", RunLayout.REPORT)
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    spark = get_or_create(master=args.master, app_name="report")
    report(report_run(spark, config, run_dir=args.run_dir, notes=args.note))


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))
