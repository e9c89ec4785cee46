"""Graph inspection and TF2 -> TF1 rewriting, TensorFlow only (no Spark, no BigDL)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from pipelines.tfimport import graph as g
from pipelines.tfimport import ops as tfops
from pipelines.tfimport import tfmodels
from pipelines.tfimport.errors import GraphFormatError, NodeNameError, TFImportError, UnsupportedOpsError
from pipelines.tfimport.export import frozen_keras_graph, run_graph
from pipelines.tfimport.rewrite import rewrite_for_bigdl

T, F = 8, 3


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(3).normal(size=(5, T, F)).astype(np.float32)


@pytest.fixture(scope="module")
def keras_lstm_graph():
    model = tfmodels.keras_lstm(T, F, hidden=4)
    return frozen_keras_graph(model)


def test_loadable_ops_match_the_bigdl_jar():
    import bigdl

    share = os.path.join(os.path.dirname(bigdl.__file__), "share", "dllib", "lib")
    (jar,) = glob.glob(os.path.join(share, "bigdl-dllib-*.jar"))
    assert tfops.jar_loader_ops(jar) == set(tfops.LOADABLE_OPS)
    assert {"AddV2", "ReadVariableOp", "VarHandleOp", "StatelessWhile", "FusedBatchNormV3"}.isdisjoint(
        tfops.LOADABLE_OPS
    )


def test_corrupt_truncated_and_empty_files_are_refused(keras_lstm_graph):
    data = keras_lstm_graph[0].SerializeToString()
    with pytest.raises(GraphFormatError, match="empty"):
        g.parse_graph_def(b"", source="x.pb")
    with pytest.raises(GraphFormatError, match="x.pb"):
        g.parse_graph_def(b"\x0a\xff\xff\xff\x0fgarbage" * 10, source="x.pb")
    with pytest.raises(GraphFormatError, match="truncated"):
        g.parse_graph_def(data[: len(data) // 2], source="x.pb")
    assert len(g.parse_graph_def(data).node) == len(keras_lstm_graph[0].node)


def test_summary_names_inputs_outputs_and_unsupported_ops(keras_lstm_graph):
    graph_def, placeholder, output = keras_lstm_graph
    summary = g.summarize(graph_def)
    assert [(s.name, s.dtype, s.shape) for s in summary.inputs] == [(placeholder, "float32", [None, T, F])]
    assert summary.candidate_outputs == [output]
    assert summary.unsupported["AddV2"] and summary.op_histogram["AddV2"] == len(summary.unsupported["AddV2"])
    text = summary.format()
    assert "AddV2" in text and "no BigDL loader" in text and placeholder in text


def test_compat_v1_graph_lists_its_variables():
    model = tfmodels.compat_v1_lstm(T, F, hidden=4)
    try:
        summary = g.summarize(model.graph.as_graph_def())
    finally:
        model.close()
    names = {v.name: v.shape for v in summary.variables}
    assert names["lstm_model/head/kernel"] == [4, 2]
    assert "probabilities" in summary.candidate_outputs


def test_rewritten_keras_lstm_is_tf1_only_and_numerically_identical(keras_lstm_graph, batch):
    graph_def, placeholder, output = keras_lstm_graph
    rewritten, report = rewrite_for_bigdl(graph_def, inputs=[placeholder], outputs=[output])
    assert report.counts["add_v2_to_add"] > 0 and report.counts["constants_expanded"] > 0
    assert not g.unsupported_nodes(rewritten)
    before = run_graph(graph_def, [placeholder], [output], [batch])
    after = run_graph(rewritten, [placeholder], [output], [batch])
    assert np.array_equal(before, after)


def test_fused_batch_norm_v3_and_negative_axes_are_rewritten(batch):
    for build in (tfmodels.keras_conv2d_bn, tfmodels.keras_conv1d):
        model = build(T, F, seed=1)
        tfmodels.randomize_batch_norm(model)
        graph_def, placeholder, output = frozen_keras_graph(model)
        rewritten, report = rewrite_for_bigdl(graph_def, inputs=[placeholder], outputs=[output])
        assert not g.unsupported_nodes(rewritten)
        expected = model(batch, training=False).numpy()
        assert np.abs(run_graph(rewritten, [placeholder], [output], [batch]) - expected).max() < 1e-6
        if build is tfmodels.keras_conv2d_bn:
            assert report.counts["fused_batch_norm_v3_to_v2"] == 1
        else:
            assert report.counts["negative_axes_made_positive"] >= 1


def test_resource_variables_become_variable_v2_or_constants(batch):
    model = tfmodels.compat_v1_lstm(T, F, hidden=4, resource_variables=True)
    try:
        graph_def = model.graph.as_graph_def()
        expected = model.predict(batch)
        values = {v.op.name: model.session.run(v) for v in model.graph.get_collection("trainable_variables")}
    finally:
        model.close()
    as_vars, report = rewrite_for_bigdl(graph_def, inputs=["input"], outputs=["probabilities"])
    assert report.counts["resource_variables_to_variable_v2"] == 4
    assert sorted(report.variables) == sorted(values)
    as_consts, report = rewrite_for_bigdl(graph_def, inputs=["input"], outputs=["probabilities"], values=values)
    assert report.counts["resource_variables_to_const"] == 4 and not report.variables
    assert np.abs(run_graph(as_consts, ["input"], ["probabilities"], [batch]) - expected).max() < 1e-6
    assert np.abs(run_graph(as_vars, ["input"], ["probabilities"], [batch], values=values) - expected).max() < 1e-6


def test_a_while_loop_is_refused_with_every_op_named_and_counted():
    import tensorflow as tf

    layers = tf.keras.layers
    model = tf.keras.Sequential([layers.Input((T, F)), layers.LSTM(4), layers.Dense(2, activation="softmax")])
    graph_def, placeholder, output = frozen_keras_graph(model)
    with pytest.raises(UnsupportedOpsError) as caught:
        rewrite_for_bigdl(graph_def, inputs=[placeholder], outputs=[output])
    error = caught.value
    loop_ops = {op for op in error.ops if op.startswith("TensorList")} | ({"Enter", "Merge"} & set(error.ops))
    assert any(op.startswith("TensorList") for op in error.ops), error.ops
    message = str(error)
    for op, names in error.ops.items():
        assert f"{op} x{len(names)}: {names[0]}" in message
    assert "unroll=True" in message
    assert "\tat " not in message and loop_ops


def test_names_are_checked_or_chosen(keras_lstm_graph):
    graph_def, placeholder, output = keras_lstm_graph
    assert g.resolve_names(graph_def, None, None) == ([placeholder], [output])
    assert g.resolve_names(graph_def, [f"{placeholder}:0"], [f"{output}:0"]) == ([placeholder], [output])
    with pytest.raises(NodeNameError, match="nope.*candidate outputs: output"):
        g.resolve_names(graph_def, None, ["nope"])
    with pytest.raises(NodeNameError, match="wrong.*placeholders: input"):
        g.resolve_names(graph_def, ["wrong"], None)
    assert issubclass(NodeNameError, TFImportError)
