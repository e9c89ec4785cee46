"""OpenVINO Intermediate Representation (IR: `model.xml` + `model.bin`, FP32 or FP16) of a frozen TensorFlow graph,
and windows scored with it on the executors: the IR's bytes broadcast once, compiled once per executor thread by
OpenVINO's C library inside the JVM (`pipelines.ml.OpenVino`), the windows read from the rows as BigDL's are.

An exported folder holds `model.xml`, `model.bin` and `ir.json` (input and output names, the window shape, the output
kind, the precision). Loading the IR needs only `openvino` and numpy:

    import numpy as np, openvino as ov
    compiled = ov.Core().compile_model("DIR/model.xml", "CPU")
    probabilities = compiled(np.zeros((8, 96, 10), np.float32))[0]
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.errors import InputError
from pipelines.io import fs
from pipelines.models.extension import openvino_predict
from pipelines.models.stages import LOG_PROBABILITIES, OUTPUT_KINDS, PROBABILITIES, SIGMOID, score_column
from pipelines.tfimport import files
from pipelines.tfimport import graph as g
from pipelines.tfimport.load import output_kind_of, read_graph

log = logging.getLogger(__name__)

PRECISIONS = ("FP32", "FP16")
XML, BIN, INFO = "model.xml", "model.bin", "ir.json"


@dataclass(frozen=True)
class IR:
    """An IR in memory (what the executors get) and what it takes and gives."""

    xml: bytes
    weights: bytes
    input_name: str
    input_shape: list[int]  # -1 for a dimension of any size (the batch)
    output_name: str
    output_kind: str
    precision: str

    def info(self) -> dict[str, Any]:
        return {
            "input": self.input_name,
            "input_shape": self.input_shape,
            "output": self.output_name,
            "output_kind": self.output_kind,
            "precision": self.precision,
        }

    def check_window_shape(self, length: int, n_features: int) -> None:
        expected = self.input_shape[1:]
        if len(expected) != 2 or any(e not in (-1, a) for e, a in zip(expected, (length, n_features))):
            raise InputError(
                f"the IR takes windows of shape {expected}, the windows are ({length}, {n_features}) "
                f"(input {self.input_name})"
            )


def from_graph(
    pb_uri: str,
    *,
    precision: str = "FP32",
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    output_kind: str | None = None,
    spark: SparkSession | None = None,
) -> IR:
    """Convert a frozen TensorFlow graph (`.pb`, any Hadoop URI) to IR in memory."""
    import openvino as ov

    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if output_kind is not None and output_kind not in OUTPUT_KINDS:
        raise InputError(f"output kind must be one of {', '.join(OUTPUT_KINDS)}, not {output_kind!r}")
    graph_def = read_graph(pb_uri, spark)
    (input_name,), (output_name,) = _one(g.resolve_names(graph_def, inputs, outputs), pb_uri)
    op, implied = output_kind_of(graph_def, output_name)
    kind = output_kind or implied
    if kind is None:
        raise InputError(f"{pb_uri}: output {output_name} is a {op}; say what it holds with an output kind")
    with tempfile.TemporaryDirectory(prefix="openvino-") as tmp:
        local_pb = os.path.join(tmp, "model.pb")
        with open(local_pb, "wb") as f:
            f.write(graph_def.SerializeToString())
        try:
            model = ov.convert_model(local_pb, input=[_tensor(input_name)], output=[_tensor(output_name)])
        except Exception as e:  # noqa: BLE001 - OpenVINO's errors carry C++ traces: one line for the user
            raise InputError(f"{pb_uri}: OpenVINO cannot convert the graph ({_first_line(e)})") from None
        ov.save_model(model, os.path.join(tmp, XML), compress_to_fp16=precision == "FP16")
        xml, weights = (Path(tmp, name).read_bytes() for name in (XML, BIN))
    shape = [d.get_length() if d.is_static else -1 for d in model.inputs[0].get_partial_shape()]
    return IR(xml, weights, input_name, shape, output_name, kind, precision)


def from_bigdl_lstm(model_uri: str, *, length: int, precision: str = "FP32") -> IR:
    """The project's BigDL LSTM classifier (`build_lstm`: stacked LSTMs, the last step, Linear, LogSoftMax; either
    kind) as IR, through the equivalent Keras model built from its weights and frozen for `length` steps."""
    from pipelines.models.train import load_model
    from pipelines.tfimport.export import freeze_keras

    if length < 1:
        raise InputError("a BigDL LSTM is exported for a window length: give --length")
    try:
        weights = [np.asarray(w, np.float32) for w in load_model(model_uri).get_weights()]
    except Exception as e:  # noqa: BLE001 - BigDL's loader raises Py4J errors with Java traces
        raise InputError(f"{model_uri}: not a BigDL model ({_first_line(e)})") from None
    keras = _keras_twin(weights, length, source=model_uri)
    with tempfile.TemporaryDirectory(prefix="openvino-") as tmp:
        freeze_keras(keras, os.path.join(tmp, "lstm.pb"), for_bigdl=False)
        return from_graph(os.path.join(tmp, "lstm.pb"), precision=precision)


def _keras_twin(weights: list[np.ndarray], length: int, *, source: str):
    """A Keras LSTM classifier computing what the BigDL one computes: per layer BigDL's input weight (4H x I), bias
    (4H) and hidden weight (4H x H) with gates (input, candidate, forget, output), Keras's transposed with gates
    (input, forget, candidate, output); the head's Linear (2 x H, 2) as a Dense layer; LogSoftMax."""
    import tensorflow as tf

    layers = (len(weights) - 2) // 3
    shapes_ok = len(weights) >= 5 and (len(weights) - 2) % 3 == 0 and weights[-2].shape[0] == 2
    hidden = weights[2].shape[-1] if shapes_ok else 0
    for layer in range(layers if shapes_ok else 0):
        w, b, u = weights[3 * layer : 3 * layer + 3]
        shapes_ok &= w.shape[0] == 4 * hidden and b.shape == (4 * hidden,) and u.shape == (4 * hidden, hidden)
    if not shapes_ok:
        raise InputError(f"{source}: not the project's LSTM classifier (weights {[w.shape for w in weights]})")

    def keras_gates(a: np.ndarray) -> np.ndarray:
        i, g, f, o = np.split(a, 4, axis=0)
        return np.concatenate([i, f, g, o], axis=0)

    inputs = tf.keras.Input((length, weights[0].shape[1]))
    x = inputs
    recurrent = []
    for layer in range(layers):
        lstm = tf.keras.layers.LSTM(hidden, return_sequences=layer < layers - 1, unroll=True)
        x = lstm(x)
        recurrent.append(lstm)
    head = tf.keras.layers.Dense(2)
    model = tf.keras.Model(inputs, tf.nn.log_softmax(head(x)))
    for layer, lstm in enumerate(recurrent):
        w, b, u = weights[3 * layer : 3 * layer + 3]
        lstm.set_weights([keras_gates(w).T, keras_gates(u).T, keras_gates(b)])
    head.set_weights([weights[-2].T, weights[-1]])
    return model


def is_ir_folder(uri: str, spark: SparkSession) -> bool:
    """Whether `uri` is a folder holding an IR (`model.xml`) rather than a frozen graph."""
    return files.exists(f"{uri.rstrip('/')}/{XML}", spark)


def ir_for(
    model_uri: str,
    spark: SparkSession,
    *,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    output_kind: str | None = None,
) -> IR:
    """An IR folder as it is, or a frozen TensorFlow graph converted (FP32)."""
    if is_ir_folder(model_uri, spark):
        return load(spark, model_uri.rstrip("/"))
    return from_graph(model_uri, inputs=inputs, outputs=outputs, output_kind=output_kind, spark=spark)


def save(spark: SparkSession, ir: IR, out_uri: str) -> dict[str, Any]:
    """Write the IR folder (model.xml, model.bin, ir.json) atomically; returns ir.json with the files' sizes."""
    info = {**ir.info(), "files": {XML: len(ir.xml), BIN: len(ir.weights)}}
    with fs.atomic_output(spark, out_uri) as tmp:
        files.write_bytes(f"{tmp}/{XML}", ir.xml, spark)
        files.write_bytes(f"{tmp}/{BIN}", ir.weights, spark)
        fs.write_json(spark, f"{tmp}/{INFO}", info)
    return info


def load(spark: SparkSession, uri: str) -> IR:
    """An IR folder written by `save` (any Hadoop URI), checked by OpenVINO before any job starts."""
    for name in (XML, BIN, INFO):
        if not files.exists(f"{uri}/{name}", spark):
            raise InputError(f"{uri}: no {name} (an IR folder holds {XML}, {BIN} and {INFO})")
    try:
        info = json.loads(files.read_bytes(f"{uri}/{INFO}", spark))
        ir = IR(
            files.read_bytes(f"{uri}/{XML}", spark),
            files.read_bytes(f"{uri}/{BIN}", spark),
            info["input"],
            list(info["input_shape"]),
            info["output"],
            info["output_kind"],
            info["precision"],
        )
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{uri}/{INFO}: not an IR description ({e})") from None
    try:
        _model(ir.xml, ir.weights)
    except Exception as e:  # noqa: BLE001 - one line, not OpenVINO's C++ trace
        raise InputError(f"{uri}: not a readable OpenVINO IR ({_first_line(e)})") from None
    return ir


def predict(ir: IR, batch: np.ndarray, *, threads: int = 0) -> np.ndarray:
    """The output for one batch, on this process's CPU (`threads` 0: OpenVINO's choice)."""
    return _compiled(ir.xml, ir.weights, threads)(batch)[0]


def scores(output: np.ndarray, output_kind: str) -> np.ndarray:
    """Probability of class 1 from the output rows."""
    if output_kind == PROBABILITIES:
        return output[:, 1]
    if output_kind == LOG_PROBABILITIES:
        return np.exp(output[:, 1])
    if output_kind == SIGMOID:
        return output.reshape(len(output), -1)[:, -1]
    raise ValueError(f"unknown output kind {output_kind!r}")


def score_windows(
    ir: IR, windows: DataFrame, *, length: int, n_features: int, batch_size: int, keep: Sequence[str]
) -> DataFrame:
    """`keep` columns and `score` (double) for every window (`features`: length x n_features numbers), scored on the
    executors inside the JVM through OpenVINO's C library (`extension.openvino_predict`): the IR broadcast once,
    compiled once per executor thread (one inference thread each, as Spark runs one task per core), `batch_size`
    windows per inference call, no Python workers."""
    ir.check_window_shape(length, n_features)
    predicted = openvino_predict(
        ir.xml, ir.weights, windows.select(*keep, "features"), shape=(length, n_features), batch_size=batch_size
    )
    return predicted.select(*keep, score_column(ir.output_kind, F.col("output")).alias("score"))


_COMPILED: dict[tuple[int, int], Any] = {}


def _model(xml: bytes, weights: bytes):
    import openvino as ov

    return ov.Core().read_model(model=xml.decode(), weights=ov.Tensor(np.frombuffer(weights, np.uint8)))


def _compiled(xml: bytes, weights: bytes, threads: int):
    """One compiled model per process and IR."""
    import openvino as ov

    key = (hash(xml) ^ hash(weights), threads)
    if key not in _COMPILED:
        # f32 arithmetic: on CPUs with AVX-512 BF16 the CPU plugin would otherwise compute in bfloat16 (differences
        # of 1e-2 from TensorFlow). An FP16 IR's weights are widened to f32 when compiled.
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        _COMPILED[key] = ov.Core().compile_model(_model(xml, weights), "CPU", config)
    return _COMPILED[key]


def _tensor(name: str) -> str:
    """A TensorFlow tensor name (`node:port`), as OpenVINO names the converted model's inputs and outputs."""
    return name if ":" in name else f"{name}:0"


def _one(names: tuple[list[str], list[str]], source: str) -> tuple[list[str], list[str]]:
    inputs, outputs = names
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"{source}: export takes one input and one output, not {inputs} and {outputs}")
    return inputs, outputs


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines() or [type(e).__name__])[0][:300]
