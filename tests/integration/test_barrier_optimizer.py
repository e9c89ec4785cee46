"""The project's BarrierOptimizer (jvm/) trains as BigDL's DistriOptimizer does.

With the whole training set as one batch the order of the data cannot differ, so both engines must reach the
same weights, stateful optimisers included.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.models import extension
from pipelines.models.lstm import build_lstm


def _optim_method(name: str):
    from bigdl.dllib.optim.optimizer import SGD, Adam

    return SGD(learningrate=0.5, momentum=0.9, dampening=0.0) if name == "sgd" else Adam(learningrate=0.02)


@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_barrier_optimizer_reaches_distri_optimizers_weights(spark, sequence_samples, method):
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import MaxEpoch

    trained = {}
    for engine in ("distri", "barrier"):
        model = build_lstm(3, hidden_size=8, seed=5, input_gradient=False)
        optimizer = extension.optimizer(
            engine,
            model=model,
            samples=sequence_samples,
            criterion=ClassNLLCriterion(),
            end_trigger=MaxEpoch(8),
            batch_size=128,
            optim_method=_optim_method(method),
        )
        if engine == "distri":
            getattr(optimizer.value, "compress_$eq")("none")  # DistriOptimizer sends FP16 gradients by default
        trained[engine] = optimizer.optimize().get_weights()
    initial = build_lstm(3, hidden_size=8, seed=5).get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(trained["distri"], initial)) > 0.05
    for distri, barrier in zip(trained["distri"], trained["barrier"]):
        np.testing.assert_allclose(barrier, distri, rtol=0, atol=2e-5)


def test_barrier_optimizers_validation_equals_the_trained_models_own_scores(spark, sequence_samples, tmp_path):
    """Validation runs in the Samples' own partitions (three here, on two cores): loss and accuracy equal what
    the trained model gives on the same windows."""
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import EveryEpoch, Loss, MaxEpoch, Top1Accuracy, ValidationSummary

    model = build_lstm(3, hidden_size=8, seed=5, input_gradient=False)
    optimizer = extension.optimizer(
        "barrier",
        model=model,
        samples=sequence_samples,
        criterion=ClassNLLCriterion(),
        end_trigger=MaxEpoch(2),
        batch_size=32,
        optim_method=_optim_method("adam"),
    )
    extension.set_validation(
        optimizer,
        samples=sequence_samples,
        trigger=EveryEpoch(),
        batch_size=10,
        methods=[Top1Accuracy(), Loss(ClassNLLCriterion())],
    )
    summary = ValidationSummary(log_dir=str(tmp_path), app_name="validation")
    optimizer.set_val_summary(summary)
    trained = optimizer.optimize()

    # The fixture's windows, rebuilt: 128 x 12 steps x 3 features, labelled by the last 3 values of feature 0.
    x = np.random.default_rng(5).standard_normal((128, 12 * 3)).astype(np.float32).reshape(128, 12, 3)
    labels = (x[:, -3:, 0].sum(axis=1) > 0).astype(int)
    log_probs = trained.predict_local(x)
    assert [step for step, _, _ in summary.read_scalar("Loss")] == [4, 8]
    assert summary.read_scalar("Loss")[-1][1] == pytest.approx(-log_probs[np.arange(128), labels].mean(), abs=1e-5)
    accuracy = float((log_probs.argmax(axis=1) == labels).mean())
    assert summary.read_scalar("Top1Accuracy")[-1][1] == pytest.approx(accuracy, abs=1e-6)


def test_a_seeded_barrier_run_repeats_itself(spark, sequence_samples):
    """The data order follows BigDL's seeded generator: the same seed gives the same weights, another seed others."""
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import MaxEpoch

    def run(seed: int):
        model = build_lstm(3, hidden_size=4, seed=seed, input_gradient=False)
        optimizer = extension.optimizer(
            "barrier",
            model=model,
            samples=sequence_samples,
            criterion=ClassNLLCriterion(),
            end_trigger=MaxEpoch(2),
            batch_size=16,
            optim_method=_optim_method("sgd"),
        )
        return np.concatenate([w.ravel() for w in optimizer.optimize().get_weights()])

    first, again, other = run(5), run(5), run(6)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_barrier_optimizer_refuses_a_batch_larger_than_the_data(spark, sequence_samples):
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import MaxEpoch

    model = build_lstm(3, hidden_size=4, seed=5, input_gradient=False)
    optimizer = extension.optimizer(
        "barrier",
        model=model,
        samples=sequence_samples,
        criterion=ClassNLLCriterion(),
        end_trigger=MaxEpoch(1),
        batch_size=256,
        optim_method=_optim_method("sgd"),
    )
    with pytest.raises(Exception, match="larger than the 128 training samples"):
        optimizer.optimize()


@pytest.mark.parametrize(
    "features, label, message",
    [
        ([0.5] * 5, 1, "a row has 5 values, not 12 x 3 = 36"),
        ([0.5] * 36, 3, "a row's label is 3.0, not 0 or 1"),
        (None, 0, "a row has no features or no label"),
        ([0.5] * 35 + [None], 0, "a row's features hold a null"),
    ],
)
def test_samples_refuse_a_malformed_row(spark, features, label, message):
    windows = spark.createDataFrame([(features, label)], "features array<float>, label int")
    with pytest.raises(Exception, match=message):
        extension.samples(windows, shape=(12, 3)).count()


def test_samples_hold_each_window_as_steps_by_features(spark):
    values = [float(i) for i in range(36)]
    windows = spark.createDataFrame([(values, 1)], "features array<float>, label int")
    sample = extension.samples(windows, shape=(12, 3)).first()
    assert [list(size) for size in sample.getFeatureSize()] == [[12, 3]]
    assert list(sample.getData()) == [*values, 2.0]  # time-major features, then the class (label + 1)


def test_samples_take_double_vectors_and_target_arrays(spark):
    rows = spark.createDataFrame([([0.25, -1.5, 3.0], 0)], "features array<double>, label long")
    sample = extension.samples(rows, shape=(3,)).first()
    assert [list(size) for size in sample.getFeatureSize()] == [[3]]
    assert list(sample.getData()) == [0.25, -1.5, 3.0, 1.0]
    tasks = spark.createDataFrame([([7.0, 2.0], [1.0, 0.0])], "features array<float>, label array<float>")
    sample = extension.samples(tasks, shape=(2,)).first()
    assert [list(size) for size in sample.getLabelSize()] == [[2]]
    assert list(sample.getData()) == [7.0, 2.0, 1.0, 0.0]  # the features, then the targets as they are
