"""The BigDL LSTM classifier: stacked LSTM -> last step -> Linear -> LogSoftMax.

Two implementations of the same cell, with the same parameters in the same order (so weights move between
them with `get_weights`/`set_weights`):
- `fused`: the project's `pipelines.nn.FusedLSTM` (jvm/), one BigDL module running the whole sequence; the last
  layer returns its last step only.
- `reference`: BigDL's `Recurrent().add(LSTM(...))` followed by `Select(2, -1)`.
"""

from __future__ import annotations

from pipelines.config import LSTM_KINDS
from pipelines.models.extension import fused_lstm


def build_lstm(
    n_features: int,
    *,
    hidden_size: int,
    num_layers: int = 1,
    dropout: float = 0.0,
    seed: int | None = None,
    kind: str = "fused",
    input_gradient: bool = True,
):
    """A two-class sequence classifier taking (batch, time, n_features) and giving log-probabilities.

    With `seed`, the initial weights are the same on every build (BigDL's random generator is seeded first), and
    the same for both kinds: the fused model takes the reference model's, so that the two can be compared.
    Without `input_gradient` (training needs none), the fused model's backward skips the gradient with respect
    to its input (the data), and its Python `backward` fails: BigDL cannot return the empty gradient.
    """
    from bigdl.dllib.nn.layer import LSTM, Dropout, Linear, LogSoftMax, Recurrent, Select, Sequential
    from bigdl.dllib.utils.common import callBigDlFunc

    if num_layers < 1 or hidden_size < 1:
        raise ValueError("num_layers and hidden_size must be at least 1")
    if kind not in LSTM_KINDS:
        raise ValueError(f"LSTM kind must be one of {LSTM_KINDS}, not {kind!r}")
    if seed is not None:
        callBigDlFunc("float", "setModelSeed", seed)
    model = Sequential()
    width = n_features
    for layer in range(num_layers):
        last = layer == num_layers - 1
        if kind == "fused":
            lstm = fused_lstm(width, hidden_size, return_sequences=not last, input_gradient=input_gradient or layer > 0)
        else:
            lstm = Recurrent().add(LSTM(width, hidden_size))
        model.add(lstm.set_name(f"lstm{layer + 1}"))
        if dropout > 0:
            model.add(Dropout(dropout))
        width = hidden_size
    if kind == "reference":
        model.add(Select(2, -1))  # the last time step
    model.add(Linear(hidden_size, 2).set_name("head"))
    model.add(LogSoftMax())
    if kind == "fused" and seed is not None:
        reference = build_lstm(
            n_features, hidden_size=hidden_size, num_layers=num_layers, dropout=dropout, seed=seed, kind="reference"
        )
        model.set_weights(reference.get_weights())
    return model


def average_members(members: list):
    """One model of `members` (classifiers giving log-probabilities): the log of the mean of their probabilities,
    so that it is used, saved and scored as any one of them."""
    from bigdl.dllib.nn.layer import CAddTable, ConcatTable, Exp, Log, MulConstant, Sequential

    if not members:
        raise ValueError("an ensemble needs at least one member")
    branches = ConcatTable()
    for member in members:
        branches.add(Sequential().add(member).add(Exp()))
    return Sequential().add(branches).add(CAddTable()).add(MulConstant(1.0 / len(members))).add(Log())
