"""Rewrite a TF2-era GraphDef into TF1 ops that BigDL's TensorFlow loader builds, keeping TensorFlow's numbers.

Every rewrite is an exact equivalence for inference (TensorFlow runs the rewritten graph to the same outputs):

- prune to what the outputs need and drop control edges (BigDL would turn them into DependencyNodes);
- `AddV2` -> `Add` (same kernel, broadcasting included);
- resource variables (`VarHandleOp` + `ReadVariableOp`) -> `Const` when their values are given, else
  `VariableV2` + `Identity` so that their values can come from a BigDL `.bin` (keyed by the node name);
  `VariableV2` with a given value -> `Const` (freezing);
- `FusedBatchNormV3` -> `FusedBatchNormV2` when `is_training` is false and nothing reads `reserve_space_3`;
- chains of `Identity` bypassed (except on inputs, outputs and variable reads);
- constants whose values TensorFlow elides (all zeros, or one value repeated) written out in full, since
  BigDL's `Const` loader reads exactly `prod(shape)` values;
- scalar reduction axes (`Mean`, `Sum`, `Max`, `Prod`, `All`, `Any`) given as one-element vectors, as
  BigDL's reduction loaders expect;
- negative axes of `Squeeze`, `ConcatV2` and reductions made positive (BigDL's `Squeeze` refuses them),
  using the ranks that TensorFlow's shape inference gives.
Control flow (`While`, `TensorList*`) and function calls are not rewritten: unroll RNNs (Keras `unroll=True`)
and freeze with `convert_variables_to_constants_v2`, which inlines functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipelines.tfimport import graph as g
from pipelines.tfimport import ops as tfops
from pipelines.tfimport.errors import TFImportError, UnsupportedOpsError

log = logging.getLogger(__name__)

REDUCTION_OPS = frozenset({"Mean", "Sum", "Max", "Min", "Prod", "All", "Any"})
_NUMERIC_FIELDS = ("float_val", "double_val", "int_val", "int64_val", "bool_val", "half_val")


@dataclass
class RewriteReport:
    """How many nodes each rewrite touched, and which ops remain that BigDL cannot load."""

    counts: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, list[str]] = field(default_factory=dict)
    variables: list[str] = field(default_factory=list)  # VariableV2 nodes left: their values come from a .bin

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def rewrite_for_bigdl(
    graph_def,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    values: Mapping[str, np.ndarray] | None = None,
    strict: bool = True,
):
    """Return `(rewritten GraphDef, RewriteReport)`; the input graph is not modified.

    `values` maps variable names to arrays; those variables become constants. Variables without a value
    stay (or become) `VariableV2`, to be filled from a `.bin`. With `strict`, ops BigDL still cannot
    load after rewriting raise `UnsupportedOpsError` naming each op type with its nodes and count.
    """
    from tensorflow.core.framework import graph_pb2

    values = dict(values or {})
    report = RewriteReport()
    graph = graph_pb2.GraphDef()
    graph.CopyFrom(graph_def)
    inputs = [g.node_name(i) for i in inputs]
    outputs = [g.node_name(o) for o in outputs]

    _prune(graph, inputs, outputs, report, count_as="pruned")
    _drop_control_inputs(graph, report)
    _resource_variables(graph, values, report)
    _freeze_variables(graph, values, report)
    for node in graph.node:
        if node.op == "AddV2":
            node.op = "Add"
            report.add("add_v2_to_add")
    _fused_batch_norm_v3(graph, report)
    _bypass_identities(graph, protected=set(inputs) | set(outputs), report=report)
    _expand_constants(graph, report)
    _vector_reduction_axes(graph, report)
    _positive_axes(graph, report)
    _prune(graph, inputs, outputs, report, count_as="pruned")
    for node in graph.node:
        node.device = ""
        if "_class" in node.attr:  # colocation with nodes that may have been pruned
            del node.attr["_class"]

    report.unsupported = g.unsupported_nodes(graph)
    report.variables = [n.name for n in graph.node if n.op == "VariableV2"]
    if strict and report.unsupported:
        raise UnsupportedOpsError(report.unsupported, hint=_hint(report.unsupported))
    log.info("rewrote graph for BigDL: %s", {k: v for k, v in sorted(report.counts.items()) if v})
    return graph, report


def _hint(unsupported: Mapping[str, list[str]]) -> str:
    text = tfops.hint_for(unsupported)
    return f"hints:\n{text}" if text else ""


def _prune(graph, inputs: Sequence[str], outputs: Sequence[str], report: RewriteReport, *, count_as: str) -> None:
    by_name = {n.name: n for n in graph.node}
    stop = [i for i in inputs if i in by_name and by_name[i].op in ("Placeholder", "PlaceholderWithDefault")]
    keep = g.reachable(graph, outputs, stop_at=stop)
    kept = [n for n in graph.node if n.name in keep]
    report.add(count_as, len(graph.node) - len(kept))
    del graph.node[:]
    graph.node.extend(kept)
    # Function bodies are only reachable through call ops, which BigDL cannot load anyway.
    if not any(n.op.endswith("PartitionedCall") for n in kept):
        graph.library.Clear()
    for name in stop:  # a placeholder fed as input keeps no inputs of its own
        if by_name[name].op == "PlaceholderWithDefault":
            node = by_name[name]
            node.op = "Placeholder"
            del node.input[:]
            report.add("placeholder_with_default")


def _drop_control_inputs(graph, report: RewriteReport) -> None:
    for node in graph.node:
        data = [i for i in node.input if not i.startswith("^")]
        if len(data) != len(node.input):
            report.add("control_inputs_dropped", len(node.input) - len(data))
            del node.input[:]
            node.input.extend(data)


def _tensor_proto(array: np.ndarray):
    from tensorflow.python.framework import tensor_util

    return tensor_util.make_tensor_proto(array)


def _const(node, array: np.ndarray) -> None:
    """Turn `node` into a Const holding `array`, keeping its name."""
    from tensorflow.python.framework import dtypes

    node.op = "Const"
    del node.input[:]
    node.attr.clear()
    node.attr["dtype"].type = dtypes.as_dtype(array.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(_tensor_proto(array))


def _lookup(values: Mapping[str, np.ndarray], *names: str):
    for name in names:
        for key in (name, f"{name}:0"):
            if key in values:
                return np.asarray(values[key])
    return None


def _resource_variables(graph, values: Mapping[str, np.ndarray], report: RewriteReport) -> None:
    by_name = {n.name: n for n in graph.node}
    handles = {n.name for n in graph.node if n.op == "VarHandleOp"}
    for node in graph.node:
        if node.op != "ReadVariableOp":
            continue
        handle = by_name.get(g.node_name(node.input[0]))
        if handle is None or handle.name not in handles:
            continue
        value = _lookup(values, handle.name, g.variable_name(handle))
        dtype = handle.attr["dtype"].type
        if value is not None:
            _const(node, value.astype(_np_dtype(dtype), copy=False))
            report.add("resource_variables_to_const")
        else:
            node.op = "Identity"
            node.attr.clear()
            node.attr["T"].type = dtype
            report.add("resource_variables_to_variable_v2")
    for name in handles:
        handle = by_name[name]
        if _lookup(values, handle.name, g.variable_name(handle)) is not None:
            continue  # its reads became constants; the handle is pruned at the end
        shape = handle.attr["shape"]
        dtype = handle.attr["dtype"].type
        handle.op = "VariableV2"
        handle.attr.clear()
        handle.attr["dtype"].type = dtype
        handle.attr["shape"].CopyFrom(shape)
        handle.attr["container"].s = b""
        handle.attr["shared_name"].s = b""


def _np_dtype(enum: int):
    from tensorflow.python.framework import dtypes

    return dtypes.as_dtype(enum).as_numpy_dtype


def _freeze_variables(graph, values: Mapping[str, np.ndarray], report: RewriteReport) -> None:
    for node in graph.node:
        if node.op in ("VariableV2", "Variable"):
            value = _lookup(values, node.name)
            if value is not None:
                expected = g._shape_of(node.attr["shape"].shape) if "shape" in node.attr else None
                if expected is not None and None not in expected and list(value.shape) != expected:
                    raise TFImportError(
                        f"value of variable {node.name} has shape {list(value.shape)}, the graph says {expected}"
                    )
                _const(node, value.astype(_np_dtype(node.attr["dtype"].type), copy=False))
                report.add("variables_to_const")


def _fused_batch_norm_v3(graph, report: RewriteReport) -> None:
    read_ports: dict[str, set[int]] = {}
    for node in graph.node:
        for i in node.input:
            read_ports.setdefault(g.node_name(i), set()).add(g.input_port(i))
    for node in graph.node:
        if node.op != "FusedBatchNormV3":
            continue
        if node.attr["is_training"].b:
            log.warning("FusedBatchNormV3 %s has is_training=true: left as is", node.name)
            continue
        if 5 in read_ports.get(node.name, set()):
            log.warning("FusedBatchNormV3 %s: reserve_space_3 is read: left as is", node.name)
            continue
        node.op = "FusedBatchNormV2"
        report.add("fused_batch_norm_v3_to_v2")


def _bypass_identities(graph, *, protected: set[str], report: RewriteReport) -> None:
    by_name = {n.name: n for n in graph.node}

    def source(inp: str) -> str:
        seen = 0
        while True:
            node = by_name.get(g.node_name(inp))
            if node is None or node.op != "Identity" or node.name in protected or not node.input:
                return inp
            upstream = by_name.get(g.node_name(node.input[0]))
            if upstream is None or upstream.op in ("VariableV2", "Variable"):
                return inp  # keep TF1's `var/read`, which BigDL's layer patterns expect
            inp, seen = node.input[0], seen + 1

    for node in graph.node:
        for k, inp in enumerate(node.input):
            if inp.startswith("^"):
                continue
            new = source(inp)
            if new != inp:
                node.input[k] = new
                report.add("identity_inputs_bypassed")


def _expand_constants(graph, report: RewriteReport) -> None:
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.framework import tensor_util

    for node in graph.node:
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        if tensor.tensor_content or tensor.dtype in (types_pb2.DT_STRING, types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT):
            continue
        size = int(np.prod([d.size for d in tensor.tensor_shape.dim])) if tensor.tensor_shape.dim else 1
        explicit = sum(len(getattr(tensor, f)) for f in _NUMERIC_FIELDS)
        if explicit == size:
            continue
        array = tensor_util.MakeNdarray(tensor)
        proto = _tensor_proto(array)
        if array.ndim > 0 and not proto.tensor_content:
            proto.tensor_content = array.tobytes()
            for f in _NUMERIC_FIELDS:
                proto.ClearField(f)
        tensor.CopyFrom(proto)
        report.add("constants_expanded")


def _vector_reduction_axes(graph, report: RewriteReport) -> None:
    by_name = {n.name: n for n in graph.node}
    made: dict[str, str] = {}
    for node in list(graph.node):
        if node.op not in REDUCTION_OPS or len(node.input) < 2:
            continue
        axis = by_name.get(g.node_name(node.input[1]))
        if axis is None or axis.op != "Const" or axis.attr["value"].tensor.tensor_shape.dim:
            continue
        if axis.name not in made:
            from tensorflow.python.framework import tensor_util

            vector = graph.node.add()
            vector.name = f"{axis.name}/as_vector"
            _const(vector, tensor_util.MakeNdarray(axis.attr["value"].tensor).reshape(1))
            made[axis.name] = vector.name
            by_name[vector.name] = vector
        node.input[1] = made[axis.name]
        report.add("reduction_axes_to_vector")


def _input_ranks(graph) -> dict[str, int | None]:
    """Rank of the first input of every node, by TensorFlow's shape inference (None when unknown)."""
    import tensorflow as tf

    tf_graph = tf.Graph()
    try:
        with tf_graph.as_default():
            tf.compat.v1.import_graph_def(graph, name="")
    except Exception as e:  # noqa: BLE001 - an unusual graph: leave its axes alone
        log.warning("shape inference failed (%s); negative axes are left as they are", e)
        return {}
    ranks: dict[str, int | None] = {}
    for op in tf_graph.get_operations():
        ranks[op.name] = op.inputs[0].shape.rank if op.inputs else None
    return ranks


def _positive_axes(graph, report: RewriteReport) -> None:
    from tensorflow.python.framework import tensor_util

    by_name = {n.name: n for n in graph.node}
    squeezes = [n for n in graph.node if n.op == "Squeeze" and any(d < 0 for d in n.attr["squeeze_dims"].list.i)]
    axis_users = []
    for n in graph.node:
        slot = {"ConcatV2": len(n.input) - 1}.get(n.op, 1 if n.op in REDUCTION_OPS else None)
        if slot is None or slot >= len(n.input):
            continue
        axis = by_name.get(g.node_name(n.input[slot]))
        if axis is not None and axis.op == "Const" and (tensor_util.MakeNdarray(axis.attr["value"].tensor) < 0).any():
            axis_users.append((n, slot, axis))
    if not squeezes and not axis_users:
        return
    ranks = _input_ranks(graph)
    for node in squeezes:
        rank = ranks.get(node.name)
        if rank is None:
            continue
        dims = [d + rank if d < 0 else d for d in node.attr["squeeze_dims"].list.i]
        del node.attr["squeeze_dims"].list.i[:]
        node.attr["squeeze_dims"].list.i.extend(dims)
        report.add("negative_axes_made_positive")
    for node, slot, axis in axis_users:
        rank = ranks.get(node.name)
        if rank is None:
            continue
        value = tensor_util.MakeNdarray(axis.attr["value"].tensor)
        fixed = graph.node.add()
        fixed.name = f"{node.name}/positive_axis"
        _const(fixed, np.where(value < 0, value + rank, value).astype(value.dtype))
        node.input[slot] = fixed.name
        report.add("negative_axes_made_positive")
