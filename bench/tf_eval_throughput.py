"""Evaluation throughput of an imported TensorFlow model on Spark (BigDL) against TensorFlow's own predict.

    .venv/bin/python -m bench.tf_eval_throughput [--model lstm|mlp|conv] [--windows 4096] [--repeats 3]

Same data (random windows, length x n_features floats), same cores (Spark local[2]; TensorFlow with 2
intra-op threads), same process, measured one after the other. BigDL's figure is the whole distributed
path that `jobs.evaluate_tf` runs: Samples built on the executors from a cached DataFrame, BigDL's
`predict`, the scores back in a DataFrame (forced with an aggregation); "predict only" is BigDL's
`predict` on an already built, cached RDD of Samples (counted). TensorFlow's are `model.predict` on
a NumPy array already in memory, and a `Session.run` of the frozen graph. Prints samples/s and the ratio
BigDL / TensorFlow; the best of `--repeats` runs after one warm-up is kept for each.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

log = logging.getLogger("bench.tf_eval_throughput")

BUILDERS = {"lstm": "keras_lstm", "mlp": "keras_mlp", "conv": "keras_conv1d"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(BUILDERS), default="lstm")
    parser.add_argument("--windows", type=int, default=4096, help="windows scored per run")
    parser.add_argument("--length", type=int, default=96)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32, help="LSTM units (lstm model)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads (= Spark's cores)")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def best_rate(n: int, fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: JIT, MKL, TensorFlow graph building, compilation, BigDL's first broadcast
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return n / min(times), [round(t, 3) for t in times]


def quiet_tensorflow(threads: int):
    """This bench's logging, and TensorFlow with `threads` intra-op threads (as many as Spark's cores)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "pipelines"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def random_windows(spark, n: int, *, length: int, n_features: int, partitions: int):
    """`n` random windows (device_id, window_end, features, label) generated on the executors and cached."""

    def make(part):
        rng = np.random.default_rng(1000 + part)
        for i in range(part, n, partitions):
            yield (f"d{i % 100}", i * 900, rng.normal(size=length * n_features).astype(np.float32).tolist(), i % 2)

    return (
        spark.sparkContext.parallelize(range(partitions), partitions)
        .flatMap(make)
        .toDF("device_id string, t long, features array<float>, label int")
        .selectExpr("device_id", "timestamp_seconds(t) as window_end", "features", "label")
        .repartition(partitions)
        .cache()
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_tensorflow(args.threads)
    from pyspark.sql import functions as F

    from pipelines.context import get_or_create, total_cores
    from pipelines.tfimport import tfmodels
    from pipelines.tfimport.evaluate import predict_scores
    from pipelines.tfimport.export import freeze_keras, run_graph
    from pipelines.tfimport.load import import_tensorflow_model, read_graph
    from pipelines.tfimport.parity import max_abs_diff

    spark = get_or_create(app_name="bench-tf-eval", conf={"spark.ui.enabled": "false"})
    cores = total_cores(spark)
    T, Fn, n = args.length, args.features, args.windows

    kwargs = {"hidden": args.hidden} if args.model == "lstm" else {}
    model = getattr(tfmodels, BUILDERS[args.model])(T, Fn, **kwargs)
    pb = f"/tmp/bench-tf-eval-{os.getpid()}.pb"
    exported = freeze_keras(model, pb, for_bigdl=False)
    imported = import_tensorflow_model(pb, exported.inputs, exported.outputs)
    graph_def = read_graph(pb)
    log.info("%s: %d graph nodes after rewriting, %d BigDL cores", args.model, len(imported.graph_def.node), cores)

    windows = random_windows(spark, n, length=T, n_features=Fn, partitions=args.partitions)
    rows = windows.orderBy("window_end").collect()
    x = np.asarray([r.features for r in rows], np.float32).reshape(n, T, Fn)

    def bigdl_run():
        scored = predict_scores(imported, windows, length=T, n_features=Fn, batch_size=args.batch_size)
        return scored.agg(F.count("score"), F.sum("score")).first()

    from pipelines.models.train import to_samples
    from pipelines.tfimport import jvm

    samples = to_samples(windows, length=T, n_features=Fn).cache()
    samples.count()
    partitions = samples.getNumPartitions()  # BigDL's predict splits a batch evenly over them
    batch = max(partitions, -(-args.batch_size // partitions) * partitions)

    def bigdl_predict_only():
        with jvm.distributed(imported.model):
            return imported.model.predict(samples, batch).count()

    bigdl_rate, bigdl_times = best_rate(n, bigdl_run, args.repeats)
    predict_rate, predict_times = best_rate(n, bigdl_predict_only, args.repeats)
    keras_rate, keras_times = best_rate(
        n, lambda: model.predict(x, batch_size=args.batch_size, verbose=0), args.repeats
    )
    session_rate, session_times = best_rate(
        n,
        lambda: run_graph(
            graph_def, exported.inputs, exported.outputs, [x], threads=args.threads, batch_size=args.batch_size
        ),
        args.repeats,
    )

    scored = {
        (r.window_end): r.score
        for r in predict_scores(imported, windows, length=T, n_features=Fn, batch_size=args.batch_size).collect()
    }
    bigdl_scores = np.asarray([scored[r.window_end] for r in rows])
    parity = max_abs_diff(bigdl_scores, model.predict(x, batch_size=args.batch_size, verbose=0)[:, 1])
    os.remove(pb)

    result = {
        "model": args.model,
        "windows": n,
        "length": T,
        "features": Fn,
        "batch_size": args.batch_size,
        "cores": cores,
        "tf_threads": args.threads,
        "graph_nodes": len(imported.graph_def.node),
        "fused_lstm": imported.lstm,
        "samples_per_s": {
            "bigdl_spark": round(bigdl_rate, 1),
            "bigdl_spark_predict_only": round(predict_rate, 1),
            "tf_keras_predict": round(keras_rate, 1),
            "tf_session_frozen_graph": round(session_rate, 1),
        },
        "seconds": {
            "bigdl_spark": bigdl_times,
            "bigdl_spark_predict_only": predict_times,
            "tf_keras_predict": keras_times,
            "tf_session_frozen_graph": session_times,
        },
        "ratio_bigdl_to_tf_keras": round(bigdl_rate / keras_rate, 3),
        "ratio_bigdl_to_tf_session": round(bigdl_rate / session_rate, 3),
        "ratio_bigdl_predict_only_to_tf_keras": round(predict_rate / keras_rate, 3),
        "parity_max_abs_diff": parity,
    }
    print(f"{args.model}: {n} windows of {T} x {Fn}, {cores} Spark cores, TensorFlow {args.threads} threads")
    print(f"  imported: {imported.lstm + ' on the fused layer' if imported.lstm else 'node by node'}")
    for name, rate in result["samples_per_s"].items():
        print(f"  {name:<26}{rate:>10.1f} samples/s")
    print(f"  ratio BigDL on Spark / TF keras predict:   {result['ratio_bigdl_to_tf_keras']:.3f}")
    print(f"  ratio BigDL on Spark / TF frozen graph:    {result['ratio_bigdl_to_tf_session']:.3f}")
    print(f"  ratio BigDL predict only / TF keras:       {result['ratio_bigdl_predict_only_to_tf_keras']:.3f}")
    print(f"  largest |score difference|: {parity:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    spark.stop()
    return result


if __name__ == "__main__":
    main()
