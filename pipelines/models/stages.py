"""BigDL models as Spark ML stages: `BigDLClassifier` (an Estimator whose `fit` is the project's one training loop)
and `BigDLModel` (a Model whose `transform` is the one predictor). Both sit in a `pyspark.ml.Pipeline` beside Spark's
own stages; a `BigDLModel` saves and loads with `pyspark.ml`'s writers (its BigDL module in BigDL's format beside the
Params), alone or inside a saved `PipelineModel`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasOutputCol, HasSeed
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# How a classifier's output gives the probability of class 1 (the positive class).
PROBABILITIES = "probabilities"  # (batch, classes) probabilities (Softmax)
LOG_PROBABILITIES = "log_probabilities"  # (batch, classes) log-probabilities (LogSoftMax): the project's models
SIGMOID = "sigmoid"  # (batch, 1) or (batch) probability of class 1
OUTPUT_KINDS = (PROBABILITIES, LOG_PROBABILITIES, SIGMOID)


def score_column(output_kind: str, output: Column) -> Column:
    """Probability of class 1 from a model's output array."""
    if output_kind == PROBABILITIES:
        return output[1].cast("double")
    if output_kind == LOG_PROBABILITIES:
        return F.exp(output[1]).cast("double")
    if output_kind == SIGMOID:
        return F.element_at(output, -1).cast("double")
    raise ValueError(f"unknown output kind {output_kind!r}; one of {', '.join(OUTPUT_KINDS)}")


class _BigDLParams(HasFeaturesCol, HasOutputCol):
    featureShape = Param(
        Params._dummy(),
        "featureShape",
        "shape of one row's features (row-major), e.g. [96, 16]",
        TypeConverters.toListInt,
    )
    batchSize = Param(Params._dummy(), "batchSize", "rows per batch (training: the global batch)", TypeConverters.toInt)
    outputKind = Param(
        Params._dummy(),
        "outputKind",
        f"what the output is ({', '.join(OUTPUT_KINDS)}); with scoreCol, how the score follows",
        TypeConverters.toString,
    )
    scoreCol = Param(
        Params._dummy(), "scoreCol", "column for the probability of class 1 ('' for none)", TypeConverters.toString
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            featuresCol="features", outputCol="output", batchSize=256, outputKind=LOG_PROBABILITIES, scoreCol="score"
        )


class BigDLModel(Model, _BigDLParams, MLWritable, MLReadable):
    """A trained (or imported) BigDL module as a Spark ML Model: `transform` adds `outputCol` (array<float>, the
    module's output) and, with `scoreCol`, the probability of class 1 (`outputKind`)."""

    def __init__(self, module=None, **params) -> None:
        """`module`: the BigDL module; `params`: any of the Params by name (featureShape is required)."""
        super().__init__()
        self.module = module
        self.summary: TrainingSummary | None = None  # set by BigDLClassifier.fit
        self._set(**{k: v for k, v in params.items() if v is not None})

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from pipelines.models import extension

        if self.module is None:
            raise ValueError("BigDLModel has no module")
        if not self.isDefined(self.featureShape):
            raise ValueError("BigDLModel: set featureShape, the shape of one row's features")
        output = self.getOutputCol()
        predicted = extension.predict(
            self.module,
            dataset,
            shape=tuple(self.getOrDefault("featureShape")),
            batch_size=self.getOrDefault(self.batchSize),
            features=self.getFeaturesCol(),
            output=output,
        )
        score = self.getOrDefault(self.scoreCol)
        if not score:
            return predicted
        return predicted.withColumn(score, score_column(self.getOrDefault(self.outputKind), F.col(output)))

    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)


class _ModelWriter(MLWriter):
    def __init__(self, instance: BigDLModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sc)
        self.instance.module.saveModel(f"{path}/bigdl", over_write=True)


class _ModelReader(MLReader):
    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> BigDLModel:
        from bigdl.dllib.nn.layer import Model as BigDLModule

        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        instance = self.cls(BigDLModule.loadModel(f"{path}/bigdl"))
        DefaultParamsReader.getAndSetParams(instance, metadata)
        return instance


# The Estimator's losses: what the module outputs and what a row's label is.
NLL = "nll"  # log-probabilities (LogSoftMax); label 0 or 1, class-weighted negative log-likelihood
BCE = "bce"  # probabilities (Sigmoid); label 0/1, or an array of 0/1 (one per task), binary cross-entropy
LOSSES = (NLL, BCE)


@dataclass
class TrainingSummary:
    """What a fit leaves besides the model (as Spark ML's `model.summary`; not saved with the model): the global
    batch size, the iterations of one epoch, and BigDL's Train/ValidationSummary when `summaryDir` was set."""

    batch_size: int
    iterations_per_epoch: int
    train: Any = None
    validation: Any = None


class BigDLClassifier(Estimator, _BigDLParams, HasLabelCol, HasSeed):
    """Trains a BigDL classifier (`module`, built untrained by the caller) with the project's training loop:
    `loss` (class-weighted negative log-likelihood on LogSoftMax outputs, or binary cross-entropy on Sigmoid
    outputs), Adam, `epochs` epochs of `batchSize` rows, validation on the rows flagged by `validationIndicatorCol`
    after every epoch, TensorBoard summaries in `summaryDir`, checkpoints in `checkpointDir`. The fitted model's
    `summary` is a `TrainingSummary`."""

    epochs = Param(Params._dummy(), "epochs", "passes over the training rows", TypeConverters.toInt)
    learningRate = Param(Params._dummy(), "learningRate", "Adam's learning rate", TypeConverters.toFloat)
    loss = Param(Params._dummy(), "loss", f"one of {', '.join(LOSSES)}", TypeConverters.toString)
    classWeights = Param(
        Params._dummy(), "classWeights", "nll: loss weight of each class ([] for equal)", TypeConverters.toListFloat
    )
    engine = Param(
        Params._dummy(),
        "engine",
        "barrier (the project's BarrierOptimizer) or distri (DistriOptimizer)",
        TypeConverters.toString,
    )
    validationIndicatorCol = Param(
        Params._dummy(),
        "validationIndicatorCol",
        "boolean column: true for validation rows ('' for none)",
        TypeConverters.toString,
    )
    summaryDir = Param(
        Params._dummy(),
        "summaryDir",
        "folder (any Hadoop URI) for BigDL's TensorBoard summaries, under summaryName ('' for none)",
        TypeConverters.toString,
    )
    summaryName = Param(Params._dummy(), "summaryName", "the summaries' subfolder", TypeConverters.toString)
    checkpointDir = Param(
        Params._dummy(), "checkpointDir", "folder (any Hadoop URI) for a snapshot every epoch", TypeConverters.toString
    )

    def __init__(self, module=None, **params) -> None:
        """`module`: the untrained BigDL module; `params`: any of the Params by name (featureShape is required)."""
        super().__init__()
        self._setDefault(
            labelCol="label",
            epochs=2,
            learningRate=1e-3,
            loss=NLL,
            classWeights=[],
            engine="barrier",
            validationIndicatorCol="",
            summaryDir="",
            summaryName="model",
            checkpointDir="",
        )
        self.module = module
        self._set(**{k: v for k, v in params.items() if v is not None})

    def _fit(self, dataset: DataFrame) -> BigDLModel:
        import numpy as np
        from bigdl.dllib.nn.criterion import BCECriterion, ClassNLLCriterion
        from bigdl.dllib.optim.optimizer import Adam, Loss, Top1Accuracy
        from bigdl.dllib.utils.common import RNG

        from pipelines.models.fit import fit

        if self.module is None:
            raise ValueError("BigDLClassifier needs the untrained BigDL module to train")
        if not self.isDefined(self.featureShape):
            raise ValueError("BigDLClassifier: set featureShape, the shape of one row's features")
        loss = self.getOrDefault(self.loss)
        if loss not in LOSSES:
            raise ValueError(f"BigDLClassifier: loss must be one of {', '.join(LOSSES)}, not {loss!r}")
        if self.isSet(self.seed):
            RNG().set_seed(self.getSeed())
        rows = dataset.select(
            F.col(self.getFeaturesCol()).alias("features"),
            F.col(self.getLabelCol()).alias("label"),
            *([F.col(c).alias("is_validation")] if (c := self.getOrDefault(self.validationIndicatorCol)) else []),
        )
        train, validation = rows, None
        if "is_validation" in rows.columns:
            train = rows.where(~F.col("is_validation")).drop("is_validation")
            validation = rows.where(F.col("is_validation")).drop("is_validation")
        if loss == BCE:
            criterion, methods = BCECriterion(), [Loss(BCECriterion())]
        else:
            weights = self.getOrDefault(self.classWeights)
            criterion = (
                ClassNLLCriterion(weights=np.asarray(weights, dtype=np.float32)) if weights else ClassNLLCriterion()
            )
            methods = [Top1Accuracy(), Loss(ClassNLLCriterion())]
        fitting = fit(
            dataset.sparkSession,
            self.module,
            train,
            shape=self.getOrDefault("featureShape"),
            criterion=criterion,
            optim_method=Adam(learningrate=self.getOrDefault(self.learningRate)),
            epochs=self.getOrDefault(self.epochs),
            batch_size=self.getOrDefault(self.batchSize),
            engine=self.getOrDefault(self.engine),
            validation=validation,
            methods=methods,
            summary_dir=self.getOrDefault(self.summaryDir) or None,
            app_name=self.getOrDefault(self.summaryName),
            checkpoint_dir=self.getOrDefault(self.checkpointDir) or None,
        )
        shared = ("featuresCol", "featureShape", "batchSize", "outputCol", "scoreCol")
        model = BigDLModel(
            fitting.model,
            outputKind=SIGMOID if loss == BCE else LOG_PROBABILITIES,
            **{name: self.getOrDefault(name) for name in shared},
        )
        model.summary = TrainingSummary(
            fitting.batch_size, fitting.iterations_per_epoch, fitting.train_summary, fitting.val_summary
        )
        return model
