"""The fused LSTM (jvm/, pipelines.nn.FusedLSTM) computes what BigDL's Recurrent(LSTM) computes.

Same weights in both; forward outputs within 1e-5, and every gradient (input, input-to-hidden and
hidden-to-hidden weights, bias, and the rest of the model's) within 1e-4 of its largest magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.models.extension import fused_lstm
from pipelines.models.lstm import build_lstm

# (batch, time steps, features, hidden, layers): time 1, 2, 96; batch 1, 7, 128; hidden 1 and 64; 1 and 2 layers.
SHAPES = [
    (1, 1, 3, 1, 1),
    (7, 2, 5, 64, 1),
    (7, 96, 16, 1, 2),
    (128, 96, 16, 64, 1),
    (128, 2, 4, 64, 2),
    (1, 96, 10, 64, 2),
]


def gradients(model) -> np.ndarray:
    """The model's gradients, flattened in `parameters()` order (as DistriOptimizer sees them)."""
    from bigdl.dllib.utils.common import get_spark_context

    gateway = get_spark_context()._jvm
    flat = model.value.getParameters()._2()
    buffer = gateway.java.nio.ByteBuffer.allocate(4 * flat.nElement())
    buffer.order(gateway.java.nio.ByteOrder.LITTLE_ENDIAN)
    buffer.asFloatBuffer().put(flat.storage().array(), flat.storageOffset() - 1, flat.nElement())
    return np.frombuffer(bytes(buffer.array()), dtype="<f4")


def split_like(vector: np.ndarray, weights: list[np.ndarray]) -> list[np.ndarray]:
    parts, start = [], 0
    for weight in weights:
        parts.append(vector[start : start + weight.size].reshape(weight.shape))
        start += weight.size
    assert start == vector.size
    return parts


def assert_same_pass(reference, fused, x: np.ndarray, grad_seed: int) -> None:
    fused.set_weights(reference.get_weights())
    for model in (reference, fused):
        model.value.getParameters()  # compacts the parameters into one storage, which `gradients` reads
    out_reference, out_fused = reference.forward(x), fused.forward(x)
    assert out_fused.shape == out_reference.shape
    np.testing.assert_allclose(out_fused, out_reference, rtol=0, atol=1e-5)

    grad_out = np.random.default_rng(grad_seed).standard_normal(out_reference.shape).astype(np.float32)
    reference.zero_grad_parameters()
    fused.zero_grad_parameters()
    grad_in_reference, grad_in_fused = reference.backward(x, grad_out), fused.backward(x, grad_out)
    tensors = [("input", grad_in_reference, grad_in_fused)]
    weights = reference.get_weights()
    for i, (g_ref, g_fused) in enumerate(
        zip(split_like(gradients(reference), weights), split_like(gradients(fused), weights))
    ):
        tensors.append((f"parameter {i} {g_ref.shape}", g_ref, g_fused))
    for name, expected, actual in tensors:
        scale = float(np.abs(expected).max())
        if scale == 0:  # only the recurrent weights over a single step have none (the initial state is zero)
            assert x.shape[1] == 1 and not actual.any(), name
        else:
            assert float(np.abs(actual - expected).max()) / scale <= 1e-4, name


@pytest.mark.parametrize("batch, steps, features, hidden, layers", SHAPES)
def test_fused_model_equals_reference(spark, batch, steps, features, hidden, layers):
    reference = build_lstm(features, hidden_size=hidden, num_layers=layers, kind="reference")
    fused = build_lstm(features, hidden_size=hidden, num_layers=layers, kind="fused")
    x = np.random.default_rng(batch * steps + hidden).standard_normal((batch, steps, features)).astype(np.float32)
    assert_same_pass(reference, fused, x, grad_seed=layers)


@pytest.mark.parametrize("batch, steps, features, hidden", [(7, 2, 3, 5), (3, 96, 16, 64)])
def test_fused_layer_returning_sequences_equals_reference(spark, batch, steps, features, hidden):
    from bigdl.dllib.nn.layer import LSTM, Recurrent, Sequential

    reference = Sequential().add(Recurrent().add(LSTM(features, hidden)))
    fused = Sequential().add(fused_lstm(features, hidden, return_sequences=True))
    x = 3 * np.random.default_rng(steps).standard_normal((batch, steps, features)).astype(np.float32)
    assert_same_pass(reference, fused, x, grad_seed=steps)


def test_a_first_layer_skips_the_input_gradient_only(spark):
    """Training's first layer leaves the input's gradient out; the weights' gradients are the same."""
    from py4j.protocol import Py4JError

    with_input = build_lstm(4, hidden_size=8, num_layers=2, kind="fused")
    without = build_lstm(4, hidden_size=8, num_layers=2, kind="fused", input_gradient=False)
    without.set_weights(with_input.get_weights())
    for model in (with_input, without):
        model.value.getParameters()
    x = np.random.default_rng(3).standard_normal((5, 6, 4)).astype(np.float32)
    grad_out = np.random.default_rng(4).standard_normal((5, 2)).astype(np.float32)
    for model in (with_input, without):
        model.forward(x)
        model.zero_grad_parameters()
    assert with_input.backward(x, grad_out).shape == x.shape
    with pytest.raises(Py4JError):  # BigDL's Python backward cannot hand back an empty gradient
        without.backward(x, grad_out)
    assert without.value.gradInput().nElement() == 0
    np.testing.assert_array_equal(gradients(without), gradients(with_input))


def test_fused_layer_refuses_wrong_input(spark):
    from py4j.protocol import Py4JJavaError

    layer = fused_lstm(4, 8, return_sequences=False)
    with pytest.raises(Py4JJavaError, match=r"input must be \(batch, time, 4\)"):
        layer.forward(np.zeros((2, 5, 3), dtype=np.float32))


def test_build_lstm_refuses_unknown_kind(spark):
    with pytest.raises(ValueError, match="LSTM kind"):
        build_lstm(4, hidden_size=8, kind="cudnn")


def test_distri_optimizer_trains_both_to_the_same_weights(spark, sequence_samples):
    """Full-batch SGD in DistriOptimizer (two replicas in local[2], so data order cannot differ): same weights."""
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import SGD, MaxEpoch

    from pipelines.models.extension import optimizer

    trained = {}
    for kind in ("reference", "fused"):
        model = build_lstm(3, hidden_size=8, kind=kind, seed=5, input_gradient=False)
        distri = optimizer(
            "distri",
            model=model,
            samples=sequence_samples,
            criterion=ClassNLLCriterion(),
            optim_method=SGD(learningrate=0.5),
            end_trigger=MaxEpoch(8),
            batch_size=128,
        )
        trained[kind] = distri.optimize().get_weights()
    initial = build_lstm(3, hidden_size=8, kind="reference", seed=5).get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(trained["reference"], initial)) > 0.05
    for reference, fused in zip(trained["reference"], trained["fused"]):
        np.testing.assert_allclose(fused, reference, rtol=0, atol=1e-5)
