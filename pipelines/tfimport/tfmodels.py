"""Small TensorFlow models over telemetry windows (batch, length, n_features) -> 2 class probabilities.

They stand in for "the other team's" models in tests, the demo and the benchmark. All are built so that
their frozen graphs need no control flow: RNNs are unrolled. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


def session_config(threads: int = 2):
    import tensorflow as tf

    return tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)


@dataclass
class CompatV1Model:
    """A `tf.compat.v1` graph and the session holding its variable values."""

    graph: Any
    session: Any
    input_name: str
    output_name: str
    train_op: Any = None
    labels_name: str | None = None
    loss_name: str | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(f"{self.output_name}:0", {f"{self.input_name}:0": x})

    def fit(self, x: np.ndarray, y: np.ndarray, *, epochs: int = 1, batch_size: int = 64, seed: int = 0) -> list[float]:
        """Mini-batch training with the graph's Adam train op; returns the loss per epoch."""
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(epochs):
            order = rng.permutation(len(x))
            epoch = []
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                _, loss = self.session.run(
                    [self.train_op, f"{self.loss_name}:0"],
                    {f"{self.input_name}:0": x[idx], f"{self.labels_name}:0": y[idx]},
                )
                epoch.append(float(loss))
            losses.append(float(np.mean(epoch)))
        return losses

    def close(self) -> None:
        self.session.close()


def compat_v1_lstm(
    length: int,
    n_features: int,
    *,
    hidden: int = 16,
    seed: int = 0,
    learning_rate: float = 0.01,
    threads: int = 2,
    resource_variables: bool = False,
    cell: str = "lstm",
    layers: int = 1,
    peepholes: bool = False,
) -> CompatV1Model:
    """A TF1-style static-unrolled LSTM (`static_rnn`), variables `VariableV2` by default.

    `cell` is `lstm` (`LSTMCell`, with `peepholes` if asked) or `basic` (`BasicLSTMCell`); `layers` > 1 stacks
    them with `MultiRNNCell`. The head reads the last step of the top layer.

    Variables are created with `use_resource=False` in their scope rather than by the process-wide
    `tf.compat.v1.disable_resource_variables()`, so other TensorFlow code in the process is unaffected.
    `resource_variables=True` gives TF2's `VarHandleOp`/`ReadVariableOp` instead.
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(tf.float32, [None, length, n_features], name=INPUT_NAME)
        labels = v1.placeholder(tf.int32, [None], name="labels")
        with v1.variable_scope("lstm_model", use_resource=resource_variables), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "LSTMCell is deprecated": the point of this model
            cells = [
                v1.nn.rnn_cell.BasicLSTMCell(hidden, name=f"cell{k}" if layers > 1 else "cell")
                if cell == "basic"
                else v1.nn.rnn_cell.LSTMCell(hidden, use_peepholes=peepholes, name=f"cell{k}" if layers > 1 else "cell")
                for k in range(layers)
            ]
            stacked = cells[0] if layers == 1 else v1.nn.rnn_cell.MultiRNNCell(cells)
            steps = tf.unstack(x, num=length, axis=1)
            outs, _ = v1.nn.static_rnn(stacked, steps, dtype=tf.float32)
            w = v1.get_variable("head/kernel", [hidden, 2], initializer=v1.glorot_uniform_initializer(seed=seed))
            b = v1.get_variable("head/bias", [2], initializer=v1.zeros_initializer())
            logits = tf.add(tf.matmul(outs[-1], w), b, name="logits")
        tf.nn.softmax(logits, name=OUTPUT_NAME)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss")
        train_op = v1.train.AdamOptimizer(learning_rate).minimize(loss)
        init = v1.global_variables_initializer()
    session = v1.Session(graph=graph, config=session_config(threads))
    session.run(init)
    return CompatV1Model(graph, session, INPUT_NAME, OUTPUT_NAME, train_op, "labels", "loss")


def keras_lstm(
    length: int, n_features: int, *, hidden: int = 16, seed: int = 0, layers: int = 1, return_sequences: bool = False
):
    """`tf.keras` LSTM(s) with `unroll=True` (so no while loop), then a softmax head; `layers` stacked LSTMs, the top
    one returning its last step, or with `return_sequences` every step (flattened before the head)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    keras = tf.keras.layers
    stack = [keras.Input((length, n_features), name=INPUT_NAME)]
    for k in range(layers):
        top = k == layers - 1
        name = "lstm" if layers == 1 else f"lstm{k + 1}"
        stack.append(keras.LSTM(hidden, unroll=True, return_sequences=return_sequences or not top, name=name))
    if return_sequences:
        stack.append(keras.Flatten())
    stack.append(keras.Dense(2, activation="softmax", name="head"))
    return tf.keras.Sequential(stack, name="keras_lstm")


def keras_mlp(length: int, n_features: int, *, hidden: int = 32, dropout: float = 0.2, seed: int = 0):
    """Flatten -> Dense(ReLU) -> Dropout -> Dense(softmax)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.Input((length, n_features), name=INPUT_NAME),
            layers.Flatten(),
            layers.Dense(hidden, activation="relu", name="hidden"),
            layers.Dropout(dropout),
            layers.Dense(2, activation="softmax", name="head"),
        ],
        name="keras_mlp",
    )


def keras_conv1d(
    length: int, n_features: int, *, filters: int = 8, kernel: int = 5, seed: int = 0, batch_norm: bool = True
):
    """Conv1D(ReLU) -> BatchNorm -> MaxPool -> Conv1D(ReLU) -> global average -> Dense(softmax)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    stack = [
        layers.Input((length, n_features), name=INPUT_NAME),
        layers.Conv1D(filters, kernel, activation="relu", name="conv1"),
    ]
    if batch_norm:
        stack.append(layers.BatchNormalization(name="bn1"))
    stack += [
        layers.MaxPooling1D(2),
        layers.Conv1D(filters, 3, activation="relu", padding="same", name="conv2"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(2, activation="softmax", name="head"),
    ]
    return tf.keras.Sequential(stack, name="keras_conv1d")


def keras_conv2d_bn(length: int, n_features: int, *, filters: int = 4, seed: int = 0):
    """Windows as (length, 1, n_features) images: Conv2D -> fused BatchNorm (FusedBatchNormV3) -> softmax."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.Input((length, n_features), name=INPUT_NAME),
            layers.Reshape((length, 1, n_features)),
            layers.Conv2D(filters, (3, 1), name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.ReLU(),
            layers.Flatten(),
            layers.Dense(2, activation="softmax", name="head"),
        ],
        name="keras_conv2d_bn",
    )


def randomize_batch_norm(model, seed: int = 0) -> None:
    """Give BatchNormalization layers non-trivial moving statistics, so parity tests mean something."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.normal(0, 0.2, beta.shape).astype(np.float32),
                    rng.normal(0, 0.5, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 2.0, var.shape).astype(np.float32),
                ]
            )
