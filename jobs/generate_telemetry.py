"""Generate a synthetic telemetry fleet: readings partitioned by day, devices.csv and failures.csv.

python -m jobs.generate_telemetry --out hdfs:///data/fleet --set generate.devices=50
spark-submit jobs/generate_telemetry.py --out file:///tmp/fleet --env ci
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines import context
from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig
from pipelines.telemetry.generate import generate_fleet

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.strip().splitlines()[0], sections=("generate",))
    parser.add_argument(
        "--out", required=True, help="output URI (hdfs://, file://, s3a:// or a path); replaced atomically"
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="device slices, hence files per day; none: Spark's default parallelism",
    )
    parser.writes("out")
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    spark = context.get_or_create(master=args.master, app_name="generate-telemetry")
    log.info("generating %d devices x %d days into %s", config.generate.devices, config.generate.days, args.out)
    summary = generate_fleet(spark, config.generate, args.out, num_partitions=args.partitions)
    log.info(
        "done: %d devices, %d failing, %d rows in %s",
        summary["devices"],
        summary["failing_devices"],
        summary["rows"],
        summary["out"],
    )


parser = build_parser()

if __name__ == "__main__":
    sys.exit(run(main, parser))
