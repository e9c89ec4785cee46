"""A BigDL 1-D convolutional classifier over report tokens, for findings that rules catch poorly.

Two outputs (sigmoid, binary cross-entropy): the study is abnormal; a seizure was recorded. The input is the
de-identified text of the findings sections (description, abnormal discharges, seizures, events, impression,
clinical correlation: the history is
left out, as the rules leave it out, since it speaks of seizures that are not in this recording), as token
indices. LookupTable -> TemporalConvolution -> ReLU -> max over time -> Dropout -> Linear -> Sigmoid, trained
by the project's `BarrierOptimizer` on `Sample`s built on the executors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.config import EegClassifierConfig
from pipelines.eeg.extract import FINDING_SECTIONS, extract_findings, split_sections

log = logging.getLogger(__name__)

TASKS = ("abnormal", "seizure_present")
PAD, UNKNOWN = 1, 2  # LookupTable indices are 1-based; words start at 3
_TOKEN = re.compile(r"[a-z]+|\d+|\[[a-z]+\]")
BODY_SECTIONS = (*FINDING_SECTIONS, "impression", "clinical_correlation")


def body_text(text: str) -> str:
    """The findings sections of a report (the whole text after the preamble when none is found)."""
    _, sections = split_sections(text)
    parts = [sections[s] for s in BODY_SECTIONS if s in sections]
    return "\n".join(parts) if parts else text


def tokenize(text: str) -> list[str]:
    return ["<num>" if t.isdigit() else t for t in _TOKEN.findall(text.lower())]


def build_vocabulary(texts: DataFrame, *, size: int, column: str = "text") -> list[str]:
    """The `size - 2` most frequent tokens (ties by token), counted on the executors."""
    tokens = texts.select(column).rdd.flatMap(lambda r: tokenize(body_text(r[0])))
    counts = tokens.map(lambda t: (t, 1)).reduceByKey(lambda a, b: a + b)
    top = counts.takeOrdered(max(size - 2, 0), key=lambda kv: (-kv[1], kv[0]))  # type: ignore[type-var]  # tuples order
    return [t for t, _ in top]


def encode(text: str, index: dict[str, int], max_tokens: int) -> np.ndarray:
    ids = [index.get(t, UNKNOWN) for t in tokenize(body_text(text))][:max_tokens]
    out = np.full(max_tokens, PAD, dtype=np.float32)
    out[: len(ids)] = ids
    return out


def build_model(config: EegClassifierConfig):
    from bigdl.dllib.nn.layer import Dropout, Linear, LookupTable, Max, ReLU, Sequential, Sigmoid, TemporalConvolution

    model = Sequential()
    model.add(LookupTable(config.vocab_size, config.embedding_size, padding_value=float(PAD)).set_name("embedding"))
    model.add(TemporalConvolution(config.embedding_size, config.filters, config.kernel_width).set_name("conv"))
    model.add(ReLU())
    model.add(Max(2))  # over time
    model.add(Dropout(0.3))
    model.add(Linear(config.filters, len(TASKS)).set_name("heads"))
    model.add(Sigmoid())
    return model


def token_index(vocabulary: Sequence[str]) -> dict[str, int]:
    """Token -> LookupTable index (1-based: PAD and UNKNOWN come first, words from 3)."""
    return {t: i + 3 for i, t in enumerate(vocabulary)}


def encoded(labelled: DataFrame, vocabulary: Sequence[str], max_tokens: int) -> DataFrame:
    """`features` (the token ids of `text`) and `label` (one 0/1 per task; 0 where the task's column is absent)."""
    tasks = [F.col(t).cast("float") if t in labelled.columns else F.lit(0.0).cast("float") for t in TASKS]
    return _with_tokens(
        labelled.select("text", F.array(*tasks).alias("label")),
        vocabulary,
        max_tokens,
        "features array<float>, label array<float>",
    )


def _with_tokens(rows: DataFrame, vocabulary: Sequence[str], max_tokens: int, schema: str) -> DataFrame:
    """The rows with `text` replaced by `features`, its token ids (the other columns follow in order)."""
    index = token_index(vocabulary)
    encoded_rows = rows.rdd.map(lambda row: (encode(row["text"], index, max_tokens).tolist(), *row[1:]))
    return rows.sparkSession.createDataFrame(encoded_rows, schema)


def train(labelled: DataFrame, config: EegClassifierConfig, *, seed: int = 11):
    """(model, vocabulary) trained on `text` + one 0/1 column per task, as a `BigDLClassifier` (the project's
    training loop; binary cross-entropy on the tasks' sigmoid outputs)."""
    from bigdl.dllib.utils.common import RNG

    from pipelines.models.stages import BCE, BigDLClassifier

    vocabulary = build_vocabulary(labelled, size=config.vocab_size)
    RNG().set_seed(seed)  # the initial weights, then the data order: a run repeats itself
    log.info("training the report classifier: %d tokens of vocabulary, %d epochs", len(vocabulary), config.epochs)
    classifier = BigDLClassifier(
        build_model(config),
        featureShape=[config.max_tokens],
        loss=BCE,
        learningRate=config.learning_rate,
        epochs=config.epochs,
        batchSize=config.batch_size,
        scoreCol="",
    )
    return classifier.fit(encoded(labelled, vocabulary, config.max_tokens)).module, vocabulary


def predict(model, vocabulary: Sequence[str], reports: DataFrame, config: EegClassifierConfig) -> DataFrame:
    """`report_id, p_abnormal, p_seizure_present`."""
    from pipelines.models.stages import BigDLModel

    rows = _with_tokens(
        reports.select("text", "report_id"), vocabulary, config.max_tokens, "features array<float>, report_id string"
    )
    predicted = BigDLModel(model, featureShape=[config.max_tokens], batchSize=64, scoreCol="").transform(rows)
    return predicted.select(
        "report_id", *(F.col("output")[i].cast("double").alias(f"p_{t}") for i, t in enumerate(TASKS))
    )


def rule_predictions(reports: DataFrame) -> DataFrame:
    """`report_id, r_abnormal, r_seizure_present` from the rule-based extraction (unstated impression: 0)."""

    def run(rows: Iterable) -> Iterator[tuple]:
        for row in rows:
            f = extract_findings(row["text"])
            yield (row["report_id"], float(f.impression == "abnormal"), float(f.seizure_present))

    return reports.sparkSession.createDataFrame(
        reports.select("report_id", "text").rdd.mapPartitions(run),
        "report_id string, r_abnormal double, r_seizure_present double",
    )


def compare(scored: DataFrame, rules: DataFrame, truth: DataFrame, threshold: float) -> dict:
    """Per task: precision, recall, F1, accuracy of the classifier and of the rules on the same reports."""
    from pipelines.evaluation.metrics import binary_metrics

    data = scored.join(rules, "report_id").join(truth, "report_id").cache()
    out: dict = {"reports": data.count()}
    for task in TASKS:
        frame = data.select(
            F.col(task).cast("int").alias("label"), F.col(f"p_{task}").alias("model"), F.col(f"r_{task}").alias("rules")
        )
        model = binary_metrics(frame, score_col="model", threshold=threshold)
        rules_m = binary_metrics(frame, score_col="rules", threshold=0.5)
        keep = ("precision", "recall", "f1", "accuracy")
        out[task] = {
            "classifier": {
                **{k: round(model[k], 4) for k in keep},
                "roc_auc": round(model["roc_auc"], 4) if model["roc_auc"] else None,
            },
            "rules": {k: round(rules_m[k], 4) for k in keep},
            "positives": model["positives"],
        }
    data.unpersist()
    return out


def truth_labels(spark: SparkSession, truth_uri: str) -> DataFrame:
    """`report_id, abnormal, seizure_present` (0/1) from the generator's truth."""
    lines = spark.read.text(truth_uri)
    return lines.select(
        F.get_json_object("value", "$.report_id").alias("report_id"),
        F.get_json_object("value", "$.abnormal").cast("boolean").cast("int").alias("abnormal"),
        F.get_json_object("value", "$.seizure_present").cast("boolean").cast("int").alias("seizure_present"),
    )
