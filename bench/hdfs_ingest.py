"""Ingest throughput from HDFS against the same files on the local disk, in one session.

    make hdfs-up && .venv/bin/python -m bench.hdfs_ingest [--devices 200] [--days 10] [--rounds 2]

The same generated fleet (same seed) is written to file:// and to hdfs://; ingest (parse, validate,
quarantine, resample, write Parquet) runs from each, alternating, and the best rows/s of each is reported.
"""

from __future__ import annotations

import argparse
import tempfile
import time

HDFS = "hdfs://127.0.0.1:19000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from pipelines.config import load_config
    from pipelines.context import get_or_create
    from pipelines.io import fs
    from pipelines.telemetry.generate import generate_fleet
    from pipelines.telemetry.ingest import ingest

    config = load_config(overrides=[f"generate.devices={args.devices}", f"generate.days={args.days}"])
    spark = get_or_create(app_name="bench-hdfs-ingest")
    local = tempfile.mkdtemp(prefix="bench-ingest-")
    roots = {"local": f"file://{local}", "hdfs": f"{HDFS}/bench/ingest"}
    for root in roots.values():
        generate_fleet(spark, config.generate, f"{root}/fleet")
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, root in roots.items():
            started = time.perf_counter()
            counts = ingest(spark, f"{root}/fleet", f"{root}/ingest", config.ingest)
            rate = counts["read"] / (time.perf_counter() - started)
            best[name] = max(best.get(name, 0.0), rate)
    fs.delete(spark, roots["hdfs"])
    fs.delete(spark, roots["local"])
    print(f"rows: {counts['read']}")
    for name, rate in best.items():
        print(f"{name:>6}: {rate:,.0f} rows/s")
    print(f"hdfs / local: {best['hdfs'] / best['local']:.2f}")


if __name__ == "__main__":
    main()
