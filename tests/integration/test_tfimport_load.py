"""TensorFlow -> BigDL import: parity on the four model families, and a clear error for every bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pipelines.tfimport import files, tfmodels
from pipelines.tfimport.errors import (
    GraphFormatError,
    InputShapeError,
    NodeNameError,
    TFImportError,
    UnsupportedOpsError,
    VariableMismatchError,
)
from pipelines.tfimport.export import export_checkpoint, export_session, freeze_keras
from pipelines.tfimport.load import PROBABILITIES, forward, import_tensorflow_model, load_tensorflow_model
from pipelines.tfimport.parity import max_abs_diff, tensorflow_outputs

T, F = 12, 3
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(7).normal(size=(9, T, F)).astype(np.float32)


@pytest.fixture(scope="module")
def v1_pair(spark, tmp_path_factory, batch):
    """A compat.v1 static-unrolled LSTM exported as .pb + .bin, and TensorFlow's outputs."""
    out = tmp_path_factory.mktemp("v1")
    model = tfmodels.compat_v1_lstm(T, F, hidden=5, seed=1)
    try:
        expected = model.predict(batch)
        exported = export_session(model.session, f"file://{out}", outputs=[model.output_name], spark=spark)
    finally:
        model.close()
    return exported, expected


def _keras_pb(model, path, batch):
    tfmodels.randomize_batch_norm(model)
    expected = model(batch, training=False).numpy()
    exported = freeze_keras(model, str(path), for_bigdl=False)  # TensorFlow's own graph, AddV2 and all
    return exported, expected


def test_parity_compat_v1_lstm_pb_and_bin(spark, v1_pair, batch):
    exported, expected = v1_pair
    assert not files.is_local(exported.pb_uri, spark)  # written and read through Hadoop's FileSystem
    imported = import_tensorflow_model(exported.pb_uri, None, None, exported.bin_uri, spark=spark)
    assert imported.variables and imported.output_kind == PROBABILITIES
    assert imported.lstm == "1 LSTM layer(s) of 5 units over 12 steps, giving the last step"
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


def test_parity_keras_lstm_with_add_v2(spark, tmp_path, batch):
    exported, expected = _keras_pb(tfmodels.keras_lstm(T, F, hidden=6, seed=2), tmp_path / "lstm.pb", batch)
    imported = import_tensorflow_model(exported.pb_uri, spark=spark)
    assert imported.rewrites["add_v2_to_add"] > 0 and imported.lstm is not None
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE
    # the same check through the parity helper, which reruns TensorFlow on the file itself
    assert max_abs_diff(tensorflow_outputs(exported.pb_uri, imported.inputs, imported.outputs, batch), expected) < 1e-6


def test_parity_mlp_with_dropout_and_softmax(spark, tmp_path, batch):
    exported, expected = _keras_pb(tfmodels.keras_mlp(T, F, hidden=16, dropout=0.5, seed=3), tmp_path / "mlp.pb", batch)
    model = load_tensorflow_model(exported.pb_uri, spark=spark)  # the plain BigDL-model entry point
    assert max_abs_diff(forward(model, batch), expected) <= TOLERANCE


def test_parity_conv1d_network(spark, tmp_path, batch):
    exported, expected = _keras_pb(tfmodels.keras_conv1d(T, F, filters=4, seed=4), tmp_path / "conv.pb", batch)
    imported = import_tensorflow_model(exported.pb_uri, spark=spark)
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


def test_parity_fused_batch_norm_v3_graph(spark, tmp_path, batch):
    exported, expected = _keras_pb(tfmodels.keras_conv2d_bn(T, F, seed=5), tmp_path / "bn.pb", batch)
    imported = import_tensorflow_model(exported.pb_uri, spark=spark)
    assert imported.rewrites["fused_batch_norm_v3_to_v2"] == 1
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


def test_parity_resource_variables_and_checkpoint_export(spark, tmp_path, batch):
    import tensorflow as tf

    model = tfmodels.compat_v1_lstm(T, F, hidden=4, seed=6, resource_variables=True)
    try:
        expected = model.predict(batch)
        with model.graph.as_default():
            prefix = tf.compat.v1.train.Saver().save(model.session, str(tmp_path / "ckpt" / "model"))
    finally:
        model.close()
    exported = export_checkpoint(
        f"{prefix}.meta", prefix, str(tmp_path / "pair"), outputs=["probabilities"], spark=spark
    )
    assert exported.rewrites["resource_variables_to_variable_v2"] == 4
    imported = import_tensorflow_model(exported.pb_uri, None, None, exported.bin_uri, spark=spark)
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


# ---- LSTMs on the fused layer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layers, return_sequences, described",
    [
        (2, False, "2 LSTM layer(s) of 6+6 units over 12 steps, giving the last step"),
        (1, True, "1 LSTM layer(s) of 6 units over 12 steps, giving every step"),
    ],
)
def test_keras_lstms_run_on_the_fused_layer(spark, tmp_path, batch, layers, return_sequences, described):
    keras = tfmodels.keras_lstm(T, F, hidden=6, seed=8, layers=layers, return_sequences=return_sequences)
    exported, expected = _keras_pb(keras, tmp_path / "lstm.pb", batch)
    imported = import_tensorflow_model(exported.pb_uri, spark=spark)
    assert imported.lstm == described
    assert "FusedLSTM" in str(imported.model.value.toString())
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


@pytest.mark.parametrize("cell, layers", [("basic", 1), ("lstm", 2), ("basic", 2)])
def test_static_rnn_lstms_run_on_the_fused_layer(spark, tmp_path, batch, cell, layers):
    """BasicLSTMCell's forget_bias folded into the bias; MultiRNNCell's layers read the steps below directly."""
    model = tfmodels.compat_v1_lstm(T, F, hidden=5, seed=9, cell=cell, layers=layers)
    try:
        expected = model.predict(batch)
        exported = export_session(model.session, str(tmp_path / "pair"), outputs=[model.output_name], spark=spark)
    finally:
        model.close()
    imported = import_tensorflow_model(exported.pb_uri, None, None, exported.bin_uri, spark=spark)
    assert imported.lstm is not None and imported.lstm.startswith(f"{layers} LSTM layer(s)")
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


def _keras_lstm_pb(tmp_path, batch, name: str, head_reads_c: bool = False, **lstm_options):
    """A Keras LSTM (unroll=True) with `lstm_options`, its state given to the head; the .pb and TensorFlow's outputs."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(12)
    layers = tf.keras.layers
    inputs = layers.Input((T, F), name="input")
    _, h, c = layers.LSTM(4, unroll=True, return_state=True, **lstm_options)(inputs)
    state = layers.Concatenate()([h, c]) if head_reads_c else h
    outputs = layers.Dense(2, activation="softmax")(state)
    return _keras_pb(tf.keras.Model(inputs, outputs), tmp_path / f"{name}.pb", batch)


@pytest.mark.parametrize(
    "options, why",
    [
        ({"activation": "relu"}, "goes through Relu, not a sigmoid or a tanh"),
        ({"head_reads_c": True}, "is also read by"),
    ],
)
def test_an_lstm_that_is_not_recognised_is_imported_node_by_node_and_says_why(
    spark, tmp_path, batch, caplog, options, why
):
    exported, expected = _keras_lstm_pb(tmp_path, batch, "other", **options)
    with caplog.at_level(logging.INFO, logger="pipelines.tfimport.load"):
        imported = import_tensorflow_model(exported.pb_uri, spark=spark)
    said = [r.getMessage() for r in caplog.records if "LSTM not recognised" in r.getMessage()]
    assert imported.lstm is None and len(said) == 1 and why in said[0]
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


def test_the_fused_import_can_be_turned_off(spark, v1_pair, batch):
    exported, expected = v1_pair
    imported = import_tensorflow_model(exported.pb_uri, None, None, exported.bin_uri, spark=spark, fuse_lstm=False)
    assert imported.lstm is None and "FusedLSTM" not in str(imported.model.value.toString())
    assert max_abs_diff(forward(imported, batch), expected) <= TOLERANCE


# ---- errors -------------------------------------------------------------------------------------------------


def _no_java_trace(error: BaseException) -> None:
    text = str(error)
    assert "\tat " not in text and "at com.intel" not in text and "Py4JJavaError" not in text


def test_corrupt_and_truncated_pb(spark, tmp_path, v1_pair):
    exported, _ = v1_pair
    data = open(exported.pb_uri.removeprefix("file://"), "rb").read()
    corrupt, truncated = tmp_path / "corrupt.pb", tmp_path / "truncated.pb"
    corrupt.write_bytes(b"\x0a\xff\xff\xff\x0fnot a graph" * 20)
    truncated.write_bytes(data[: len(data) - 40])
    for path in (corrupt, truncated):
        with pytest.raises(GraphFormatError, match=str(path.name)) as caught:
            load_tensorflow_model(str(path), spark=spark)
        _no_java_trace(caught.value)
    with pytest.raises(GraphFormatError, match="no such file"):
        load_tensorflow_model(str(tmp_path / "missing.pb"), spark=spark)


def test_bin_that_does_not_match_the_graph(spark, tmp_path, v1_pair):
    exported, _ = v1_pair
    other = tfmodels.compat_v1_lstm(T, F, hidden=7, seed=1)  # same names, other shapes
    try:
        wrong = export_session(other.session, str(tmp_path / "other"), outputs=["probabilities"], spark=spark)
    finally:
        other.close()
    with pytest.raises(
        VariableMismatchError, match=r"lstm_model/rnn/cell/kernel has shape \[10, 28\], the graph says \[8, 20\]"
    ):
        load_tensorflow_model(exported.pb_uri, bin_path=wrong.bin_uri, spark=spark)
    with pytest.raises(VariableMismatchError, match="no .bin gives their values"):
        load_tensorflow_model(exported.pb_uri, spark=spark)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"this is not a Java object stream")
    with pytest.raises(TFImportError, match="variable file") as caught:
        load_tensorflow_model(exported.pb_uri, bin_path=str(garbage), spark=spark)
    _no_java_trace(caught.value)


def test_wrong_input_or_output_name(spark, v1_pair):
    exported, _ = v1_pair
    with pytest.raises(NodeNameError, match="output node.*logitz.*candidate outputs: probabilities"):
        load_tensorflow_model(exported.pb_uri, ["input"], ["logitz"], exported.bin_uri, spark=spark)
    with pytest.raises(NodeNameError, match="input node.*inptu.*placeholders: input"):
        load_tensorflow_model(exported.pb_uri, ["inptu"], ["probabilities"], exported.bin_uri, spark=spark)


def test_input_of_the_wrong_shape(spark, v1_pair, batch):
    exported, _ = v1_pair
    imported = import_tensorflow_model(exported.pb_uri, None, None, exported.bin_uri, spark=spark)
    with pytest.raises(InputShapeError, match=r"examples of shape \(12, 3\), the data has \(12, 4\)"):
        forward(imported, np.zeros((2, T, F + 1), np.float32))
    with pytest.raises(InputShapeError):
        imported.check_input_shape((T + 1, F))


def test_unsupported_op_lists_ops_nodes_and_counts(spark, tmp_path):
    import tensorflow as tf

    layers = tf.keras.layers
    model = tf.keras.Sequential([layers.Input((T, F)), layers.LSTM(3), layers.Dense(2, activation="softmax")])
    exported = freeze_keras(model, str(tmp_path / "loop.pb"), for_bigdl=False)
    with pytest.raises(UnsupportedOpsError) as caught:
        load_tensorflow_model(exported.pb_uri, spark=spark)
    error = caught.value
    assert "TensorListReserve" in error.ops
    for op, names in error.ops.items():
        assert f"{op} x{len(names)}: {names[0]}" in str(error)
    _no_java_trace(error)


def test_a_java_failure_becomes_a_one_paragraph_error(spark, v1_pair, tmp_path):
    """An error only BigDL detects (a placeholder fed with a tensor of another rank) keeps the Java message only."""
    exported, _ = v1_pair
    imported = import_tensorflow_model(exported.pb_uri, None, None, exported.bin_uri, spark=spark)
    with pytest.raises(TFImportError, match="running the imported model") as caught:
        forward(imported.model, np.zeros((2, T), np.float32))  # a bare BigDL model: no shape check in Python
    _no_java_trace(caught.value)


def test_deep_graphs_need_a_bigger_thread_stack_and_say_so(spark):
    from pipelines.tfimport.jvm import require_deep_graph_stack, thread_stack_bytes

    size = thread_stack_bytes(spark)
    if size is not None and size >= 16 * 2**20:
        require_deep_graph_stack(spark, "a 96-step LSTM")  # the session has the option: nothing to say
    else:
        with pytest.raises(TFImportError, match="a 96-step LSTM.*-Xss16m in spark.driver.extraJavaOptions"):
            require_deep_graph_stack(spark, "a 96-step LSTM")
