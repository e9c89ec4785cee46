"""The demo's TensorFlow leg: train a Keras LSTM on the windows, freeze it, import it into BigDL, evaluate it
on the cluster, and check it against TensorFlow's own outputs.

TensorFlow trains on the driver, on a bounded sample of the train split (`max_train_windows`, a few thousand
windows of 96 x 10 floats: a few MB): it stands in for the other team's model, trained elsewhere. Everything
after the export is distributed: BigDL predicts the whole test split on the executors, and the metrics are
Spark aggregations (`binary_metrics`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.io import fs
from pipelines.telemetry import sources
from pipelines.tfimport import tfmodels
from pipelines.tfimport.evaluate import evaluate_imported
from pipelines.tfimport.export import freeze_keras
from pipelines.tfimport.jvm import require_deep_graph_stack
from pipelines.tfimport.load import import_tensorflow_model
from pipelines.tfimport.parity import parity_check, sample_batch

log = logging.getLogger(__name__)

MODEL_DIR = "tf_model"
PB_FILE = "model.pb"
INFO_FILE = "tf_imported.json"
# Above this many unrolled steps the graph needs jvm.STACK_OPTION (12 steps work with the default stack,
# 96 do not).
DEEP_GRAPH_STEPS = 32


def driver_sample(windows: DataFrame, *, cap: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most `cap` windows (features, label) on the driver, drawn at random with `seed`."""
    total = windows.count()
    if total == 0:
        raise ValueError("no windows to train on")
    picked = windows if total <= cap else windows.sample(fraction=min(1.0, 1.2 * cap / total), seed=seed).limit(cap)
    rows = picked.select("features", "label").collect()
    x = np.asarray([r["features"] for r in rows], dtype=np.float32)
    y = np.asarray([r["label"] for r in rows], dtype=np.int32)
    return x, y


def train_keras_lstm(
    x: np.ndarray,
    y: np.ndarray,
    *,
    length: int,
    n_features: int,
    hidden: int,
    epochs: int,
    batch_size: int,
    learning_rate: float = 0.005,
    seed: int = 0,
):
    """A `tfmodels.keras_lstm` (unroll=True) fitted with class weights that balance the labels."""
    import tensorflow as tf

    model = tfmodels.keras_lstm(length, n_features, hidden=hidden, seed=seed)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    counts = np.bincount(y, minlength=2).astype(float)
    weights = {k: float(len(y) / (2 * counts[k])) if counts[k] else 1.0 for k in range(2)}
    history = model.fit(
        x.reshape(-1, length, n_features),
        y,
        epochs=epochs,
        batch_size=batch_size,
        class_weight=weights,
        verbose=0,
        shuffle=True,
    )
    return model, [float(v) for v in history.history["loss"]]


def train_export_import_evaluate(
    spark: SparkSession,
    windows_root: str,
    run_dir: str,
    *,
    length: int,
    n_features: int,
    epochs: int = 3,
    batch_size: int = 128,
    threshold: float = 0.5,
    hidden: int = 32,
    max_train_windows: int = 4000,
    eval_batch_size: int = 512,
    parity_samples: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of a TF-trained, BigDL-imported LSTM on the test split: the same dict as `binary_metrics`.

    Writes `run_dir/tf_model/model.pb` (TensorFlow's frozen graph, TF2 ops included: the loader rewrites
    them) and `run_dir/tf_imported.json` (training loss, sample size, rewrites, parity, timings).
    TensorFlow trains on a driver-side sample of at most `max_train_windows` training windows.
    Windows longer than `DEEP_GRAPH_STEPS` need the JVM started with `jvm.STACK_OPTION` (-Xss16m);
    without it this fails at once with a `TFImportError` saying so.
    """
    if length > DEEP_GRAPH_STEPS:
        require_deep_graph_stack(spark, f"an LSTM unrolled over {length} steps")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    train = sources.read_windows(spark, windows_root, "train")
    x, y = driver_sample(train, cap=max_train_windows, seed=seed)
    model, losses = train_keras_lstm(
        x, y, length=length, n_features=n_features, hidden=hidden, epochs=epochs, batch_size=batch_size, seed=seed
    )
    timings["tf_train"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    pb_uri = f"{run_dir}/{MODEL_DIR}/{PB_FILE}"
    exported = freeze_keras(model, pb_uri, for_bigdl=False, spark=spark)
    imported = import_tensorflow_model(pb_uri, exported.inputs, exported.outputs, spark=spark)
    timings["export_import"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    test = sources.read_windows(spark, windows_root, "test").select("device_id", "window_end", "features", "label")
    metrics, predictions = evaluate_imported(
        imported, test, length=length, n_features=n_features, batch_size=eval_batch_size, threshold=threshold
    )
    predictions.unpersist()
    timings["bigdl_evaluate"] = round(time.perf_counter() - started, 1)

    batch = sample_batch(
        test.orderBy(F.col("device_id"), F.col("window_end")), length=length, n_features=n_features, size=parity_samples
    )
    parity = parity_check(imported, pb_uri, batch, spark=spark)
    info = {
        "model": {"kind": "keras LSTM (unroll=True)", "hidden": hidden, "epochs": epochs, "batch_size": batch_size},
        "train_windows_used": int(len(y)),
        "train_positives_used": int(y.sum()),
        "train_loss": losses,
        "pb": pb_uri,
        "inputs": imported.inputs,
        "outputs": imported.outputs,
        "output_kind": imported.output_kind,
        "rewrites": imported.rewrites,
        "parity": parity,
        "timings_s": timings,
    }
    fs.write_json(spark, f"{run_dir}/{INFO_FILE}", info)
    log.info(
        "TF LSTM imported into BigDL: PR-AUC %s; parity max |TF - BigDL| %s on %d windows",
        metrics["pr_auc"],
        parity["max_abs_diff"],
        parity["samples"],
    )
    return metrics
