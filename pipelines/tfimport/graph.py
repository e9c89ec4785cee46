"""Pure inspection of a binary GraphDef: inputs, candidate outputs, op histogram, variables, unsupported ops.

Nothing here starts a JVM; TensorFlow's protobuf classes are imported when a function needs them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.tfimport import ops as tfops
from pipelines.tfimport.errors import GraphFormatError, NodeNameError

# Op types that are never a model's output even when nothing consumes them.
NON_OUTPUT_OPS = frozenset(
    {
        "NoOp",
        "Const",
        "Placeholder",
        "PlaceholderWithDefault",
        "VariableV2",
        "VarHandleOp",
        "Assign",
        "AssignVariableOp",
        "AssignAdd",
        "AssignSub",
        "SaveV2",
        "RestoreV2",
        "MergeV2Checkpoints",
        "ShardedFilename",
        "StringJoin",
        "Assert",
        "ControlTrigger",
        "VarIsInitializedOp",
        "IsVariableInitialized",
    }
)
VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp"})
# Scopes that TF1's Saver and initialisers add; never part of a model's forward pass.
NON_OUTPUT_SCOPES = ("save/", "init", "report_uninitialized", "gradients/")
_SHAPE_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank"})


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: list[int | None] | None  # None: unknown rank; None in the list: unknown dimension

    def __str__(self) -> str:
        shape = "?" if self.shape is None else "(" + ", ".join("?" if d is None else str(d) for d in self.shape) + ")"
        return f"{self.name} {self.dtype}{shape}"


@dataclass
class GraphSummary:
    """What a user needs to pick input and output names and to see whether BigDL can load the graph."""

    nodes: int
    inputs: list[TensorSpec]
    candidate_outputs: list[str]
    op_histogram: dict[str, int]
    variables: list[TensorSpec]
    unsupported: dict[str, list[str]] = field(default_factory=dict)  # op -> node names, before any rewrite
    unsupported_after_rewrite: dict[str, list[str]] | None = None
    rewrites: dict[str, int] | None = None
    functions: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = [asdict(s) for s in self.inputs]
        d["variables"] = [asdict(s) for s in self.variables]
        return d

    def format(self) -> str:
        lines = [f"nodes: {self.nodes}" + (f" (+ {self.functions} library functions)" if self.functions else "")]
        lines.append("inputs (placeholders):")
        lines += [f"  {s}" for s in self.inputs] or ["  (none)"]
        lines.append("candidate outputs (consumed by no other node):")
        lines += [f"  {name}" for name in self.candidate_outputs] or ["  (none)"]
        lines.append("variables:")
        lines += [f"  {s}" for s in self.variables] or ["  (none: a frozen graph)"]
        lines.append("op histogram:")
        lines += [
            f"  {op:<28}{n:>6}{'' if tfops.is_loadable(op) else '   <- no BigDL loader'}"
            for op, n in sorted(self.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        lines.append("ops BigDL cannot load (before rewriting):")
        lines += _format_unsupported(self.unsupported)
        if self.unsupported_after_rewrite is not None:
            done = ", ".join(f"{k} {v}" for k, v in sorted((self.rewrites or {}).items()) if v) or "nothing to do"
            lines.append(f"rewrites applied: {done}")
            lines.append("ops BigDL cannot load after rewriting:")
            lines += _format_unsupported(self.unsupported_after_rewrite)
        return "\n".join(lines)


def _format_unsupported(unsupported: dict[str, list[str]]) -> list[str]:
    if not unsupported:
        return ["  (none)"]
    out = []
    for op, names in sorted(unsupported.items()):
        shown = ", ".join(names[:5]) + (f", ... (+{len(names) - 5})" if len(names) > 5 else "")
        out.append(f"  {op} x{len(names)}: {shown}")
        if op in tfops.HINTS:
            out.append(f"      hint: {tfops.HINTS[op]}")
    return out


def parse_graph_def(data: bytes, *, source: str = "<bytes>"):
    """A `GraphDef` from the bytes of a binary `.pb`; corrupt, truncated or empty input is refused."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import graph_pb2

    if not data:
        raise GraphFormatError(f"{source}: the file is empty")
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise GraphFormatError(f"{source}: not a binary TensorFlow GraphDef (corrupt or truncated?): {e}") from None
    if not graph.node:
        raise GraphFormatError(f"{source}: no nodes: not a binary TensorFlow GraphDef, or an empty graph")
    if not graph.HasField("versions"):
        # TensorFlow writes `versions` (field 4) after the nodes and the library: a file cut anywhere
        # between two nodes still parses, but without it.
        raise GraphFormatError(f"{source}: incomplete GraphDef (no versions field): truncated file?")
    check_complete(graph, source=source)
    return graph


def check_complete(graph, *, source: str = "<graph>") -> None:
    """Every node input names a node of the graph (a truncated file cut between nodes fails here)."""
    names = {n.name for n in graph.node}
    dangling = [(n.name, i) for n in graph.node for i in n.input if node_name(i) not in names]
    if dangling:
        shown = ", ".join(f"{n} <- {i}" for n, i in dangling[:5])
        raise GraphFormatError(
            f"{source}: {len(dangling)} node input(s) name nodes missing from the graph (truncated file?): {shown}"
        )


def node_name(tensor_or_input: str) -> str:
    """'^a' / 'a:1' / 'a' -> 'a'."""
    return tensor_or_input.lstrip("^").split(":")[0]


def input_port(tensor_or_input: str) -> int:
    name = tensor_or_input.lstrip("^")
    return int(name.rsplit(":", 1)[1]) if ":" in name else 0


def consumers(graph) -> dict[str, list[str]]:
    """node name -> names of nodes that read it (data or control)."""
    out: dict[str, list[str]] = {n.name: [] for n in graph.node}
    for n in graph.node:
        for i in n.input:
            out.setdefault(node_name(i), []).append(n.name)
    return out


def reachable(graph, outputs: Iterable[str], *, stop_at: Iterable[str] = (), control: bool = False) -> set[str]:
    """Names of the nodes `outputs` depend on (themselves included), not looking past `stop_at`."""
    by_name = {n.name: n for n in graph.node}
    stop = set(stop_at)
    seen: set[str] = set()
    todo = [node_name(o) for o in outputs]
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        if name in stop:
            continue
        for i in by_name[name].input:
            if control or not i.startswith("^"):
                todo.append(node_name(i))
    return seen


def subgraph(graph, outputs: Iterable[str], *, stop_at: Iterable[str] = ()):
    """A copy of `graph` with only the nodes `outputs` depend on, not looking past `stop_at`."""
    keep = reachable(graph, outputs, stop_at=stop_at)
    part = type(graph)()
    part.versions.CopyFrom(graph.versions)
    part.node.extend(n for n in graph.node if n.name in keep)
    return part


def _dtype_name(attr_value) -> str:
    from tensorflow.python.framework import dtypes

    try:
        return dtypes.as_dtype(attr_value.type).name
    except TypeError:
        return str(attr_value.type)


def _shape_of(shape_proto) -> list[int | None] | None:
    if shape_proto.unknown_rank:
        return None
    return [None if d.size < 0 else int(d.size) for d in shape_proto.dim]


def placeholder_spec(node) -> TensorSpec:
    shape = _shape_of(node.attr["shape"].shape) if "shape" in node.attr else None
    return TensorSpec(node.name, _dtype_name(node.attr["dtype"]) if "dtype" in node.attr else "?", shape)


def variable_specs(graph) -> list[TensorSpec]:
    """VariableV2 / VarHandleOp nodes, named as TF names their values (a VarHandleOp by its shared_name)."""
    specs = []
    for n in graph.node:
        if n.op in VARIABLE_OPS:
            name = variable_name(n)
            specs.append(
                TensorSpec(
                    name,
                    _dtype_name(n.attr["dtype"]) if "dtype" in n.attr else "?",
                    _shape_of(n.attr["shape"].shape) if "shape" in n.attr else None,
                )
            )
    return specs


def variable_name(node) -> str:
    if node.op == "VarHandleOp" and node.attr["shared_name"].s:
        return node.attr["shared_name"].s.decode()
    return node.name


def placeholders(graph) -> list[str]:
    return [n.name for n in graph.node if n.op in ("Placeholder", "PlaceholderWithDefault")]


def _floating_or_unknown(node) -> bool:
    from tensorflow.python.framework import dtypes

    for key in ("T", "dtype", "out_type"):
        if key in node.attr and node.attr[key].type:
            try:
                return dtypes.as_dtype(node.attr[key].type).is_floating
            except TypeError:
                return True
    return True


def candidate_outputs(graph) -> list[str]:
    """Nodes no other node reads that look like a model output: not initialisers, savers, gradients,
    constants, variables, shape arithmetic or other integer results."""
    used = consumers(graph)
    by_name = {n.name: n for n in graph.node}

    def reads_a_variable(n) -> bool:  # e.g. an optimiser slot's unused `/read`
        return (
            n.op in ("Identity", "ReadVariableOp")
            and len(n.input) >= 1
            and getattr(by_name.get(node_name(n.input[0])), "op", "") in VARIABLE_OPS
        )

    return [
        n.name
        for n in graph.node
        if not used.get(n.name)
        and n.op not in NON_OUTPUT_OPS
        and n.op not in _SHAPE_OPS
        and not reads_a_variable(n)
        and not n.name.startswith(NON_OUTPUT_SCOPES)
        and not n.op.startswith(("Apply", "ResourceApply", "Assign"))
        and _floating_or_unknown(n)
    ]


def unsupported_nodes(graph, names: Iterable[str] | None = None) -> dict[str, list[str]]:
    """op -> node names, for the nodes (default: all) whose op BigDL has no loader for."""
    wanted = None if names is None else set(names)
    found: dict[str, list[str]] = {}
    for n in graph.node:
        if (wanted is None or n.name in wanted) and not tfops.is_loadable(n.op):
            found.setdefault(n.op, []).append(n.name)
    return found


def summarize(graph) -> GraphSummary:
    by_name = {n.name: n for n in graph.node}
    return GraphSummary(
        nodes=len(graph.node),
        inputs=[placeholder_spec(by_name[p]) for p in placeholders(graph)],
        candidate_outputs=candidate_outputs(graph),
        op_histogram=dict(Counter(n.op for n in graph.node)),
        variables=variable_specs(graph),
        unsupported=unsupported_nodes(graph),
        functions=len(graph.library.function),
    )


def _in_graph(graph, given: Sequence[str], kind: str, hint: str, choices: Callable[[Any], list[str]]) -> list[str]:
    """`given` without ':N' ports; NodeNameError for names not in the graph, listing `choices(graph)` as `hint`."""
    given = [node_name(x) for x in given]
    names = {n.name for n in graph.node}
    missing = [x for x in given if x not in names]
    if missing:
        raise NodeNameError(
            f"{kind} node(s) {', '.join(missing)} not in the graph; {hint}: {', '.join(choices(graph)) or '(none)'}"
        )
    return given


def resolve_names(graph, inputs: Sequence[str] | None, outputs: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Check given input/output node names, or pick the single candidate when omitted.

    Names may carry a ':0' port suffix, which is dropped.
    """
    if outputs:
        outputs = _in_graph(graph, outputs, "output", "candidate outputs", candidate_outputs)
    else:
        found = candidate_outputs(graph)
        if len(found) != 1:
            raise NodeNameError(
                f"the graph has {len(found)} candidate outputs ({', '.join(found[:10]) or 'none'}): name the output"
            )
        outputs = found
    needed = reachable(graph, outputs)
    if inputs:
        inputs = _in_graph(graph, inputs, "input", "placeholders", placeholders)
        unused = [i for i in inputs if i not in needed]
        if unused:
            raise NodeNameError(f"input node(s) {', '.join(unused)} do not feed the output(s) {', '.join(outputs)}")
    else:
        found = [p for p in placeholders(graph) if p in needed]
        if len(found) != 1:
            raise NodeNameError(
                f"the output(s) depend on {len(found)} placeholders ({', '.join(found) or 'none'}): name the input(s)"
            )
        inputs = found
    return list(inputs), list(outputs)
