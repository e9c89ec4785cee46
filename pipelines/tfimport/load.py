"""Load a frozen `.pb` (or a `.pb` + BigDL `.bin` pair) from any Hadoop URI into a BigDL model.

Before BigDL sees the graph it is parsed and checked in Python (corrupt or truncated file, input and output
names, ops BigDL has no loader for, `.bin` against the graph's variables), then rewritten into TF1 ops
(`rewrite.rewrite_for_bigdl`). Every failure is a `TFImportError` subclass with a one-paragraph message.

Distributed use: BigDL 2.4 empties the constants of a TF-loaded model on the driver whenever it broadcasts it
(`predict`, `evaluate`, `Optimizer`); wrap such calls in `pipelines.tfimport.jvm.distributed(model)` (the
functions of `evaluate` and `transfer` do), and run driver-side batches through `forward` here.

Security: a `.bin` is a Java-serialised object, and reading it is Java deserialisation, which can run code
that the file's author chose. Load `.bin` files only from locations you trust as you trust your own jars.
Nothing is refused silently: every `.bin` read is logged with its URI.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyspark.sql import SparkSession

from pipelines.models.stages import LOG_PROBABILITIES, OUTPUT_KINDS, PROBABILITIES, SIGMOID
from pipelines.tfimport import files, jvm, lstm
from pipelines.tfimport import graph as g
from pipelines.tfimport.errors import GraphFormatError, InputShapeError, TFImportError, VariableMismatchError
from pipelines.tfimport.rewrite import rewrite_for_bigdl

log = logging.getLogger(__name__)

_KIND_OF_OP = {"Softmax": PROBABILITIES, "LogSoftmax": LOG_PROBABILITIES, "Sigmoid": SIGMOID}


@dataclass
class ImportedModel:
    """A BigDL model imported from TensorFlow, with what was learnt about its graph on the way."""

    model: Any  # bigdl.dllib.nn.layer.Model
    inputs: list[str]
    outputs: list[str]
    input_specs: list[g.TensorSpec]
    output_op: str  # the op type producing the (first) output, Identity nodes skipped
    output_kind: str | None  # see OUTPUT_KINDS; None when the last op does not say
    rewrites: dict[str, int] = field(default_factory=dict)
    variables: list[str] = field(default_factory=list)
    graph_def: Any = None  # the rewritten GraphDef that BigDL loaded (TensorFlow runs it too)
    lstm: str | None = None  # the LSTM that runs on the fused layer, described; None: imported node by node

    def check_input_shape(self, shape: Sequence[int]) -> None:
        """Refuse per-example input of `shape` (no batch dimension) that the first placeholder cannot take."""
        check_input_shape(self.input_specs[0], shape)


def check_input_shape(spec: g.TensorSpec, shape: Sequence[int]) -> None:
    if spec.shape is None:
        return
    expected = spec.shape[1:]  # the first dimension is the batch
    if len(expected) != len(shape) or any(e is not None and e != s for e, s in zip(expected, shape)):
        raise InputShapeError(
            f"input {spec.name} takes examples of shape {_fmt(expected)}, the data has {_fmt(list(shape))}"
        )


def _fmt(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def output_kind_of(graph_def, output: str) -> tuple[str, str | None]:
    """(op type behind `output`, skipping Identity nodes; the output kind it implies or None)."""
    by_name = {n.name: n for n in graph_def.node}
    node = by_name[g.node_name(output)]
    while node.op == "Identity" and node.input:
        node = by_name[g.node_name(node.input[0])]
    return node.op, _KIND_OF_OP.get(node.op)


def read_graph(pb_uri: str, spark: SparkSession | None = None):
    try:
        data = files.read_bytes(pb_uri, spark)
    except FileNotFoundError:
        raise GraphFormatError(f"{pb_uri}: no such file") from None
    except IsADirectoryError:
        raise GraphFormatError(f"{pb_uri}: a folder, not a .pb file") from None
    return g.parse_graph_def(data, source=pb_uri)


def import_tensorflow_model(
    pb_uri: str,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    bin_uri: str | None = None,
    *,
    spark: SparkSession | None = None,
    output_kind: str | None = None,
    constants: Mapping[str, np.ndarray] | None = None,
    fuse_lstm: bool = True,
) -> ImportedModel:
    """Parse, check, rewrite and load a TensorFlow graph into BigDL; see `load_tensorflow_model`.

    `output_kind` overrides what the output's op implies (Softmax: probabilities, LogSoftmax:
    log-probabilities, Sigmoid: one probability). `constants` maps variable names to values that are
    baked into the graph as constants (not trainable in BigDL); the other variables come from the `.bin`.
    With `fuse_lstm`, an unrolled LSTM the graph holds (see `pipelines.tfimport.lstm`) runs on the project's fused
    LSTM layer, the rest of the graph imported around it; otherwise, and when it is not recognised, node by node.
    """
    if output_kind is not None and output_kind not in OUTPUT_KINDS:
        raise ValueError(f"output_kind must be one of {OUTPUT_KINDS}, not {output_kind!r}")
    graph_def = read_graph(pb_uri, spark)
    inputs, outputs = g.resolve_names(graph_def, inputs, outputs)
    rewritten, report = rewrite_for_bigdl(graph_def, inputs=inputs, outputs=outputs, values=constants)
    by_name = {n.name: n for n in rewritten.node}
    specs = [g.placeholder_spec(by_name[i]) for i in inputs]
    op, kind = output_kind_of(rewritten, outputs[0])

    if report.variables and bin_uri is None:
        raise VariableMismatchError(
            f"{pb_uri}: the graph has {len(report.variables)} variable(s) ({', '.join(report.variables[:5])}) "
            "and no .bin gives their values: pass bin_path, or load a frozen graph"
        )
    with tempfile.TemporaryDirectory(prefix="tfimport-") as tmp:
        tensors: dict[str, np.ndarray] = {}
        if bin_uri is not None:
            local_bin = os.path.join(tmp, "model.bin")
            log.info("reading variables from %s (Java deserialisation: trusted locations only)", bin_uri)
            try:
                files.copy_to_local(bin_uri, local_bin, spark)
            except FileNotFoundError:
                raise VariableMismatchError(f"{bin_uri}: no such file") from None
            except IsADirectoryError:
                raise VariableMismatchError(f"{bin_uri}: a folder, not a .bin file") from None
            tensors = jvm.load_tensor_dictionary(local_bin, source=bin_uri)
            check_variables(rewritten, tensors, source=bin_uri)
        block = _lstm_block(rewritten, inputs, outputs, tensors, source=pb_uri) if fuse_lstm else None
        if block is None:
            model = _load_part(rewritten, inputs, outputs, tensors, os.path.join(tmp, "model"))
        else:
            model = _fused_model(rewritten, block, inputs, outputs, tensors, tmp)
    model.evaluate()  # inference mode (dropout off) until someone trains it
    log.info("imported %s: inputs %s, outputs %s (%s)", pb_uri, inputs, outputs, op)
    return ImportedModel(
        model=model,
        inputs=inputs,
        outputs=outputs,
        input_specs=specs,
        output_op=op,
        output_kind=output_kind or kind,
        rewrites={k: v for k, v in report.counts.items() if v},
        variables=report.variables,
        graph_def=rewritten,
        lstm=block.describe() if block is not None else None,
    )


def _lstm_block(graph_def, inputs, outputs, tensors, *, source: str) -> lstm.LSTMBlock | None:
    """The graph's LSTM block for the fused layer, or None (with one log line when an LSTM-like part is left)."""
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    try:
        block = lstm.recognise(graph_def, inputs=inputs, outputs=outputs, variables=tensors)
    except lstm.NotRecognised as e:
        log.warning("%s: LSTM not recognised (%s): imported node by node, which is slow", source, e)
        return None
    if block is not None:
        log.info("%s: %s, on the fused LSTM layer", source, block.describe())
    return block


def _fused_model(graph_def, block: lstm.LSTMBlock, inputs, outputs, tensors, tmp: str):
    """Sequential(the graph up to the LSTM, if any; the fused layers; the graph after it, if any)."""
    from bigdl.dllib.nn.layer import Sequential

    from pipelines.models.extension import fused_lstm

    model = Sequential()
    if block.source not in inputs:
        prefix = g.subgraph(graph_def, [block.source], stop_at=inputs)
        model.add(_load_part(prefix, inputs, [block.source], tensors, os.path.join(tmp, "prefix")))
    for k, layer in enumerate(block.layers):
        top = k == len(block.layers) - 1
        fused = fused_lstm(layer.input_size, layer.hidden_size, return_sequences=block.return_sequences or not top)
        fused.set_weights([layer.weight, layer.bias, layer.recurrent])
        model.add(fused.set_name(f"lstm{k + 1}"))
    head = lstm.head_graph(graph_def, block, outputs)
    if head is not None:
        model.add(_load_part(head, [block.output], outputs, tensors, os.path.join(tmp, "head")))
    return model


def _load_part(graph_def, inputs, outputs, tensors: Mapping[str, np.ndarray], path: str):
    """BigDL's loader on `graph_def`, its variables' values from `tensors` (written to `path`.bin)."""
    variables = {n.name for n in graph_def.node if n.op == "VariableV2"}
    local_bin = None
    if variables:
        # BigDL drops every graph edge from a node whose name is in the .bin unless it is a VariableV2,
        # so the .bin holds this part's variables and nothing else.
        local_bin = f"{path}.bin"
        jvm.save_tensor_dictionary({k: v for k, v in tensors.items() if k in variables}, local_bin)
    with open(f"{path}.pb", "wb") as f:
        f.write(graph_def.SerializeToString())
    return jvm.load_tf(f"{path}.pb", list(inputs), list(outputs), local_bin)


def load_tensorflow_model(
    pb_path: str,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    bin_path: str | None = None,
    *,
    spark: SparkSession | None = None,
):
    """A BigDL model from a frozen TensorFlow `.pb`, or a `.pb` with a BigDL `.bin` of its variables.

    Paths may be any Hadoop URI (`hdfs://`, `s3a://`, `file://`) or local paths. `inputs` and `outputs`
    are node names (a ':0' suffix is accepted) and may be omitted when the graph has exactly one candidate.
    TF2-era ops are rewritten first (see `pipelines.tfimport.rewrite`). The `.bin` is read by Java
    deserialisation: load it only from trusted locations. Raises a `TFImportError` subclass on any problem.

    The model is in inference mode. For distributed use wrap each `predict`/`evaluate`/`Optimizer` call in
    `pipelines.tfimport.jvm.distributed(model)` (BigDL 2.4 empties the driver copy's constants when it
    broadcasts a TF-loaded graph), or use `import_tensorflow_model` with `pipelines.tfimport.evaluate`.
    """
    return import_tensorflow_model(pb_path, inputs, outputs, bin_path, spark=spark).model


def check_variables(graph_def, tensors: dict[str, np.ndarray], *, source: str) -> None:
    """Every VariableV2 of the graph has a value of its shape in `tensors`."""
    problems = []
    for node in graph_def.node:
        if node.op != "VariableV2":
            continue
        if node.name not in tensors:
            problems.append(f"{node.name} is missing")
            continue
        expected = g._shape_of(node.attr["shape"].shape) if "shape" in node.attr else None
        got = list(tensors[node.name].shape)
        if expected is not None and (
            len(expected) != len(got) or any(e is not None and e != s for e, s in zip(expected, got))
        ):
            problems.append(f"{node.name} has shape {got}, the graph says {expected}")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems) - 8} more)" if len(problems) > 8 else "")
        raise VariableMismatchError(
            f"{source} does not match the graph ({len(problems)} problem(s)): {shown}; it holds: "
            f"{', '.join(sorted(tensors)[:10]) or 'nothing'}"
        )


def forward(imported: ImportedModel | Any, batch: np.ndarray) -> np.ndarray:
    """Run the model on a driver-side batch (parity checks, small samples), on a copy of the model."""
    model = imported.model if isinstance(imported, ImportedModel) else imported
    if isinstance(imported, ImportedModel):
        imported.check_input_shape(batch.shape[1:])
    return jvm.forward(model, batch)


__all__ = [
    "ImportedModel",
    "import_tensorflow_model",
    "load_tensorflow_model",
    "check_variables",
    "forward",
    "output_kind_of",
    "read_graph",
    "TFImportError",
    "OUTPUT_KINDS",
    "PROBABILITIES",
    "LOG_PROBABILITIES",
    "SIGMOID",
]
