"""Windows scored per second by every scoring path, on the same windows and cores, at three sizes.

    .venv/bin/python -m bench.score_throughput [--sizes 1024,4096,16384] [--repeats 2] [--json runs/score.json]

One process, Spark local[2] (two cores), one path after the other, each timed over `--repeats` runs after a warm-up
(the best is kept). The windows (random, length x features floats) are generated on the executors and cached; each
Spark path is the whole path of `jobs.evaluate_tf` / `jobs.score_fleet`, forced with an aggregation:

- bigdl_own_lstm: the project's BigDL LSTM (`build_lstm`, the fused layer, the same hidden size) as a `BigDLModel`;
- bigdl_imported_tf: the Keras LSTM frozen and imported into BigDL (`pipelines.tfimport`);
- openvino_fp32, openvino_fp16: that frozen graph as OpenVINO IR, scored on the executors (`pipelines.openvino_ir`);
- tf_keras_predict: TensorFlow's own `model.predict` on a NumPy array already in the driver's memory (2 threads).

Prints samples/s, each path's ratio to TensorFlow, the FP16 IR's largest difference from FP32, and the driver's
memory (JVM heap in use after a GC, Python's resident set) after the Spark paths of each size: all sizes' Spark
paths run before any window is collected for TensorFlow, so the figures are flat in the number of windows when the
driver holds none of them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from functools import partial

import numpy as np

from bench.tf_eval_throughput import best_rate, quiet_tensorflow, random_windows

log = logging.getLogger("bench.score_throughput")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,4096,16384", help="numbers of windows, comma-separated")
    parser.add_argument("--length", type=int, default=96)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads (= Spark's cores)")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def driver_memory_mb(spark) -> dict[str, float]:
    """The driver's JVM heap in use after a GC and Python's current resident set."""
    jvm = spark.sparkContext._jvm
    runtime = jvm.java.lang.Runtime.getRuntime()
    jvm.java.lang.System.gc()
    with open("/proc/self/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "jvm_heap_mb": round((runtime.totalMemory() - runtime.freeMemory()) / 2**20, 1),
        "python_rss_mb": round(rss_kb / 1024, 1),
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_tensorflow(args.threads)
    from pyspark.sql import functions as F

    from pipelines import openvino_ir
    from pipelines.context import get_or_create, total_cores
    from pipelines.models.lstm import build_lstm
    from pipelines.models.train import predict_scores
    from pipelines.tfimport import tfmodels
    from pipelines.tfimport.evaluate import predict_scores as predict_imported
    from pipelines.tfimport.export import freeze_keras
    from pipelines.tfimport.load import import_tensorflow_model

    spark = get_or_create(app_name="bench-score", conf={"spark.ui.enabled": "false"})
    cores = total_cores(spark)
    length, n_features, batch = args.length, args.features, args.batch_size
    keras = tfmodels.keras_lstm(length, n_features, hidden=args.hidden)
    pb = f"/tmp/bench-score-{os.getpid()}.pb"
    freeze_keras(keras, pb, for_bigdl=False)
    imported = import_tensorflow_model(pb, spark=spark)
    irs = {p: openvino_ir.from_graph(pb, precision=p, spark=spark) for p in openvino_ir.PRECISIONS}
    own = build_lstm(n_features, hidden_size=args.hidden, num_layers=1, seed=1, kind="fused", input_gradient=False)
    own.evaluate()

    def windows_of(n: int):
        return random_windows(spark, n, length=length, n_features=n_features, partitions=args.partitions)

    def rate(n: int, path, windows) -> float:
        return best_rate(n, lambda: path(windows).agg(F.count("score"), F.sum("score")).first(), args.repeats)[0]

    keep = ("device_id", "window_end", "label")
    paths = {
        "bigdl_own_lstm": lambda w: predict_scores(own, w, length=length, n_features=n_features, batch_size=batch),
        "bigdl_imported_tf": lambda w: predict_imported(
            imported, w, length=length, n_features=n_features, batch_size=batch
        ),
        "openvino_fp32": lambda w: openvino_ir.score_windows(
            irs["FP32"], w, length=length, n_features=n_features, batch_size=batch, keep=keep
        ),
        "openvino_fp16": lambda w: openvino_ir.score_windows(
            irs["FP16"], w, length=length, n_features=n_features, batch_size=batch, keep=keep
        ),
    }
    sizes = [int(size) for size in args.sizes.split(",")]
    rows = []
    for n in sizes:  # the Spark paths of every size first: the driver's memory is measured before any collect
        windows = windows_of(n)
        windows.count()
        rates = {name: rate(n, path, windows) for name, path in paths.items()}
        windows.unpersist()
        rows.append({"windows": n, "samples_per_s": rates, "driver_memory_after_spark_paths": driver_memory_mb(spark)})
    for row in rows:
        n = row["windows"]
        windows = windows_of(n)
        x = np.asarray([r.features for r in windows.collect()], np.float32).reshape(n, length, n_features)
        windows.unpersist()
        rates = row["samples_per_s"]
        rates["tf_keras_predict"] = best_rate(n, partial(keras.predict, x, batch_size=batch, verbose=0), args.repeats)[
            0
        ]
        tf_rate = rates["tf_keras_predict"]
        row["samples_per_s"] = {k: round(v, 1) for k, v in rates.items()}
        row["ratio_to_tf_predict"] = {k: round(v / tf_rate, 3) for k, v in rates.items() if k != "tf_keras_predict"}
        row["fp16_max_abs_diff"] = float(
            np.abs(openvino_ir.predict(irs["FP16"], x[:1024]) - openvino_ir.predict(irs["FP32"], x[:1024])).max()
        )
        print(f"{n} windows of {length} x {n_features}, {cores} Spark cores, TensorFlow {args.threads} threads:")
        for name, rate in row["samples_per_s"].items():
            ratio = row["ratio_to_tf_predict"].get(name)
            print(f"  {name:<20}{rate:>10.1f} samples/s" + (f"   {ratio:.3f}x TF predict" if ratio else ""))
        print(
            f"  FP16 IR against FP32: largest difference {row['fp16_max_abs_diff']:.2e}; "
            f"driver after the Spark paths: {row['driver_memory_after_spark_paths']}"
        )
    os.remove(pb)
    result = {
        "length": length,
        "features": n_features,
        "hidden": args.hidden,
        "batch_size": batch,
        "cores": cores,
        "ir_bytes": {p: {"xml": len(ir.xml), "bin": len(ir.weights)} for p, ir in irs.items()},
        "load_average": os.getloadavg()[0],
        "sizes": rows,
    }
    print(f"IR files: {result['ir_bytes']}; load average {result['load_average']:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    spark.stop()
    return result


if __name__ == "__main__":
    main()
