"""Ingest Backblaze drive-statistics files (daily SMART snapshots) into clean daily readings; optionally window them.

    python -m jobs.ingest_backblaze --input ../shared/data/backblaze --out runs/bb/ingest [--windows runs/bb/windows]

Writes <out>/clean/ (Parquet, one row per drive per day), <out>/quarantine/ (Parquet, reason per record),
<out>/failures.csv (device_id,failure_time) and <out>/counts.json (read = clean + quarantined). With --windows, also
the labelled, normalised windows of the `backblaze` config section (as build_windows writes them).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig
from pipelines.context import get_or_create
from pipelines.telemetry import backblaze

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0], sections=("backblaze",))
    parser.add_argument(
        "--input", required=True, help="folder (searched recursively), file or glob of daily *.csv / *.csv.gz"
    )
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument(
        "--windows", default=None, help="also write windows here (windows/, normalization.json, window_counts.json)"
    )
    parser.reads("input")
    parser.writes("out")
    parser.writes("windows")
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    spark = get_or_create(master=args.master, app_name="ingest_backblaze")
    counts = backblaze.ingest_backblaze(spark, args.input, args.out, config.backblaze)
    log.info("read %d = clean %d + quarantined %d", counts["read"], counts["clean"], counts["quarantined"])
    if args.windows:
        log.info("windows: %s", backblaze.write_windows(spark, args.out, args.windows, config))


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))
