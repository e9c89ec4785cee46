"""Optimisers from config: scaling, warm-up then decay, LARS through the JVM, clipping, resume."""

import dataclasses

import numpy as np
import pytest

from pipelines.config import ConfigError, TrainConfig, defaults, load_config
from pipelines.models import optim
from pipelines.models import train as training
from pipelines.models.lstm import build_lstm
from tests.fixtures.windows import trend_windows

LENGTH, N_FEATURES = 12, 3


@pytest.fixture(scope="module")
def windows(spark):
    return trend_windows(spark, n=512, length=LENGTH, n_features=N_FEATURES, devices=32, seed=1, partitions=2)


def test_learning_rate_scales_with_the_batch_size():
    linear = defaults(TrainConfig, optimizer="sgd", learning_rate=0.1, lr_scaling="linear", base_batch_size=256)
    assert optim.scaled_learning_rate(linear, 1024) == pytest.approx(0.4)
    assert optim.scaled_learning_rate(linear, 64) == pytest.approx(0.025)
    sqrt = defaults(TrainConfig, optimizer="sgd", learning_rate=0.1, lr_scaling="sqrt", base_batch_size=256)
    assert optim.scaled_learning_rate(sqrt, 1024) == pytest.approx(0.2)
    assert optim.scaled_learning_rate(defaults(TrainConfig, learning_rate=0.1), 4096) == pytest.approx(0.1)


def test_warm_up_plan_climbs_from_the_base_rate_to_the_scaled_one():
    config = defaults(TrainConfig, optimizer="sgd", learning_rate=0.1, lr_scaling="linear", warmup_epochs=2, epochs=5)
    plan = optim.learning_rate_plan(config, batch_size=1024, iterations_per_epoch=10)
    assert plan["start"] == pytest.approx(0.1) and plan["peak"] == pytest.approx(0.4)
    assert plan["warmup_iterations"] == 20 and plan["total_iterations"] == 50


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.optimizer=rmsprop", "optimizer must be one of"),
        ("train.lr_scaling=cubic", "lr_scaling must be one of"),
        ("train.schedule=cosine", "schedule must be one of"),
        ("train.lstm=cudnn", "lstm must be one of"),
        ("train.engine=horovod", "engine must be one of"),
        ("train.warmup_epochs=1", "BigDL's Adam takes a fixed learning rate"),
        ("train.nesterov=true", "nesterov applies to optimizer=sgd only"),
        ("train.lars_trust=2", "lars_trust must be in (0, 1]"),
        ("train.clip_norm=-1", "clip_norm and clip_value must be >= 0"),
    ],
)
def test_settings_bigdl_cannot_honour_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match="^train: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides=[override])


@pytest.mark.slow
def test_sgd_follows_linear_scaling_warm_up_then_poly_decay(spark, windows, tmp_path):
    """The rate BigDL used, iteration by iteration: a linear climb from 0.05 to 0.1 over the first epoch,
    then a linear decay towards zero."""
    config = defaults(
        TrainConfig,
        hidden_size=8,
        epochs=3,
        batch_size=64,
        optimizer="sgd",
        learning_rate=0.05,
        lr_scaling="linear",
        base_batch_size=32,
        warmup_epochs=1,
        schedule="poly",
        decay_power=1.0,
        momentum=0.9,
        nesterov=True,
    )
    train, val = windows.where("device_id < 'd24'"), windows.where("device_id >= 'd24'")
    result = training.train_lstm(
        spark, train, val, config=config, length=LENGTH, n_features=N_FEATURES, run_dir=str(tmp_path)
    )
    plan, rates = result.learning_rate, dict(result.learning_rates)
    warmup = plan["warmup_iterations"]
    assert warmup == result.iterations // 3 and plan["peak"] == pytest.approx(0.1)
    assert sorted(rates) == list(range(1, result.iterations + 1))
    climb = [rates[i] for i in range(1, warmup + 1)]
    assert climb[0] == pytest.approx(0.05, rel=1e-3)
    assert np.all(np.diff(climb) > 0) and np.allclose(np.diff(climb), np.diff(climb)[0], rtol=1e-3)
    decay = [rates[i] for i in range(warmup + 1, result.iterations + 1)]
    assert max(decay) <= 0.1 + 1e-6 and np.all(np.diff(decay) < 0) and decay[-1] < 0.1 / warmup


@pytest.mark.slow
def test_lars_through_the_jvm_trains_checkpoints_each_layer_and_resumes(spark, windows, tmp_path):
    config = defaults(
        TrainConfig,
        hidden_size=8,
        epochs=2,
        batch_size=64,
        optimizer="lars",
        learning_rate=0.05,
        lr_scaling="linear",
        base_batch_size=32,
        warmup_epochs=1,
        schedule="poly",
        momentum=0.9,
        lars_trust=1.0,
        seed=3,
    )
    train, val = windows.where("device_id < 'd24'"), windows.where("device_id >= 'd24'")
    run_dir = str(tmp_path / "run")
    result = training.train_lstm(
        spark, train, val, config=config, length=LENGTH, n_features=N_FEATURES, run_dir=run_dir
    )
    assert result.epochs == 2
    losses = [v for _, v in result.train_loss]
    epoch = len(losses) // 2  # single iterations are noisy at LARS's peak rate: compare the epochs' means
    assert np.mean(losses[epoch:]) < 0.8 * np.mean(losses[:epoch])
    assert result.validation["roc_auc"][-1][1] > 0.7

    # One LarsSGD per layer with parameters, all saved, all reloaded on resume.
    model_path, optim_paths = training.latest_checkpoint(spark, f"{run_dir}/checkpoints")
    assert len(optim_paths) == 2  # the (fused) LSTM and the head
    resumed = training.train_lstm(
        spark,
        train,
        val,
        config=dataclasses.replace(config, epochs=3),
        length=LENGTH,
        n_features=N_FEATURES,
        run_dir=run_dir,
        resume=True,
    )
    assert resumed.epochs == 3


def _train_one_epoch(spark, windows, config):
    """Weights before and after one epoch of the optimiser `config` describes, with its clipping."""
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import MaxEpoch, Optimizer

    samples = training.to_samples(windows, length=LENGTH, n_features=N_FEATURES)
    model = build_lstm(N_FEATURES, hidden_size=4)
    before = [w.copy() for w in model.get_weights()]
    method, _ = optim.make_optim_methods(model, config, batch_size=config.batch_size, iterations_per_epoch=8)
    optimizer = Optimizer.create(
        model=model,
        training_set=samples,
        criterion=ClassNLLCriterion(),
        optim_method=method,
        end_trigger=MaxEpoch(1),
        batch_size=config.batch_size,
    )
    optim.set_gradient_clipping(optimizer, config)
    trained = optimizer.optimize()
    return np.concatenate([w.ravel() for w in before]), np.concatenate([w.ravel() for w in trained.get_weights()])


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["clip_value", "clip_norm"])
def test_gradient_clipping_bounds_each_step(spark, windows, clip):
    """Plain SGD moves each weight by at most lr x clip_value, and all of them by at most lr x clip_norm, per step."""
    lr, bound, iterations = 0.5, 1e-3, 8  # 512 windows, batch 64
    config = defaults(TrainConfig, optimizer="sgd", learning_rate=lr, momentum=0.0, batch_size=64, **{clip: bound})
    before, after = _train_one_epoch(spark, windows, config)
    step = after - before
    if clip == "clip_value":
        assert np.abs(step).max() <= iterations * lr * bound * 1.001
    else:
        assert np.linalg.norm(step) <= iterations * lr * bound * 1.001
    # Without clipping the same training moves the weights much further: the bound above is not vacuous.
    free_before, free_after = _train_one_epoch(
        spark, windows, defaults(TrainConfig, optimizer="sgd", learning_rate=lr, momentum=0.0, batch_size=64)
    )
    assert np.linalg.norm(free_after - free_before) > 10 * np.linalg.norm(step)
