"""Recognise the unrolled LSTM in a rewritten TensorFlow graph, to run it on the project's fused LSTM layer.

One unrolled step, as Keras (`LSTM(unroll=True)`) and `tf.compat.v1` (`static_rnn` over `LSTMCell` or
`BasicLSTMCell`, stacked with `MultiRNNCell`) freeze it: gate pre-activations z = x W + h U + b (or
[x, h] K + b) split four ways; three gates through a sigmoid (TF1 adds its `forget_bias` constant first), one
through a tanh; c = f c' + i g; h = o tanh(c). Steps sharing their weights and chained through h and c from a
zero state make a layer; a layer's steps read the slices of one sequence (`Unpack` of it, or of its time-major
transpose) or the steps of the layer below; stacked layers make one block, from the sequence the first layer
reads to the tensor (last step, or every step) the rest of the graph reads.

What is recognised is checked by numbers before it is used: TensorFlow runs the block on random sequences and
the fused layer's arithmetic (NumPy, float64) must agree within `TOLERANCE`. Anything else (peepholes,
projections, clipping, state read elsewhere, several separate LSTMs, a `While` loop) gets a `NotRecognised`
saying why, and the caller imports the graph node by node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipelines.tfimport import graph as g

TOLERANCE = 1e-4  # float32 TensorFlow against float64 NumPy; parity with TensorFlow is tested end to end
GATES = ("i", "g", "f", "o")  # BigDL's (and the fused layer's) order: input, candidate, forget, output
_ADD_OPS = ("Add", "AddV2", "BiasAdd")


class NotRecognised(Exception):
    """The graph holds no LSTM the fused layer can run, and why."""


@dataclass(frozen=True)
class Layer:
    """One LSTM layer's weights in the fused layer's layout: input weight (4H x F), bias (4H), hidden weight (4H x H),
    gates (input, candidate, forget, output)."""

    weight: np.ndarray
    bias: np.ndarray
    recurrent: np.ndarray

    @property
    def input_size(self) -> int:
        return self.weight.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.recurrent.shape[1]


@dataclass(frozen=True)
class LSTMBlock:
    """Stacked LSTM layers: `source` is the (batch, time, features) tensor the first reads, `output` the node the rest
    of the graph reads: the top layer's last step (batch, H), or with `return_sequences` every step (batch, time, H)."""

    source: str
    output: str
    layers: tuple[Layer, ...]
    steps: int
    return_sequences: bool

    def describe(self) -> str:
        widths = "+".join(str(layer.hidden_size) for layer in self.layers)
        last = "every step" if self.return_sequences else "the last step"
        return f"{len(self.layers)} LSTM layer(s) of {widths} units over {self.steps} steps, giving {last}"


@dataclass
class _Step:
    terms: list[tuple[str, str]]  # (left operand, weight) of each MatMul in the gates' sum
    bias: str | None
    ports: dict[str, int]  # gate -> output of the Split
    offsets: dict[int, float]  # output of the Split -> constant added before its activation
    c_prev: str
    c: str
    h: str


class _Graph:
    """Lookups over a GraphDef: nodes, readers of each tensor, constant (or variable) values."""

    def __init__(self, graph_def, variables: Mapping[str, np.ndarray]):
        self.nodes = {n.name: n for n in graph_def.node}
        self.readers: dict[str, list[str]] = {}
        for n in graph_def.node:
            for i in n.input:
                if not i.startswith("^"):
                    self.readers.setdefault(tensor(i), []).append(n.name)
        self.variables = variables

    def node(self, t: str):
        return self.nodes[g.node_name(t)]

    def value(self, t: str) -> np.ndarray | None:
        from tensorflow.python.framework import tensor_util

        node = self.nodes.get(g.node_name(t))
        if node is None:
            return None
        if node.op == "Identity" and node.input and self.nodes[g.node_name(node.input[0])].op == "VariableV2":
            node = self.nodes[g.node_name(node.input[0])]
        if node.op == "VariableV2":
            return None if node.name not in self.variables else np.asarray(self.variables[node.name])
        if node.op == "Const":
            return tensor_util.MakeNdarray(node.attr["value"].tensor)
        return None

    def only_reader(self, t: str, why: str):
        readers = self.readers.get(tensor(t), [])
        if len(readers) != 1:
            raise NotRecognised(f"{why}: {t} is read by {len(readers)} nodes")
        return self.nodes[readers[0]]

    def is_zero(self, t: str) -> bool:
        node = self.node(t)
        if node.op == "ZerosLike":
            return True
        if node.op == "Fill":
            fill = self.value(node.input[1])
            return fill is not None and fill.size == 1 and float(fill) == 0.0
        value = self.value(t)
        return value is not None and value.dtype.kind == "f" and not value.any()


def tensor(t: str) -> str:
    """A tensor's canonical name: 'a:0' and 'a' are the same tensor."""
    return t[:-2] if t.endswith(":0") else t


def _output(node_name: str, port: int) -> str:
    return node_name if port == 0 else f"{node_name}:{port}"


def _sum_terms(graph: _Graph, t: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The MatMul terms (left operand, weight) and the bias tensors of a tree of additions."""
    node = graph.node(t)
    if node.op in _ADD_OPS:
        left, right = (_sum_terms(graph, i) for i in node.input[:2])
        return left[0] + right[0], left[1] + right[1]
    if node.op == "MatMul":
        if node.attr["transpose_a"].b or node.attr["transpose_b"].b or graph.value(node.input[1]) is None:
            raise NotRecognised(f"the gates' product {node.name} is not an input times a weight constant")
        return [(tensor(node.input[0]), tensor(node.input[1]))], []
    value = graph.value(t)
    if value is not None and value.ndim == 1:
        return [], [tensor(t)]
    raise NotRecognised(f"the gates' sum has a {node.op} term ({node.name})")


def _step(graph: _Graph, split) -> _Step:
    """The LSTM step around a four-way Split of the gate pre-activations."""
    axis = graph.value(split.input[0])
    if axis is None or axis.size != 1 or int(axis) not in (1, -1):
        raise NotRecognised(f"{split.name} does not split the gates along the features")
    terms, biases = _sum_terms(graph, split.input[1])
    if len(biases) > 1 or len(terms) not in (1, 2):
        raise NotRecognised(f"the gates of {split.name} are not x W + h U + b")
    activations, offsets = {}, {}
    for port in range(4):
        node = graph.only_reader(_output(split.name, port), "a gate is read more than once")
        if node.op in ("Add", "AddV2"):
            other = [i for i in node.input if g.node_name(i) != split.name]
            value = graph.value(other[0]) if len(other) == 1 else None
            if value is None or value.size != 1:
                raise NotRecognised(f"gate {port} of {split.name} gets more than a constant added ({node.name})")
            offsets[port] = float(value)
            node = graph.only_reader(node.name, "a gate is read more than once")
        if node.op not in ("Sigmoid", "Tanh"):
            raise NotRecognised(f"gate {port} of {split.name} goes through {node.op}, not a sigmoid or a tanh")
        activations[port] = node
    tanh = [p for p, a in activations.items() if a.op == "Tanh"]
    if len(tanh) != 1:
        raise NotRecognised(f"{split.name} has {len(tanh)} tanh gates, not one")
    by_activation = {a.name: p for p, a in activations.items()}
    candidate = activations[tanh[0]].name
    ig = graph.only_reader(candidate, "the candidate is read more than once")
    i = _gate_times(ig, candidate, by_activation)
    c = graph.only_reader(ig.name, "the input gate's product is read more than once")
    fc = [graph.node(x) for x in c.input if g.node_name(x) != ig.name] if c.op in ("Add", "AddV2") else []
    if len(fc) != 1 or fc[0].op != "Mul":
        raise NotRecognised(f"the cell update around {split.name} is not f c' + i g")
    gates = [g.node_name(x) for x in fc[0].input if g.node_name(x) in by_activation]
    if len(gates) != 1:
        raise NotRecognised(f"the cell update around {split.name} is not f c' + i g")
    f = by_activation[gates[0]]
    c_prev = next(tensor(x) for x in fc[0].input if g.node_name(x) != gates[0])
    tanh_c = [graph.nodes[r] for r in graph.readers.get(c.name, []) if graph.nodes[r].op == "Tanh"]
    if len(tanh_c) != 1:
        raise NotRecognised(f"the output around {split.name} is not o tanh(c)")
    h = graph.only_reader(tanh_c[0].name, "tanh(c) is read more than once")
    ports = {"i": i, "g": tanh[0], "f": f, "o": _gate_times(h, tanh_c[0].name, by_activation)}
    if sorted(ports.values()) != [0, 1, 2, 3]:
        raise NotRecognised(f"the gates of {split.name} do not play four different roles")
    return _Step(terms, biases[0] if biases else None, ports, offsets, c_prev, c.name, h.name)


def _gate_times(mul, known: str, by_activation: Mapping[str, int]) -> int:
    """The gate (output of the Split) whose activation `mul` multiplies with the node `known`."""
    others = [g.node_name(x) for x in mul.input if g.node_name(x) != known] if mul.op == "Mul" else []
    if len(others) != 1 or others[0] not in by_activation:
        raise NotRecognised(f"{mul.name} is not a gate times {known}")
    return by_activation[others[0]]


@dataclass
class _Layer:
    steps: list[_Step]
    inputs: list[str]  # x of each step, in time order
    weight: str
    recurrent: str | None  # None: one weight for [x, h]
    bias: str | None


def _layers(graph: _Graph, steps: list[_Step]) -> list[_Layer]:
    """Steps grouped by their weights and put in time order."""
    groups: dict[tuple, list[_Step]] = {}
    for step in steps:
        key = (tuple(sorted(w for _, w in step.terms)), step.bias)
        groups.setdefault(key, []).append(step)
    return [_chain(graph, group) for group in groups.values()]


def _chain(graph: _Graph, steps: list[_Step]) -> _Layer:
    h_of = {step.h: step for step in steps}

    def recurrent_side(step: _Step) -> tuple[str, str, str | None, str]:
        """(x, weight of x, weight of h or None for [x, h] K, h)"""
        if len(step.terms) == 2:
            (a, wa), (b, wb) = step.terms
            if b in h_of or (graph.is_zero(b) and a not in h_of):
                return a, wa, wb, b
            return b, wb, wa, a
        ((left, weight),) = step.terms
        concat = graph.node(left)
        parts = [tensor(x) for x in concat.input[:-1]] if concat.op == "ConcatV2" else []
        axis = graph.value(concat.input[-1]) if parts else None
        if len(parts) != 2 or axis is None or int(axis) not in (1, -1):
            raise NotRecognised(f"the gates' product of {concat.name} reads neither x and h apart nor [x, h]")
        return parts[0], weight, None, parts[1]

    sides = [recurrent_side(step) for step in steps]
    weights = {(w, u) for _, w, u, _ in sides}
    if len(weights) != 1:
        raise NotRecognised("steps sharing their weights use them in different roles")
    by_prev: dict[str, list[tuple[_Step, str]]] = {}
    for step, (_, _, _, h_prev) in zip(steps, sides):
        by_prev.setdefault("zero" if graph.is_zero(h_prev) else h_prev, []).append((step, h_prev))
    firsts = by_prev.get("zero", [])
    if len(firsts) != 1:
        raise NotRecognised(f"{len(firsts)} steps of one layer start from a zero state, not one")
    ordered = [firsts[0][0]]
    while ordered[-1].h in by_prev:
        following = by_prev.pop(ordered[-1].h)
        if len(following) != 1:
            raise NotRecognised(f"{ordered[-1].h} feeds {len(following)} steps")
        ordered.append(following[0][0])
    if len(ordered) != len(steps):
        raise NotRecognised(f"the steps of one layer do not form one chain ({len(ordered)} of {len(steps)})")
    for before, after in zip([None, *ordered], ordered):
        expected_ok = graph.is_zero(after.c_prev) if before is None else after.c_prev == before.c
        if not expected_ok:
            raise NotRecognised(f"the cell state of {after.c} does not come from the step before")
    x_of = {step.h: x for step, (x, _, _, _) in zip(steps, sides)}
    ((weight, recurrent),) = weights
    return _Layer(ordered, [x_of[s.h] for s in ordered], weight, recurrent, ordered[0].bias)


def _slices_of(graph: _Graph, inputs: Sequence[str]) -> str:
    """The (batch, time, features) tensor whose time steps are `inputs`."""
    nodes = {g.node_name(x) for x in inputs}
    unpack = graph.nodes[next(iter(nodes))] if len(nodes) == 1 else None
    expected = [_output(unpack.name, t) for t in range(len(inputs))] if unpack is not None else []
    if unpack is None or unpack.op != "Unpack" or list(inputs) != expected:
        raise NotRecognised("the steps' inputs are not the slices of one sequence in order")
    axis = unpack.attr["axis"].i
    source = tensor(unpack.input[0])
    if axis in (1, -2):
        return source
    transpose = graph.node(source)
    perm = graph.value(transpose.input[1]) if transpose.op == "Transpose" else None
    if axis != 0 or perm is None or list(perm) != [1, 0, 2]:
        raise NotRecognised(f"the steps are slices of {source} along axis {axis}, not along time")
    return tensor(transpose.input[0])


def _sequence_of(graph: _Graph, layer: _Layer) -> str | None:
    """The tensor (batch, time, H) stacking the layer's steps, when the graph builds one."""
    hs = [s.h for s in layer.steps]
    for reader in graph.readers.get(hs[-1], []):
        pack = graph.nodes[reader]
        if pack.op != "Pack" or [tensor(x) for x in pack.input] != hs:
            continue
        if pack.attr["axis"].i in (1, -2):
            return pack.name
        for name in graph.readers.get(pack.name, []):
            transpose = graph.nodes[name]
            perm = graph.value(transpose.input[1]) if transpose.op == "Transpose" else None
            if pack.attr["axis"].i == 0 and perm is not None and list(perm) == [1, 0, 2]:
                return transpose.name
    return None


def _stack(graph: _Graph, layers: list[_Layer]) -> tuple[list[_Layer], str, str | None]:
    """The layers from the bottom up, the sequence the bottom one reads, and the top one's sequence tensor if any."""
    sequences = [_sequence_of(graph, layer) for layer in layers]
    below: dict[int, int] = {}
    sources: dict[int, str] = {}
    for k, layer in enumerate(layers):
        direct = [j for j, other in enumerate(layers) if [s.h for s in other.steps] == layer.inputs]
        if direct:
            below[k] = direct[0]
            continue
        source = _slices_of(graph, layer.inputs)
        if source in sequences:
            below[k] = sequences.index(source)
        else:
            sources[k] = source
    above: dict[int, list[int]] = {}
    for k, j in below.items():
        above.setdefault(j, []).append(k)
    if len(sources) != 1 or any(len(ks) > 1 for ks in above.values()):
        raise NotRecognised(f"{len(layers)} LSTM layers do not make one stack")
    order = list(sources)
    while order[-1] in above:
        order.append(above[order[-1]][0])
    if len(order) != len(layers):
        raise NotRecognised(f"{len(layers)} LSTM layers do not make one stack")
    return [layers[k] for k in order], sources[order[0]], sequences[order[-1]]


def _weights(graph: _Graph, layer: _Layer) -> Layer:
    kernel = graph.value(layer.weight)
    assert kernel is not None  # _sum_terms checked it
    hidden = kernel.shape[1] // 4
    recurrent = kernel[-hidden:] if layer.recurrent is None else graph.value(layer.recurrent)
    if layer.recurrent is None:
        kernel = kernel[:-hidden]
    given = None if layer.bias is None else graph.value(layer.bias)
    bias = np.zeros(4 * hidden) if given is None else given.astype(np.float64)
    if recurrent is None or recurrent.shape != (hidden, 4 * hidden) or bias.shape != (4 * hidden,):
        raise NotRecognised(f"the weights {layer.weight} do not have an LSTM's shapes")
    step = layer.steps[0]
    for later in layer.steps[1:]:
        if later.ports != step.ports or later.offsets != step.offsets:
            raise NotRecognised("the steps of one layer order or offset their gates differently")
    bias = bias.copy()
    for port, offset in step.offsets.items():
        bias[port * hidden : (port + 1) * hidden] += offset

    def fused_order(a: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [a[..., step.ports[gate] * hidden : (step.ports[gate] + 1) * hidden] for gate in GATES], -1
        )

    return Layer(
        fused_order(kernel).T.astype(np.float32),
        fused_order(bias).astype(np.float32),
        fused_order(recurrent).T.astype(np.float32),
    )


def recognise(graph_def, *, inputs: Sequence[str], outputs: Sequence[str], variables: Mapping[str, np.ndarray]):
    """The LSTM block of `graph_def` (rewritten by `rewrite_for_bigdl`), or None when it has no LSTM step at all.

    `variables` gives the values of `VariableV2` nodes (from the `.bin`). Raises `NotRecognised` saying why when the
    graph has LSTM-like steps that the fused layer cannot run as they are.
    """
    graph = _Graph(graph_def, variables)
    splits = [n for n in graph_def.node if n.op == "Split" and n.attr["num_split"].i == 4]
    if not splits:
        if any(n.op in ("While", "StatelessWhile", "TensorListReserve") for n in graph_def.node):
            raise NotRecognised("a While loop (an RNN not unrolled)")
        return None
    stack, source, sequence = _stack(graph, _layers(graph, [_step(graph, s) for s in splits]))
    top = stack[-1]
    return_sequences = sequence is not None and bool(graph.readers.get(sequence))
    output = sequence if sequence is not None and return_sequences else top.steps[-1].h
    _check_block(graph, graph_def, source=source, output=output, inputs=inputs, outputs=outputs)
    block = LSTMBlock(
        source,
        output,
        tuple(_weights(graph, layer) for layer in stack),
        steps=len(top.steps),
        return_sequences=return_sequences,
    )
    _check_numbers(graph_def, block, variables)
    return block


def _check_block(graph: _Graph, graph_def, *, source: str, output: str, inputs, outputs) -> None:
    """The rest of the graph reads the block through `output` only, and the block reads nothing but `source`."""
    if ":" in source or ":" in output:
        raise NotRecognised(f"the LSTM reads or gives a second output of a node ({source}, {output})")
    block = g.reachable(graph_def, [output], stop_at=[source]) - {source}
    for name in block - {output}:
        node = graph.nodes[name]
        if node.op == "Placeholder":
            raise NotRecognised(f"the LSTM also reads the placeholder {name}")
        outside = [r for r in graph.readers.get(name, []) if r not in block and node.op != "Const"]
        outside += [r for p in range(1, 4) for r in graph.readers.get(f"{name}:{p}", []) if r not in block]
        if outside:
            raise NotRecognised(f"{name} inside the LSTM is also read by {outside[0]}")
    head = g.reachable(graph_def, outputs, stop_at=[output])
    if any(graph.nodes[n].op == "Placeholder" for n in head):
        raise NotRecognised("the rest of the graph also reads an input besides the LSTM")
    prefix = g.reachable(graph_def, [source], stop_at=inputs)
    stray = [n for n in prefix if graph.nodes[n].op == "Placeholder" and n not in inputs]
    if stray:
        raise NotRecognised(f"the LSTM's input depends on the placeholder {stray[0]}")


def _check_numbers(graph_def, block: LSTMBlock, variables: Mapping[str, np.ndarray]) -> None:
    import tensorflow as tf

    from pipelines.tfimport.rewrite import _const

    frozen = type(graph_def)()
    frozen.CopyFrom(graph_def)
    for node in frozen.node:
        if node.op == "VariableV2" and node.name in variables:
            _const(node, np.asarray(variables[node.name], np.float32))
    x = np.random.default_rng(0).normal(size=(3, block.steps, block.layers[0].input_size)).astype(np.float32)
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.compat.v1.import_graph_def(frozen, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            expected = session.run(f"{block.output}:0", {f"{block.source}:0": x})
    except Exception as e:  # noqa: BLE001 - TensorFlow cannot run the part alone: not one we can replace
        raise NotRecognised(f"TensorFlow cannot run the LSTM alone ({type(e).__name__})") from None
    got = reference(x, block)
    if got.shape != expected.shape or np.abs(got - expected).max() > TOLERANCE:
        difference = "shapes differ" if got.shape != expected.shape else f"{np.abs(got - expected).max():.1e} apart"
        raise NotRecognised(f"the fused layer's arithmetic and TensorFlow's differ ({difference})")


def reference(x: np.ndarray, block: LSTMBlock) -> np.ndarray:
    """What the fused layers compute, in float64 NumPy: (batch, time, features) -> the block's output."""
    sequence = x.astype(np.float64)
    for layer in block.layers:
        n, hidden = sequence.shape[0], layer.hidden_size
        h, c, outputs = np.zeros((n, hidden)), np.zeros((n, hidden)), []
        for t in range(sequence.shape[1]):
            z = sequence[:, t] @ layer.weight.T.astype(np.float64) + h @ layer.recurrent.T + layer.bias
            i, cand, f, o = np.split(z, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cand)
            h = _sigmoid(o) * np.tanh(c)
            outputs.append(h)
        sequence = np.stack(outputs, axis=1)
    return sequence if block.return_sequences else sequence[:, -1]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def head_graph(graph_def, block: LSTMBlock, outputs: Sequence[str]):
    """The graph after the block, reading the block's output from a placeholder of the same name; None when the
    outputs are the block's."""
    from tensorflow.core.framework import types_pb2

    if [g.node_name(o) for o in outputs] == [block.output]:
        return None
    head = g.subgraph(graph_def, outputs, stop_at=[block.output])
    node = next(n for n in head.node if n.name == block.output)
    del node.input[:]
    node.attr.clear()
    node.op = "Placeholder"
    node.attr["dtype"].type = types_pb2.DT_FLOAT
    hidden = block.layers[-1].hidden_size
    for size in [-1, block.steps, hidden] if block.return_sequences else [-1, hidden]:
        node.attr["shape"].shape.dim.add().size = size
    return head
