"""Ingest and windowing throughput: Spark `local[2]` against single-process pandas on the same generated input.

    .venv/bin/python -m bench.ingest_vs_pandas --rows 1000000 [--days 30] [--keep DIR]

Generates a fleet of about `--rows` readings (Spark, on the executors), adds a file of bad records of every
kind (malformed lines, missing fields, bad timestamps, missing, non-numeric, non-finite and out-of-bounds
values, unknown devices, duplicates), then runs the chain CSV -> validation with quarantine -> 15-minute
resampling -> windows -> Parquet twice: with the project's Spark code (`ingest`, `build_window_dataset`,
`write_windows`) and with `bench.pandas_peer` in a separate process. Negatives are not down-sampled, so
both write every window and the counts (clean, quarantined by reason, windows, positives) must agree.
Prints rows/s of each step and overall, and the ratio Spark / pandas.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BAD_KINDS = {
    "malformed_line": lambda f: f + ["17"],
    "missing_field": lambda f: ["", *f[1:]],
    "bad_timestamp": lambda f: [f[0], f[1], "2026-13-01 00:00:00", *f[3:]],
    "missing_value": lambda f: [*f[:3], "", *f[4:]],
    "non_numeric": lambda f: [*f[:8], "1001d", *f[9:]],
    "not_finite": lambda f: [*f[:4], "NaN", *f[5:]],
    "out_of_bounds": lambda f: [*f[:5], "999", *f[6:]],
    "unknown_device": lambda f: ["zz-" + f[0], *f[1:]],
    "duplicate": lambda f: [f[0], f[1], f[2][:-2] + "05", *f[3:]],  # 5 s off the grid point of the original
}


def add_bad_records(readings: str, per_kind: int) -> int:
    """Write readings/day=<first>/part-zz-bad.csv: `per_kind` corrupted copies of real lines per kind."""
    first_day = sorted(d for d in os.listdir(readings) if d.startswith("day="))[0]
    folder = os.path.join(readings, first_day)
    source = sorted(f for f in os.listdir(folder) if f.endswith(".csv"))[0]
    with open(os.path.join(folder, source)) as f:
        header = f.readline()
        lines = [f.readline().rstrip("\n").split(",") for _ in range(per_kind * len(BAD_KINDS))]
    out = [header.rstrip("\n")]
    for k, make in enumerate(BAD_KINDS.values()):
        out += [",".join(make(fields)) for fields in lines[k * per_kind : (k + 1) * per_kind]]
    with open(os.path.join(folder, "part-zz-bad.csv"), "w") as f:
        f.write("\n".join(out) + "\n")
    return per_kind * len(BAD_KINDS)


def config_for(rows: int, days: int):
    from pipelines.config import load_config

    devices = max(3, round(rows / (96 * days * 0.97)))  # about 3 % of readings are dropped or in gaps
    return load_config(
        overrides=[
            f"generate.devices={devices}",
            f"generate.days={days}",
            "windows.negatives_per_positive=0",
        ]
    )


def run_spark(root: str, config) -> dict:
    from pipelines.context import driver_peak_memory_mb, get_or_create
    from pipelines.telemetry import sources
    from pipelines.telemetry.ingest import ingest
    from pipelines.telemetry.schema import WindowSpec
    from pipelines.telemetry.windows import build_window_dataset

    spark = get_or_create(master="local[2]", app_name="bench-ingest-vs-pandas", conf={"spark.ui.enabled": "false"})
    started = time.perf_counter()
    counts = ingest(spark, f"{root}/fleet", f"{root}/spark/ingest", config.ingest)
    ingested = time.perf_counter()
    readings = sources.read_parquet(spark, f"{root}/spark/ingest/clean", "clean readings")
    failures = sources.read_failures(spark, f"{root}/fleet/failures.csv")
    windows, stats = build_window_dataset(
        readings, failures, config=config.windows, interval_minutes=config.ingest.interval_minutes
    )
    window_counts = sources.write_windows(spark, windows, stats, f"{root}/spark/windows", spec=WindowSpec.of(config))
    done = time.perf_counter()
    memory = driver_peak_memory_mb(spark)
    spark.stop()
    return {
        "counts": counts,
        "windows": window_counts,
        "ingest_s": ingested - started,
        "windows_s": done - ingested,
        "memory": memory,
    }


def run_pandas(root: str, config) -> dict:
    from bench import pandas_peer

    started = time.perf_counter()
    counts = pandas_peer.ingest(
        f"{root}/fleet/readings", f"{root}/fleet/devices.csv", f"{root}/pandas/ingest", config.ingest
    )
    ingested = time.perf_counter()
    window_counts = pandas_peer.build_windows(
        f"{root}/pandas/ingest/clean.parquet",
        f"{root}/fleet/failures.csv",
        f"{root}/pandas/windows",
        config.windows,
        config.ingest.interval_minutes,
    )
    done = time.perf_counter()
    return {"counts": counts, "windows": window_counts, "ingest_s": ingested - started, "windows_s": done - ingested}


def comparable(result: dict) -> dict:
    windows = result["windows"]
    return {
        **{k: v for k, v in result["counts"].items() if k != "devices"},
        "windows": sum(s["windows"] for s in windows.values()),
        "positives": sum(s["positives"] for s in windows.values()),
        "devices_per_split": {k: windows[k]["devices"] for k in sorted(windows)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", default=None, help="work folder to keep (default: a temporary one, deleted)")
    parser.add_argument("--pandas-only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = config_for(args.rows, args.days)
    if args.pandas_only:
        print(json.dumps(run_pandas(args.pandas_only, config)))
        return

    root = args.keep or tempfile.mkdtemp(prefix="bench-ingest-pandas-")
    try:
        from pipelines.context import get_or_create
        from pipelines.telemetry.generate import generate_fleet

        spark = get_or_create(master="local[2]", app_name="bench-generate", conf={"spark.ui.enabled": "false"})
        started = time.perf_counter()
        summary = generate_fleet(spark, config.generate, f"{root}/fleet")
        print(
            f"generated {summary['rows']:,} rows ({summary['devices']} devices x {args.days} days) "
            f"in {time.perf_counter() - started:.0f} s; load {os.getloadavg()}",
            flush=True,
        )
        spark.stop()
        n_bad = add_bad_records(f"{root}/fleet/readings", max(10, args.rows // 10_000))
        print(f"added {n_bad} bad records", flush=True)

        load_before = os.getloadavg()
        spark_result = run_spark(root, config)
        load_spark = os.getloadavg()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.ingest_vs_pandas",
                "--rows",
                str(args.rows),
                "--days",
                str(args.days),
                "--pandas-only",
                root,
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"pandas peer failed:\n{done.stderr[-3000:]}")
        pandas_result = json.loads(done.stdout.strip().splitlines()[-1])
        load_pandas = os.getloadavg()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    rows = spark_result["counts"]["read"]
    print(
        f"\nrows read: {rows:,}; load average before / after Spark / after pandas: "
        f"{load_before[0]:.1f} / {load_spark[0]:.1f} / {load_pandas[0]:.1f}"
    )
    print(f"{'step':<28} {'spark local[2] rows/s':>22} {'pandas rows/s':>15} {'spark/pandas':>13}")
    for label, key in (
        ("ingest (to clean Parquet)", "ingest_s"),
        ("windows (to Parquet)", "windows_s"),
        ("whole chain", None),
    ):
        s = spark_result[key] if key else spark_result["ingest_s"] + spark_result["windows_s"]
        p = pandas_result[key] if key else pandas_result["ingest_s"] + pandas_result["windows_s"]
        print(f"{label:<28} {rows / s:>22,.0f} {rows / p:>15,.0f} {p / s:>13.2f}")
    print(f"spark driver peak: {spark_result['memory']}")
    ours, theirs = comparable(spark_result), comparable(pandas_result)
    print("counts:", json.dumps(ours))
    if ours != theirs:
        print("COUNTS DIFFER; pandas:", json.dumps(theirs))
        raise SystemExit(1)
    print("counts agree (clean, quarantined by reason, resampled, windows, positives, devices per split)")


if __name__ == "__main__":
    main()
