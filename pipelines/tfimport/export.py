"""Export from the TensorFlow side: a `compat.v1` session or checkpoint to `.pb` + `.bin`, a Keras model to `.pb`.

BigDL's own `tf_utils.dump_model` calls `tf.train.Saver` on the default graph and fails on TensorFlow 2;
here the graph comes from the caller's graph or meta graph, the variable values from the session or from
`tf.train.load_checkpoint`, and the `.bin` is written by BigDL's `saveTensorDictionary` (so writing one
needs the Spark/BigDL JVM). With `for_bigdl=True` (the default) the written `.pb` is already rewritten to
TF1 ops (see `rewrite`), so BigDL's plain `Model.load_tensorflow` loads it too; TensorFlow still runs it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyspark.sql import SparkSession

from pipelines.tfimport import files, jvm
from pipelines.tfimport import graph as g
from pipelines.tfimport.errors import TFImportError
from pipelines.tfimport.rewrite import rewrite_for_bigdl

log = logging.getLogger(__name__)

PB_FILE = "model.pb"
BIN_FILE = "model.bin"


@dataclass(frozen=True)
class Exported:
    pb_uri: str
    bin_uri: str | None
    inputs: list[str]
    outputs: list[str]
    variables: list[str]
    rewrites: dict[str, int]


def export_session(
    session,
    out_dir: str,
    *,
    outputs: Sequence[str],
    inputs: Sequence[str] | None = None,
    checkpoint: str | None = None,
    for_bigdl: bool = True,
    spark: SparkSession | None = None,
) -> Exported:
    """`out_dir/model.pb` + `out_dir/model.bin` from a `tf.compat.v1` session's graph (any Hadoop URI).

    Variable values come from `checkpoint` (a `tf.compat.v1.train.Saver` prefix) when given, else from the
    session. The variables stay in the graph as `VariableV2` nodes (resource variables are turned into
    them), so that the model stays trainable in BigDL; their values go to the `.bin`, keyed by node name.
    """
    graph_def = session.graph.as_graph_def()
    inputs, outputs = g.resolve_names(graph_def, inputs, outputs)
    needed = g.reachable(graph_def, outputs)
    variables = [n for n in graph_def.node if n.op in g.VARIABLE_OPS and n.name in needed]
    if checkpoint:
        values = _checkpoint_values(checkpoint, variables)
    else:
        values = {n.name: session.run(_read_tensor(session.graph, n)) for n in variables}
    return _write_pair(graph_def, values, out_dir, inputs=inputs, outputs=outputs, for_bigdl=for_bigdl, spark=spark)


def export_checkpoint(
    meta_graph: str,
    checkpoint: str,
    out_dir: str,
    *,
    outputs: Sequence[str],
    inputs: Sequence[str] | None = None,
    for_bigdl: bool = True,
    spark: SparkSession | None = None,
) -> Exported:
    """`.pb` + `.bin` from a Saver's `.meta` file and checkpoint prefix, without building a session."""
    import tensorflow as tf

    meta = tf.compat.v1.MetaGraphDef()
    with open(files.local_path(meta_graph), "rb") as f:
        meta.ParseFromString(f.read())
    graph_def = meta.graph_def
    inputs, outputs = g.resolve_names(graph_def, inputs, outputs)
    needed = g.reachable(graph_def, outputs)
    variables = [n for n in graph_def.node if n.op in g.VARIABLE_OPS and n.name in needed]
    values = _checkpoint_values(checkpoint, variables)
    return _write_pair(graph_def, values, out_dir, inputs=inputs, outputs=outputs, for_bigdl=for_bigdl, spark=spark)


def _read_tensor(graph, node):
    if node.op == "VarHandleOp":
        import tensorflow as tf

        with graph.as_default():
            return tf.raw_ops.ReadVariableOp(
                resource=graph.get_tensor_by_name(f"{node.name}:0"), dtype=node.attr["dtype"].type
            )
    return f"{node.name}:0"


def _checkpoint_values(checkpoint: str, variables) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(checkpoint)
    known = reader.get_variable_to_shape_map()
    values, missing = {}, []
    for node in variables:
        key = g.variable_name(node)
        if key in known:
            values[node.name] = reader.get_tensor(key)
        else:
            missing.append(key)
    if missing:
        raise TFImportError(f"checkpoint {checkpoint} lacks variable(s) {', '.join(missing)}")
    return values


def _write_pair(
    graph_def,
    values: dict[str, np.ndarray],
    out_dir: str,
    *,
    inputs,
    outputs,
    for_bigdl: bool,
    spark: SparkSession | None,
) -> Exported:
    if for_bigdl:
        # Values are not passed: the variables stay VariableV2 nodes, filled from the .bin.
        graph_def, report = rewrite_for_bigdl(graph_def, inputs=inputs, outputs=outputs)
        rewrites = {k: v for k, v in report.counts.items() if v}
    else:
        rewrites = {}
    names = [n.name for n in graph_def.node if n.op in g.VARIABLE_OPS and n.name in values]
    pb_uri, bin_uri = f"{out_dir.rstrip('/')}/{PB_FILE}", f"{out_dir.rstrip('/')}/{BIN_FILE}"
    files.write_bytes(pb_uri, graph_def.SerializeToString(), spark)
    with tempfile.TemporaryDirectory(prefix="tfexport-") as tmp:
        local_bin = os.path.join(tmp, BIN_FILE)
        jvm.save_tensor_dictionary({n: values[n] for n in names}, local_bin)
        files.copy_from_local(local_bin, bin_uri, spark)
    log.info("exported %s and %s (%d variables)", pb_uri, bin_uri, len(names))
    return Exported(pb_uri, bin_uri, list(inputs), list(outputs), names, rewrites)


def frozen_keras_graph(model, *, input_name: str = "input", output_name: str = "output"):
    """`(GraphDef, input name, output name)` of a `tf.keras` model in inference mode, variables as constants.

    `convert_variables_to_constants_v2` inlines the function calls; the graph still has TF2 ops (AddV2, ...).
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=input_name)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    graph_def = frozen.graph.as_graph_def()
    placeholder = frozen.inputs[0].op.name
    produced = frozen.outputs[0].op.name
    for node in graph_def.node:
        if node.name == produced:
            node.name = output_name
        for k, inp in enumerate(node.input):
            if g.node_name(inp) == produced:
                node.input[k] = inp.replace(produced, output_name, 1)
    return graph_def, placeholder, output_name


def freeze_keras(
    model,
    pb_uri: str,
    *,
    input_name: str = "input",
    output_name: str = "output",
    for_bigdl: bool = True,
    spark: SparkSession | None = None,
) -> Exported:
    """A frozen `.pb` of a `tf.keras` model (any Hadoop URI). LSTMs need `unroll=True`.

    With `for_bigdl=False` the graph is written as TensorFlow made it (AddV2 and all);
    `load_tensorflow_model` rewrites it when loading.
    """
    graph_def, placeholder, output = frozen_keras_graph(model, input_name=input_name, output_name=output_name)
    rewrites: dict[str, int] = {}
    if for_bigdl:
        graph_def, report = rewrite_for_bigdl(graph_def, inputs=[placeholder], outputs=[output])
        rewrites = {k: v for k, v in report.counts.items() if v}
    files.write_bytes(pb_uri, graph_def.SerializeToString(), spark)
    log.info("froze %s into %s", getattr(model, "name", "model"), pb_uri)
    return Exported(pb_uri, None, [placeholder], [output], [], rewrites)


def run_graph(
    graph_def,
    inputs: Sequence[str],
    outputs: Sequence[str],
    feeds: Sequence[np.ndarray],
    *,
    values: dict[str, np.ndarray] | None = None,
    threads: int = 2,
    batch_size: int = 1024,
) -> np.ndarray:
    """TensorFlow's own output for a GraphDef (the first output), batch by batch.

    Variables (`VariableV2`, `VarHandleOp`) are replaced by constants from `values` (e.g. a `.bin`) first.
    """
    import tensorflow as tf

    from pipelines.tfimport.tfmodels import session_config

    if values:
        graph_def, _ = rewrite_for_bigdl(graph_def, inputs=inputs, outputs=outputs, values=values, strict=False)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    results = []
    with tf.compat.v1.Session(graph=graph, config=session_config(threads)) as sess:
        n = len(feeds[0])
        for start in range(0, n, batch_size):
            feed = {f"{g.node_name(i)}:0": x[start : start + batch_size] for i, x in zip(inputs, feeds)}
            results.append(sess.run(f"{g.node_name(outputs[0])}:0", feed))
    return np.concatenate(results) if results else np.zeros((0,), np.float32)
