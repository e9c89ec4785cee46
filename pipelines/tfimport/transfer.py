"""Transfer learning on an imported TensorFlow model: freeze chosen layers, replace or append the head,
fine-tune with the project's training engine, save in BigDL's format.

What can learn: the variables of a `.pb` + `.bin` pair become BigDL `Variable`s (trainable); a frozen `.pb`
has constants only, so just the new head learns (feature extraction). Freezing a variable (by name prefix)
bakes its `.bin` value into the graph as a constant: BigDL's `freeze()` does not stop a TF `Variable` from
learning (its gradient ignores the layer's scale), a constant cannot.

A graph loaded from TensorFlow runs backward through every node, and TF-op nodes (`Const`, `Variable`,
`Shape`, integer paths such as an RNN's zero-state `Fill`) have no backward: they are marked stop-gradient
(BigDL then only accumulates their parameter gradients, which is what a `Variable` needs). Constants are
kept across BigDL's broadcasts with `jvm.distributed` (see `pipelines.tfimport.jvm`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.tfimport import files, jvm
from pipelines.tfimport import graph as g
from pipelines.tfimport.errors import NodeNameError
from pipelines.tfimport.evaluate import check_windows_shape
from pipelines.tfimport.load import LOG_PROBABILITIES, ImportedModel, import_tensorflow_model, read_graph

log = logging.getLogger(__name__)

HEAD_NAME = "transfer_head"
_SKIP_BACK = {"Identity", "Softmax", "LogSoftmax", "Sigmoid"}
_BIAS_OPS = {"BiasAdd", "Add", "AddV2"}


@dataclass(frozen=True)
class TransferSpec:
    """How to build the fine-tuning model from TensorFlow files."""

    pb_uri: str
    bin_uri: str | None = None
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None
    head: str = "replace"  # "replace": cut before the last dense layer; "append": keep the output, add a layer
    feature_node: str | None = None  # where to cut for "replace"; found from the output when None
    freeze: tuple[str, ...] = ()  # variable-name prefixes to freeze; ("*",) freezes every imported variable
    n_classes: int = 2


@dataclass
class FineTuneResult:
    imported: ImportedModel  # .model: BigDL Sequential (imported graph -> Linear -> LogSoftMax), log-probabilities
    frozen: list[str]
    trainable: list[str]
    feature_node: str | None
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    validation: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    batch_size: int = 0

    @property
    def model(self):
        return self.imported.model


def feature_node_of(graph_def, output: str) -> str:
    """The input of the output's last dense layer (MatMul [+ bias]) behind softmax/sigmoid/identity nodes."""
    by_name = {n.name: n for n in graph_def.node}
    node = by_name[g.node_name(output)]
    while node.op in _SKIP_BACK and node.input:
        node = by_name[g.node_name(node.input[0])]
    if node.op in _BIAS_OPS:
        node = by_name[g.node_name(node.input[0])]
    if node.op != "MatMul":
        raise NodeNameError(f"cannot find a dense layer (MatMul) feeding {output}: name the feature node")
    return g.node_name(node.input[0])


def _stop_gradient_names(imported: ImportedModel) -> list[str]:
    """Modules of the imported graph that must not run backward: TF Operations and non-float paths."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(imported.graph_def, name="")
    floating = {op.name: any(o.dtype.is_floating for o in op.outputs) for op in graph.get_operations()}
    readers = g.consumers(imported.graph_def)
    live: set[str] = set()
    todo = [n.name for n in imported.graph_def.node if n.op in ("Placeholder", "VariableV2")]
    while todo:  # nodes a gradient can reach: float paths from the inputs and the variables
        name = todo.pop()
        if name not in live:
            live.add(name)
            if floating.get(name):
                todo.extend(readers.get(name, []))
    operation = _jvm().java.lang.Class.forName("com.intel.analytics.bigdl.dllib.nn.ops.Operation")
    modules = imported.model.value.modules()
    names = []
    for i in range(modules.size()):
        module = modules.apply(i)
        name = module.getName()
        if operation.isInstance(module) or name not in live:
            names.append(name)
    return names


def _jvm():
    from bigdl.dllib.utils.common import _get_gateway

    return _get_gateway().jvm


def _output_width(imported: ImportedModel, example_shape: Sequence[int]) -> int:
    """Values per example at the imported output, by TensorFlow's shape inference.

    Not by a BigDL forward: a model that ran forward on the driver trains with emptied constants on the
    executors (BigDL 2.4, see `pipelines.tfimport.jvm`).
    """
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        spec = imported.input_specs[0]
        x = tf.compat.v1.placeholder(tf.float32, [None, *example_shape])
        tf.compat.v1.import_graph_def(imported.graph_def, input_map={f"{spec.name}:0": x}, name="")
    shape = graph.get_tensor_by_name(f"{imported.outputs[0]}:0").shape
    if shape.rank is None or not shape[1:].is_fully_defined():
        raise NodeNameError(f"the size of {imported.outputs[0]} is not static ({shape}): choose another feature node")
    return int(np.prod(shape[1:].as_list()))


def build_transfer_model(
    spec: TransferSpec, *, example_shape: Sequence[int], spark: SparkSession | None = None, seed: int = 0
) -> tuple[Any, ImportedModel, dict[str, Any]]:
    """(BigDL model ready to train, the imported part, {"frozen", "trainable", "feature_node", "width"})."""
    import os
    import tempfile

    from bigdl.dllib.nn.layer import Linear, LogSoftMax, Sequential

    if spec.head not in ("replace", "append"):
        raise ValueError(f"head must be 'replace' or 'append', not {spec.head!r}")
    graph_def = read_graph(spec.pb_uri, spark)
    inputs, outputs = g.resolve_names(graph_def, spec.inputs, spec.outputs)
    feature = None
    if spec.head == "replace":
        feature = spec.feature_node or feature_node_of(graph_def, outputs[0])
        outputs = [feature]
    needed = g.reachable(graph_def, outputs)
    variables = [n.name for n in graph_def.node if n.op in g.VARIABLE_OPS and n.name in needed]
    unknown = [p for p in spec.freeze if p != "*" and not any(v.startswith(p) for v in variables)]
    if unknown:
        raise NodeNameError(
            f"freeze prefix(es) {', '.join(unknown)} match no variable; variables: "
            f"{', '.join(variables) or '(none: a frozen graph)'}"
        )
    frozen = [v for v in variables if any(p == "*" or v.startswith(p) for p in spec.freeze)]
    constants = None
    if frozen and spec.bin_uri:
        with tempfile.TemporaryDirectory(prefix="tfimport-") as tmp:
            local = files.copy_to_local(spec.bin_uri, os.path.join(tmp, "model.bin"), spark)
            values = jvm.load_tensor_dictionary(local)
        constants = {v: values[v] for v in frozen if v in values}
    # Node by node: the graph's variables stay TF variables, trainable or frozen as `spec` says.
    imported = import_tensorflow_model(
        spec.pb_uri, inputs, outputs, spec.bin_uri, spark=spark, constants=constants, fuse_lstm=False
    )
    imported.check_input_shape(example_shape)
    width = _output_width(imported, example_shape)
    jvm.call("preparing the imported graph for training", imported.model.stop_gradient, _stop_gradient_names(imported))
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(width)
    head = Linear(
        width,
        spec.n_classes,
        init_weight=rng.uniform(-bound, bound, (spec.n_classes, width)).astype(np.float32),
        init_bias=np.zeros(spec.n_classes, np.float32),
    ).set_name(HEAD_NAME)
    model = Sequential().add(imported.model).add(head).add(LogSoftMax())
    info = {
        "frozen": frozen,
        "trainable": [v for v in variables if v not in frozen] + [HEAD_NAME],
        "feature_node": feature,
        "width": width,
    }
    return model, imported, info


def fine_tune(
    spark: SparkSession,
    spec: TransferSpec,
    train: DataFrame,
    validation: DataFrame | None = None,
    *,
    length: int,
    n_features: int,
    epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 0.005,
    class_weights: Sequence[float] | None = None,
    summary_dir: str | None = None,
    seed: int = 0,
) -> FineTuneResult:
    """Fine-tune on windows (`features`, `label`) as a `BigDLClassifier` (the project's training loop); the model
    outputs log-probabilities.

    With `validation`, BigDL validates every epoch (Top1Accuracy, Loss); with `summary_dir`, BigDL's
    Train/ValidationSummary (TensorBoard) go there and the curves are returned.
    """
    from pipelines.models.stages import BigDLClassifier

    model, imported, info = build_transfer_model(spec, example_shape=(length, n_features), spark=spark, seed=seed)
    check_windows_shape(imported, train, length=length, n_features=n_features)
    rows = train.select("features", "label")
    if validation is not None:
        flagged = validation.select("features", "label").withColumn("is_validation", F.lit(True))
        rows = rows.withColumn("is_validation", F.lit(False)).unionByName(flagged)
    classifier = BigDLClassifier(
        model,
        featureShape=[length, n_features],
        classWeights=list(class_weights or [1.0] * spec.n_classes),
        learningRate=learning_rate,
        epochs=epochs,
        batchSize=batch_size,
        validationIndicatorCol="is_validation" if validation is not None else "",
        summaryDir=summary_dir or "",
        summaryName="transfer",
    )
    model.training()
    with jvm.distributed(model):
        fitted = jvm.call("fine-tuning the imported model", lambda: classifier.fit(rows))
    trained, summary = fitted.module, fitted.summary
    train_summary, val_summary = summary.train, summary.validation
    trained.evaluate()
    tuned = replace(imported, model=trained, outputs=[HEAD_NAME], output_op="LogSoftMax", output_kind=LOG_PROBABILITIES)
    result = FineTuneResult(
        imported=tuned,
        frozen=info["frozen"],
        trainable=info["trainable"],
        feature_node=info["feature_node"],
        batch_size=summary.batch_size,
    )
    if train_summary is not None:
        result.train_loss = [(int(st), float(v)) for st, v, _ in train_summary.read_scalar("Loss")]
    if val_summary is not None:
        result.validation = {
            name: [(int(st), float(v)) for st, v, _ in val_summary.read_scalar(name)]
            for name in ("Top1Accuracy", "Loss")
        }
    log.info("fine-tuned %d epoch(s); frozen: %s; trainable: %s", epochs, info["frozen"] or "none", info["trainable"])
    return result


def save(spark: SparkSession, model, uri: str) -> None:
    """BigDL's format (definition + weights), any Hadoop URI; `pipelines.models.train.load_model` reads it."""
    from pipelines.models.train import save_model

    jvm.call(f"saving {uri}", save_model, spark, model, uri)
