"""Python handles on the project's own BigDL classes (jvm/, built into `pipelines.context.PROJECT_JAR`)."""
from __future__ import annotations

import os


def _project_class(name: str):
    """The project's JVM class `name` through the gateway, or a clear error when the jar is not built."""
    from bigdl.dllib.utils.common import get_spark_context

    from pipelines.context import PROJECT_JAR

    found = get_spark_context()._jvm
    for part in name.split("."):
        found = getattr(found, part)
    if type(found).__name__ != "JavaClass":  # py4j names an unknown class as a package
        where = "not built: run `make venv`" if not os.path.exists(PROJECT_JAR) else "not on the JVM's class path"
        raise RuntimeError(f"{name} is missing: the project's JVM extension {PROJECT_JAR} is {where}")
    return found


def fused_lstm(input_size: int, hidden_size: int, *, return_sequences: bool, input_gradient: bool = True):
    """`pipelines.nn.FusedLSTM`: an LSTM over the whole sequence as one BigDL module (float).

    Without `input_gradient` (a first layer, whose input is data) backward leaves the input's gradient empty.
    """
    from bigdl.dllib.nn.layer import Layer

    layer = _project_class("pipelines.nn.FusedLSTM").create(input_size, hidden_size, return_sequences, input_gradient)
    return Layer.of(layer)


def binary_auc(curve: str):
    """`pipelines.optim.BinaryAUC`: ROC-AUC (`roc`) or PR-AUC (`pr`) of a 2-class LogSoftMax, as a BigDL
    validation method; its ValidationSummary tag is RocAuc or PrAuc."""
    from bigdl.dllib.utils.common import JavaValue

    return JavaValue(_project_class("pipelines.optim.BinaryAUC").create(curve), "float")


def barrier_optimizer(model, training_set, criterion, end_trigger, batch_size: int, optim_method):
    """The project's `BarrierOptimizer`, with the arguments and Python API of BigDL's `Optimizer.create`.

    Synchronous SGD like `DistriOptimizer` (one replica per core, gradients averaged every iteration), run as one
    Spark barrier job per stretch of iterations between validations and checkpoints instead of two jobs per
    iteration. `optim_method` is one OptimMethod or {submodule name: OptimMethod}.
    """
    from bigdl.dllib.optim.optimizer import OptimMethod, Optimizer
    from bigdl.dllib.utils.common import _py2java, get_spark_context

    methods = {model.name(): optim_method} if isinstance(optim_method, OptimMethod) else optim_method
    gateway = get_spark_context()._gateway
    args = [model.value, training_set, criterion, methods, end_trigger, batch_size]
    optimizer = Optimizer.__new__(Optimizer)
    optimizer.bigdl_type = "float"
    optimizer.value = _project_class("com.intel.analytics.bigdl.dllib.optim.BarrierOptimizer").create(
        *[_py2java(gateway, arg) for arg in args])
    return optimizer
