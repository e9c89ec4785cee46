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


def _int_array(values) -> object:
    from bigdl.dllib.utils.common import get_spark_context

    gateway = get_spark_context()._gateway
    array = gateway.new_array(gateway.jvm.int, len(values))
    for i, n in enumerate(values):
        array[i] = int(n)
    return array


def fused_lstm(input_size: int, hidden_size: int, *, return_sequences: bool, input_gradient: bool = True):
    """`pipelines.nn.FusedLSTM`: an LSTM over the whole sequence as one BigDL module (float).

    Without `input_gradient` (a first layer, whose input is data) backward leaves the input's gradient empty.
    """
    from bigdl.dllib.nn.layer import Layer

    layer = _project_class("pipelines.nn.FusedLSTM").create(input_size, hidden_size, return_sequences, input_gradient)
    return Layer.of(layer)


def openvino_predict(
    xml: bytes, weights: bytes, frame, *, shape: tuple[int, ...], batch_size: int, output: str = "output"
):
    """`frame` with `output` (array<float>): an OpenVINO IR's output for each row's `features`, computed on the
    executors inside the JVM through OpenVINO's C library (`pipelines.ml.OpenVino`), in batches of up to `batch_size`
    rows per task; each executor thread compiles the IR once."""
    import openvino
    from pyspark.sql import DataFrame

    libraries = os.path.join(os.path.dirname(os.path.abspath(openvino.__file__)), "libs")
    predicted = _project_class("pipelines.ml.OpenVino").predict(
        bytearray(xml),
        bytearray(weights),
        libraries,
        frame._jdf,
        "features",
        _int_array(shape),
        output,
        int(batch_size),
    )
    return DataFrame(predicted, frame.sparkSession)


def register_window_summary(spark) -> str:
    """Register `pipelines.ml.WindowSummary` as a SQL function in `spark`; returns its name."""
    summary = _project_class("pipelines.ml.WindowSummary")
    summary.register(spark._jsparkSession)
    return summary.Name()


def binary_auc(curve: str):
    """`pipelines.optim.BinaryAUC`: ROC-AUC (`roc`) or PR-AUC (`pr`) of a 2-class LogSoftMax, as a BigDL
    validation method; its ValidationSummary tag is RocAuc or PrAuc."""
    from bigdl.dllib.utils.common import JavaValue

    return JavaValue(_project_class("pipelines.optim.BinaryAUC").create(curve), "float")


def samples(frame, *, shape: tuple[int, ...]):
    """The rows as a JVM RDD of BigDL Samples, built on the executors from the rows: no Python workers, no pickling.
    A handle for `optimizer` and `set_validation`.

    `features`: an array of the product of `shape` values, row-major (windows are (length, n_features));
    `label`: 0/1, which becomes the class 1/2, or an array of numbers kept as the target (one 0/1 per task).
    """
    return _project_class("pipelines.optim.Training").samples(frame._jdf, _int_array(shape))


def optimizer(engine: str, *, model, samples, criterion, optim_method, end_trigger, batch_size: int):
    """A BigDL optimizer over `samples`, with BigDL's Python optimizer API (summaries, checkpoints, clipping).

    `engine` is `barrier` (the project's BarrierOptimizer: one Spark barrier job per stretch between validations and
    checkpoints, gradients summed by a hub in the driver) or `distri` (BigDL's DistriOptimizer: two Spark jobs per
    iteration). Both run synchronous SGD with one replica per core. `optim_method` is one OptimMethod or
    {submodule name: OptimMethod}.
    """
    from bigdl.dllib.optim.optimizer import Optimizer, OptimMethod
    from bigdl.dllib.utils.common import _py2java, get_spark_context

    methods = {model.name(): optim_method} if isinstance(optim_method, OptimMethod) else optim_method
    gateway = get_spark_context()._gateway
    created = Optimizer.__new__(Optimizer)
    created.bigdl_type = "float"
    created.value = _project_class("pipelines.optim.Training").optimizer(
        engine, model.value, samples, criterion.value, _py2java(gateway, methods), end_trigger.value, batch_size
    )
    return created


def set_validation(optimizer, *, samples, trigger, methods: list, batch_size: int) -> None:
    """Validate on `samples` whenever `trigger` fires, with BigDL validation methods."""
    from bigdl.dllib.utils.common import _py2java, get_spark_context

    gateway = get_spark_context()._gateway
    _project_class("pipelines.optim.Training").setValidation(
        optimizer.value, trigger.value, samples, _py2java(gateway, methods), batch_size
    )


def predict(
    model, frame, *, shape: tuple[int, ...], batch_size: int, features: str = "features", output: str = "output"
):
    """`frame` with `output` (array<float>): the model's output for each row's `features` (the product of `shape`
    values, row-major), computed on the executors in batches of up to `batch_size` rows per task. The one predictor
    of every BigDL model here: no Python workers, the rows keep their partitions and order."""
    from pyspark.sql import DataFrame

    predicted = _project_class("pipelines.ml.Prediction").predict(
        model.value, frame._jdf, features, _int_array(shape), output, int(batch_size)
    )
    return DataFrame(predicted, frame.sparkSession)
