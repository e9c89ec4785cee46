"""Window clean telemetry into labelled, normalised Parquet windows split by device.

python -m jobs.build_windows --clean OUT/ingest/clean --failures OUT/fleet/failures.csv --out OUT/windows
"""

from __future__ import annotations

import logging
import sys
import time

from pipelines.chain import windows_run
from pipelines.cli import job_parser, run
from pipelines.context import get_or_create

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
    started = time.perf_counter()
    counts = windows_run(spark, config, clean=args.clean, failures=args.failures, out=args.out)
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
