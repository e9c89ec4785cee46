"""BigDL models as Spark ML stages: fit with the one training loop, transform with the one predictor, saved and
loaded with pyspark.ml's writers, alone and inside a PipelineModel."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import SQLTransformer

from pipelines.evaluation.baseline import LastReading
from pipelines.evaluation.calibration import ScoreCalibrator
from pipelines.evaluation.metrics import binary_metrics
from pipelines.models.lstm import build_lstm
from pipelines.models.stages import LOG_PROBABILITIES, PROBABILITIES, SIGMOID, BigDLClassifier, BigDLModel, score_column


@pytest.fixture(scope="module")
def sequences(spark):
    """600 rows of 12 steps x 3 features, labelled by the sum of the last 3 values of feature 0; a quarter held out."""
    x = np.random.default_rng(7).standard_normal((600, 12 * 3)).astype(np.float32)
    labels = (x.reshape(600, 12, 3)[:, -3:, 0].sum(axis=1) > 0).astype(int)
    rows = [(i, row.tolist(), float(label)) for i, (row, label) in enumerate(zip(x, labels))]
    return spark.createDataFrame(rows, "id int, values array<float>, target double").repartition(3).cache()


def test_a_pipeline_with_the_baseline_a_bigdl_classifier_and_calibration_round_trips(spark, sequences, tmp_path):
    """One Pipeline: the validation flag, the last-reading baseline (Spark ML's logistic regression), the BigDL
    LSTM (fitted on the other rows) and a Platt calibration of its score (fitted on the flagged rows)."""
    flag = SQLTransformer(statement="SELECT *, id % 5 = 0 AS is_validation FROM __THIS__")
    baseline = [LastReading(inputCol="values", nFeatures=3), LogisticRegression(featuresCol="last", labelCol="target")]
    classifier = BigDLClassifier(
        build_lstm(3, hidden_size=8, seed=3, input_gradient=False),
        featuresCol="values",
        labelCol="target",
        featureShape=[12, 3],
        batchSize=32,
        epochs=6,
        learningRate=0.02,
        validationIndicatorCol="is_validation",
        checkpointDir=str(tmp_path / "checkpoints"),
        seed=3,
    )
    calibration = ScoreCalibrator(labelCol="target", validationIndicatorCol="is_validation")
    fitted = Pipeline(stages=[flag, *baseline, classifier, calibration]).fit(sequences.where("id < 480"))
    held_out = sequences.where("id >= 480")
    scored = fitted.transform(held_out)
    assert {"probability", "output", "score", "calibrated"} <= set(scored.columns)
    assert binary_metrics(scored.withColumnRenamed("target", "label"))["roc_auc"] > 0.8  # it learnt the rule
    assert any(p.name.startswith("model.") for p in (tmp_path / "checkpoints").rglob("*"))
    assert fitted.stages[-1].fitted().method == "platt"
    summary = fitted.stages[3].summary
    assert summary.batch_size == 32 and summary.iterations_per_epoch >= 1 and summary.train is None

    fitted.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    bigdl_stage = loaded.stages[3]
    assert isinstance(bigdl_stage, BigDLModel)
    assert bigdl_stage.getOrDefault("featureShape") == [12, 3] and bigdl_stage.getFeaturesCol() == "values"
    assert loaded.stages[-1].fitted() == fitted.stages[-1].fitted()
    columns = ["id", "score", "calibrated", "probability"]
    before = {r.id: r for r in scored.select(*columns).collect()}
    after = {r.id: r for r in loaded.transform(held_out).select(*columns).collect()}
    assert after.keys() == before.keys()
    for name in ("score", "calibrated"):
        assert max(abs(after[k][name] - before[k][name]) for k in before) < 1e-6
    assert all(after[k].probability == before[k].probability for k in before)


def test_a_model_without_a_score_column_gives_the_raw_output(spark, sequences):
    model = BigDLModel(build_lstm(3, hidden_size=4, seed=1), featuresCol="values", featureShape=[12, 3], scoreCol="")
    out = model.transform(sequences.limit(5))
    assert "score" not in out.columns and len(out.first().output) == 2


def test_missing_settings_are_refused_before_any_job(spark, sequences):
    with pytest.raises(ValueError, match="set featureShape"):
        BigDLClassifier(build_lstm(3, hidden_size=4, seed=1), featuresCol="values").fit(sequences)
    with pytest.raises(ValueError, match="needs the untrained BigDL module"):
        BigDLClassifier(featuresCol="values", featureShape=[12, 3]).fit(sequences)
    with pytest.raises(ValueError, match="set featureShape"):
        BigDLModel(build_lstm(3, hidden_size=4, seed=1)).transform(sequences)
    with pytest.raises(ValueError, match="loss must be one of nll, bce, not 'mse'"):
        BigDLClassifier(build_lstm(3, hidden_size=4, seed=1), featureShape=[12, 3], loss="mse").fit(sequences)


def test_the_score_follows_the_output_kind(spark):
    outputs = spark.createDataFrame(
        [([float(np.log(0.25)), float(np.log(0.75))], [0.25, 0.75], [0.6])],
        "log_probs array<float>, probs array<float>, sigmoid array<float>",
    )
    scores = outputs.select(
        score_column(LOG_PROBABILITIES, outputs.log_probs),  # the project's models
        score_column(PROBABILITIES, outputs.probs),
        score_column(SIGMOID, outputs.sigmoid),
    ).first()
    assert list(scores) == pytest.approx([0.75, 0.75, 0.6])
