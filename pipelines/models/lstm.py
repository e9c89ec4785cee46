"""The BigDL LSTM classifier: stacked LSTM -> last step -> Linear -> LogSoftMax."""
from __future__ import annotations


def build_lstm(
    n_features: int, *, hidden_size: int, num_layers: int = 1, dropout: float = 0.0, seed: int | None = None
):
    """A two-class sequence classifier taking (batch, time, n_features) and giving log-probabilities.

    With `seed`, the initial weights are the same on every build (BigDL's random generator is seeded first).
    """
    from bigdl.dllib.nn.layer import LSTM, Dropout, Linear, LogSoftMax, Recurrent, Select, Sequential
    from bigdl.dllib.utils.common import callBigDlFunc

    if num_layers < 1 or hidden_size < 1:
        raise ValueError("num_layers and hidden_size must be at least 1")
    if seed is not None:
        callBigDlFunc("float", "setModelSeed", seed)
    model = Sequential()
    width = n_features
    for layer in range(num_layers):
        model.add(Recurrent().add(LSTM(width, hidden_size)).set_name(f"lstm{layer + 1}"))
        if dropout > 0:
            model.add(Dropout(dropout))
        width = hidden_size
    model.add(Select(2, -1))  # the last time step
    model.add(Linear(hidden_size, 2).set_name("head"))
    model.add(LogSoftMax())
    return model
