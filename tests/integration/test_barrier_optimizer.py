"""The project's BarrierOptimizer (jvm/) trains as BigDL's DistriOptimizer does.

With the whole training set as one batch the order of the data cannot differ, so both engines must reach the
same weights, stateful optimisers included.
"""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.models.extension import barrier_optimizer
from pipelines.models.lstm import build_lstm


@pytest.fixture(scope="module")
def samples(spark):
    from pipelines.models.train import to_samples

    x = np.random.default_rng(5).standard_normal((128, 12 * 3)).astype(np.float32)
    labels = (x.reshape(128, 12, 3)[:, -3:, 0].sum(axis=1) > 0).astype(int)
    windows = spark.createDataFrame([(row.tolist(), int(label)) for row, label in zip(x, labels)],
                                    "features array<float>, label int").repartition(3)
    rdd = to_samples(windows, length=12, n_features=3).cache()
    yield rdd
    rdd.unpersist()


def _optim_method(name: str):
    from bigdl.dllib.optim.optimizer import SGD, Adam

    return SGD(learningrate=0.5, momentum=0.9, dampening=0.0) if name == "sgd" else Adam(learningrate=0.02)


@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_barrier_optimizer_reaches_distri_optimizers_weights(spark, samples, method):
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import MaxEpoch, Optimizer

    trained = {}
    for engine, create in (("distri", Optimizer.create), ("barrier", barrier_optimizer)):
        model = build_lstm(3, hidden_size=8, seed=5, input_gradient=False)
        optimizer = create(model=model, training_set=samples, criterion=ClassNLLCriterion(), end_trigger=MaxEpoch(8),
                           batch_size=128, optim_method=_optim_method(method))
        if engine == "distri":
            getattr(optimizer.value, "compress_$eq")("none")  # DistriOptimizer sends FP16 gradients by default
        trained[engine] = optimizer.optimize().get_weights()
    initial = build_lstm(3, hidden_size=8, seed=5).get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(trained["distri"], initial)) > 0.05
    for distri, barrier in zip(trained["distri"], trained["barrier"]):
        np.testing.assert_allclose(barrier, distri, rtol=0, atol=2e-5)


def test_barrier_optimizer_refuses_a_batch_larger_than_the_data(spark, samples):
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import MaxEpoch

    model = build_lstm(3, hidden_size=4, seed=5, input_gradient=False)
    optimizer = barrier_optimizer(model=model, training_set=samples, criterion=ClassNLLCriterion(),
                                  end_trigger=MaxEpoch(1), batch_size=256, optim_method=_optim_method("sgd"))
    with pytest.raises(Exception, match="larger than the 128 training samples"):
        optimizer.optimize()
