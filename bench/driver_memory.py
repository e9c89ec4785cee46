"""Driver memory against input size: the telemetry chain at growing fleet sizes, one fresh process each.

    .venv/bin/python -m bench.driver_memory [--devices 50 200 800] [--days 10]

Reports, per size, the Python driver's peak resident memory and the JVM's live heap after a full GC at
the end of each step (max over steps), and the ratio of the largest size to the smallest. In local mode
the JVM also runs the executors, so its figure bounds the driver's from above; the Python driver is
where a collect() of the data would show.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time


def one_run(devices: int, days: int, out: str) -> dict:
    from jobs.demo import run_demo
    from pipelines.config import load_config
    from pipelines.context import driver_peak_memory_mb, get_or_create

    config = load_config(
        env="ci",
        overrides=[f"generate.devices={devices}", f"generate.days={days}", "train.epochs=1", "train.hidden_size=8"],
    )
    spark = get_or_create(app_name="bench-driver-memory")
    jvm = spark.sparkContext._jvm
    started = time.perf_counter()
    metrics = run_demo(spark, out, config)
    jvm.java.lang.System.gc()
    live_heap = jvm.java.lang.Runtime.getRuntime().totalMemory() - jvm.java.lang.Runtime.getRuntime().freeMemory()
    return {
        "devices": devices,
        "rows": metrics["counts"]["ingest"]["read"],
        "seconds": round(time.perf_counter() - started, 1),
        "python_peak_rss_mb": driver_peak_memory_mb(spark)["python_peak_rss_mb"],
        "jvm_live_heap_mb": round(live_heap / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(one_run(args.one, args.days, out)))
        return
    results = []
    for devices in args.devices:
        done = subprocess.run(
            [sys.executable, "-m", "bench.driver_memory", "--one", str(devices), "--days", str(args.days)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"run with {devices} devices failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'devices':>8} {'rows':>10} {'seconds':>8} {'python peak MB':>15} {'JVM live heap MB':>17}")
    for r in results:
        print(
            f"{r['devices']:>8} {r['rows']:>10} {r['seconds']:>8} {r['python_peak_rss_mb']:>15} {r['jvm_live_heap_mb']:>17}"
        )
    small, large = results[0], results[-1]
    print(
        f"rows x{large['rows'] / small['rows']:.1f}: python driver peak x{large['python_peak_rss_mb'] / small['python_peak_rss_mb']:.2f}, "
        f"JVM live heap x{large['jvm_live_heap_mb'] / small['jvm_live_heap_mb']:.2f}"
    )


if __name__ == "__main__":
    main()
