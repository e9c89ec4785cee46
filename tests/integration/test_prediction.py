"""The one predictor (`extension.predict`): the model's output beside each row, computed on the executors."""

from __future__ import annotations

import numpy as np
import pytest
from py4j.protocol import Py4JJavaError
from pyspark.errors import IllegalArgumentException

from pipelines.models import extension
from pipelines.models.lstm import build_lstm


def test_outputs_equal_the_models_own_and_rows_keep_their_order(spark):
    x = np.random.default_rng(3).standard_normal((23, 4, 3)).astype(np.float32)
    rows = spark.createDataFrame([(i, x[i].reshape(-1).tolist()) for i in range(23)], "id int, features array<double>")
    rows = rows.repartition(3)
    model = build_lstm(3, hidden_size=5, seed=2)
    expected = model.predict_local(x)
    before = [r.id for r in rows.collect()]
    predicted = extension.predict(model, rows, shape=(4, 3), batch_size=4).collect()  # batches split partitions
    assert [r.id for r in predicted] == before
    assert predicted[0].features == rows.collect()[0].features  # the row's own columns are kept
    outputs = np.array([r.output for r in predicted])
    np.testing.assert_allclose(outputs, expected[before], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "features, message",
    [
        ([0.0] * 5, "a row has 5 values, not 4 x 3 = 12"),
        (None, "a row has no features"),
        ([0.0] * 11 + [None], "a row's features hold a null"),
    ],
)
def test_malformed_rows_are_refused_with_the_reason(spark, features, message):
    rows = spark.createDataFrame([(features,)], "features array<float>")
    with pytest.raises(Py4JJavaError, match=message):
        extension.predict(build_lstm(3, hidden_size=2, seed=1), rows, shape=(4, 3), batch_size=8).collect()


def test_an_existing_output_column_is_refused(spark):
    rows = spark.createDataFrame([([0.0] * 12, [1.0])], "features array<float>, output array<float>")
    with pytest.raises(IllegalArgumentException, match="already have a column output"):
        extension.predict(build_lstm(3, hidden_size=2, seed=1), rows, shape=(4, 3), batch_size=8)


def test_features_of_any_numeric_type_are_read_and_others_refused(spark):
    model = build_lstm(3, hidden_size=2, seed=1)
    for kind, values in [("int", list(range(12))), ("double", [v / 12 for v in range(12)])]:
        rows = spark.createDataFrame([(values,)], f"features array<{kind}>")
        got = extension.predict(model, rows, shape=(4, 3), batch_size=8).first().output
        reference = model.predict_local(np.asarray(values, np.float32).reshape(1, 4, 3))[0]
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-6)
    rows = spark.createDataFrame([(["a"] * 12,)], "features array<string>")
    with pytest.raises(IllegalArgumentException, match="features must be an array of numbers, not array<string>"):
        extension.predict(model, rows, shape=(4, 3), batch_size=8)
