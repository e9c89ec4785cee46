"""Ingest telemetry CSVs: validate, quarantine bad records, resample onto the grid.

    python -m jobs.ingest_telemetry --input data/telemetry --out runs/ingest
    spark-submit jobs/ingest_telemetry.py --input hdfs:///telemetry --out hdfs:///ingest

Writes <out>/clean/ (Parquet, schema.CLEAN_SCHEMA), <out>/quarantine/ (Parquet) and <out>/counts.json.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines.chain import ingest_run
from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig
from pipelines.context import get_or_create

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0], sections=("ingest",))
    parser.add_argument(
        "--input",
        required=True,
        help="telemetry root (readings/ and devices.csv) or the readings themselves: a folder or glob of CSV files",
    )
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument(
        "--devices",
        default=None,
        help="CSV of the known fleet (device_id,model); default: <input>/devices.csv when --input is a root; "
        "without one the unknown-device check is skipped",
    )
    parser.reads("input")
    parser.reads("devices")
    parser.writes("out")
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    spark = get_or_create(master=args.master, app_name="ingest_telemetry")
    log.info("ingest %s -> %s", args.input, args.out)
    counts = ingest_run(spark, config, input=args.input, out=args.out, devices=args.devices)
    log.info(
        "done: read %d = clean %d + quarantined %d; %d rows out",
        counts["read"],
        counts["clean"],
        counts["quarantined"],
        counts["resampled_rows"],
    )


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))
