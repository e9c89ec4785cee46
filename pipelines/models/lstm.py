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
):
    """A two-class sequence classifier taking (batch, time, n_features) and giving log-probabilities.

    With `seed`, the initial weights are the same on every build (BigDL's random generator is seeded first).
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
            lstm = fused_lstm(width, hidden_size, return_sequences=not last)
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
    return model
