"""Does BigDL compute what TensorFlow computes? The largest absolute difference on the same inputs.

TensorFlow runs the user's original graph (not the rewritten one), with a `.bin`'s values as constants
when the graph has variables. Runs on the driver, on a small sample only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from pipelines.tfimport import files, jvm
from pipelines.tfimport.export import run_graph
from pipelines.tfimport.load import ImportedModel, forward, read_graph

log = logging.getLogger(__name__)


def tensorflow_outputs(
    pb_uri: str,
    inputs: list[str],
    outputs: list[str],
    batch: np.ndarray,
    *,
    bin_uri: str | None = None,
    spark: SparkSession | None = None,
    threads: int = 2,
) -> np.ndarray:
    """TensorFlow's own outputs of the graph in `pb_uri` (and `.bin`, trusted locations only) for `batch`."""
    import os
    import tempfile

    graph_def = read_graph(pb_uri, spark)
    values = None
    if bin_uri:
        with tempfile.TemporaryDirectory(prefix="tfparity-") as tmp:
            local = files.copy_to_local(bin_uri, os.path.join(tmp, "model.bin"), spark)
            values = jvm.load_tensor_dictionary(local)
    return run_graph(graph_def, inputs, outputs, [batch], values=values, threads=threads)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"outputs of different shapes: {a.shape} and {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def sample_batch(windows: DataFrame, *, length: int, n_features: int, size: int) -> np.ndarray:
    """Up to `size` windows (the first ones Spark gives) on the driver as a (n, length, n_features) batch."""
    rows = windows.select("features").limit(size).collect() if size > 0 else []
    if not rows:
        return np.zeros((0, length, n_features), np.float32)
    return np.stack([np.asarray(r["features"], dtype=np.float32).reshape(length, n_features) for r in rows])


def parity(
    pb_uri: str,
    inputs: list[str],
    outputs: list[str],
    batch: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    *,
    bin_uri: str | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """{"max_abs_diff", "samples", "output_shape"} between TensorFlow and `predict` on `batch`."""
    if len(batch) == 0:
        return {"max_abs_diff": None, "samples": 0, "output_shape": None}
    expected = tensorflow_outputs(pb_uri, inputs, outputs, batch, bin_uri=bin_uri, spark=spark)
    got = predict(batch)
    diff = max_abs_diff(expected, got)
    log.info("parity on %d samples: largest absolute difference %.3g", len(batch), diff)
    return {"max_abs_diff": diff, "samples": int(len(batch)), "output_shape": list(got.shape[1:])}


def parity_check(
    imported: ImportedModel,
    pb_uri: str,
    batch: np.ndarray,
    *,
    bin_uri: str | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """`parity` between TensorFlow and BigDL."""
    return parity(
        pb_uri, imported.inputs, imported.outputs, batch, lambda b: forward(imported, b), bin_uri=bin_uri, spark=spark
    )
