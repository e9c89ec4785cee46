"""Python handles on the project's own BigDL classes (jvm/, built into `pipelines.context.PROJECT_JAR`)."""
from __future__ import annotations

import os


def _project_class(name: str):
    """The JVM class `pipelines.<name>` through the gateway, or a clear error when the jar is not built."""
    from bigdl.dllib.utils.common import get_spark_context

    from pipelines.context import PROJECT_JAR

    jvm = get_spark_context()._jvm
    found = jvm.pipelines
    for part in name.split("."):
        found = getattr(found, part)
    if type(found).__name__ != "JavaClass":  # py4j names an unknown class as a package
        where = "not built: run `make venv`" if not os.path.exists(PROJECT_JAR) else "not on the JVM's class path"
        raise RuntimeError(f"pipelines.{name} is missing: the project's JVM extension {PROJECT_JAR} is {where}")
    return found


def fused_lstm(input_size: int, hidden_size: int, *, return_sequences: bool, input_gradient: bool = True):
    """`pipelines.nn.FusedLSTM`: an LSTM over the whole sequence as one BigDL module (float).

    Without `input_gradient` (a first layer, whose input is data) backward leaves the input's gradient empty.
    """
    from bigdl.dllib.nn.layer import Layer

    layer = _project_class("nn.FusedLSTM").create(input_size, hidden_size, return_sequences, input_gradient)
    return Layer.of(layer)


def binary_auc(curve: str):
    """`pipelines.optim.BinaryAUC`: ROC-AUC (`roc`) or PR-AUC (`pr`) of a 2-class LogSoftMax, as a BigDL
    validation method; its ValidationSummary tag is RocAuc or PrAuc."""
    from bigdl.dllib.utils.common import JavaValue

    return JavaValue(_project_class("optim.BinaryAUC").create(curve), "float")
