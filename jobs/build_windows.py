"""Window clean telemetry into labelled, normalised Parquet windows split by device.

python -m jobs.build_windows --clean OUT/ingest/clean --failures OUT/fleet/failures.csv --out OUT/windows
"""

from __future__ import annotations

import logging
import sys
import time

from pipelines.cli import job_parser, run
from pipelines.context import get_or_create
from pipelines.telemetry import sources
from pipelines.telemetry.schema import WindowSpec
from pipelines.telemetry.windows import build_window_dataset

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0], sections=("ingest", "windows"))
parser.add_argument("--clean", required=True, help="clean readings (Parquet) written by ingest_telemetry")
parser.add_argument("--failures", required=True, help="failure events CSV: device_id,failure_time")
parser.add_argument("--out", required=True, help="output folder (windows/, normalization.json, window_counts.json)")
parser.reads("clean")
parser.reads("failures")
parser.writes("out")


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="build_windows")
    readings = sources.read_parquet(spark, args.clean, "clean readings")
    failures = sources.read_failures(spark, args.failures)
    started = time.perf_counter()
    windows, stats = build_window_dataset(
        readings, failures, config=config.windows, interval_minutes=config.ingest.interval_minutes
    )
    counts = sources.write_windows(spark, windows, stats, args.out, spec=WindowSpec.of(config))
    seconds = time.perf_counter() - started
    total = sum(split["windows"] for split in counts.values())
    log.info("windows written to %s: %s", args.out, counts)
    log.info(
        "split, normalise, window, label and write: %d windows in %.1f s (%.0f windows/s)",
        total,
        seconds,
        total / max(seconds, 1e-9),
    )


if __name__ == "__main__":
    sys.exit(run(main, parser))
