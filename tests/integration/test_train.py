"""BigDL training on windows: Samples on the executors, loss going down, checkpoints and resume."""

import os
import re

import numpy as np
import pytest

from pipelines.config import TrainConfig, defaults
from pipelines.evaluation.metrics import binary_metrics
from pipelines.models import train as training
from pipelines.models.lstm import build_lstm
from tests.fixtures.windows import trend_windows

LENGTH, N_FEATURES = 12, 3


@pytest.fixture(scope="module")
def windows(spark):
    return trend_windows(spark, n=768, length=LENGTH, n_features=N_FEATURES, devices=40, seed=0, partitions=4)


def test_samples_are_built_on_the_executors(spark, windows):
    samples = training.to_samples(windows, length=LENGTH, n_features=N_FEATURES)
    # The RDD is a lazily mapped Python RDD of the DataFrame: nothing was built on the driver.
    assert samples.getNumPartitions() == windows.rdd.getNumPartitions()
    where = samples.mapPartitions(lambda part: [(os.getpid(), sum(1 for _ in part))]).collect()
    assert sum(n for _, n in where) == 768
    assert all(pid != os.getpid() for pid, _ in where)  # built in Python worker processes
    first = samples.first()
    assert list(first.features[0].shape) == [LENGTH, N_FEATURES]
    assert first.labels[0].storage[0] in (1.0, 2.0)


def test_a_seed_fixes_the_initial_weights(spark):
    def weights(seed):
        return np.concatenate([w.ravel() for w in build_lstm(N_FEATURES, hidden_size=4, seed=seed).get_weights()])

    first, again, other = weights(11), weights(11), weights(12)
    assert np.array_equal(first, again)
    reference = build_lstm(N_FEATURES, hidden_size=4, seed=11, kind="reference").get_weights()
    assert np.array_equal(first, np.concatenate([w.ravel() for w in reference]))  # the same for both kinds
    assert not np.allclose(first, other)
    assert not np.allclose(weights(None), weights(None))


def test_round_batch_size():
    from pipelines.models.fit import round_batch_size

    assert round_batch_size(256, 2) == 256
    assert round_batch_size(255, 2) == 256
    assert round_batch_size(1, 4) == 4


def test_checkpoints_are_taken_by_iteration_and_complete(spark, tmp_path):
    """model.100 is newer than model.99; a snapshot with an empty file or without one of its folder's optim
    methods is passed over."""
    folder = tmp_path / "checkpoints" / "20261201_120000"
    folder.mkdir(parents=True)

    def snapshot(iteration, model=b"m", modules=("a", "b")):
        (folder / f"model.{iteration}").write_bytes(model)
        for module in modules:
            (folder / f"optimMethod-{module}.{iteration}").write_bytes(b"o")

    for iteration in (99, 100, 120):
        snapshot(iteration)
    snapshot(150, model=b"")
    snapshot(160, modules=("a",))
    uri = str(tmp_path / "checkpoints")
    assert training.epoch_checkpoint(spark, uri, 1, 50).endswith("/model.100")
    model, optim_methods = training.latest_checkpoint(spark, uri)
    assert model.endswith("/model.120") and sorted(optim_methods) == ["a", "b"]
    assert optim_methods["b"].endswith("/optimMethod-b.120")
    assert training.latest_checkpoint(spark, str(tmp_path / "none")) is None


@pytest.mark.slow
@pytest.mark.parametrize("engine, resume_engine", [("barrier", "distri"), ("distri", "barrier")])
def test_training_lowers_loss_checkpoints_and_resumes(spark, windows, tmp_path, caplog, engine, resume_engine):
    """Either engine trains, checkpoints and resumes, and each resumes from the other's snapshots."""
    run_dir = str(tmp_path / "run")
    config = defaults(TrainConfig, engine=engine, hidden_size=8, epochs=2, batch_size=64, learning_rate=0.02)
    train, val = windows.where("device_id < 'd30'"), windows.where("device_id >= 'd30'")
    with caplog.at_level("INFO", logger=training.__name__):
        first = training.train_lstm(
            spark, train, val, config=config, length=LENGTH, n_features=N_FEATURES, run_dir=run_dir
        )
    assert first.epochs == 2
    # One optimize() for both epochs, each epoch logged with its validation as BigDL records it.
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [m.split(":")[0] for m in logged] == ["epoch 1/2", "epoch 2/2"]
    assert re.search(r"val ROC-AUC [01]\.\d{3}, PR-AUC [01]\.\d{3}", logged[-1]), logged[-1]
    assert len(first.epoch_seconds) == 2 and all(s > 0 for s in first.epoch_seconds)
    # Training time alone: the epoch's time without its validation (with it, on DistriOptimizer).
    assert len(first.train_seconds) == 2 and all(0 < t <= s for t, s in zip(first.train_seconds, first.epoch_seconds))
    losses = [v for _, v in first.train_loss]
    assert np.mean(losses[len(losses) // 2 :]) < np.mean(losses[: len(losses) // 2])  # the epochs' means
    assert len(first.validation["Top1Accuracy"]) == 2
    iterations_per_epoch = first.iterations // 2
    assert [step for step, _ in first.validation["Loss"]] == [iterations_per_epoch, 2 * iterations_per_epoch]
    assert [epoch for epoch, _ in first.validation["roc_auc"]] == [1, 2]
    assert first.validation["roc_auc"][-1][1] > 0.7
    assert training.latest_checkpoint(spark, f"{run_dir}/checkpoints") is not None

    resumed = training.train_lstm(
        spark,
        train,
        val,
        config=defaults(TrainConfig, engine=resume_engine, hidden_size=8, epochs=4, batch_size=64, learning_rate=0.02),
        length=LENGTH,
        n_features=N_FEATURES,
        run_dir=run_dir,
        resume=True,
    )
    assert resumed.epochs == 4
    assert [epoch for epoch, _ in resumed.validation["roc_auc"]] == [1, 2, 3, 4]  # the run folder's history
    assert len(resumed.epoch_seconds) == 2
    assert resumed.iterations == 4 * iterations_per_epoch  # two more epochs, not four

    scores = training.predict_scores(resumed.model, val, length=LENGTH, n_features=N_FEATURES, batch_size=64)
    rows = scores.collect()
    assert len(rows) == val.count()
    assert all(0.0 <= r.score <= 1.0 for r in rows)
    by_label = {lab: np.mean([r.score for r in rows if r.label == lab]) for lab in (0, 1)}
    assert by_label[1] > by_label[0] + 0.2
    # BigDL's validation of the last epoch (the project's BinaryAUC on binned log-odds) agrees with the metrics
    # of the final model's predictions; BigDL's loss averages its batches' means, hence the looser bound.
    metrics = binary_metrics(scores)
    for curve, tolerance in (("roc_auc", 2e-3), ("pr_auc", 2e-3), ("log_loss", 2e-2)):
        assert resumed.validation[curve][-1][1] == pytest.approx(metrics[curve], abs=tolerance), curve

    path = str(tmp_path / "model.bigdl")
    training.save_model(spark, resumed.model, path)
    again = training.predict_scores(training.load_model(path), val, length=LENGTH, n_features=N_FEATURES, batch_size=64)
    assert sorted(r.score for r in again.collect()) == pytest.approx(sorted(r.score for r in rows), abs=1e-6)


def test_keep_epoch_best_val_loss_returns_that_epochs_checkpoint(spark, windows, tmp_path):
    run_dir = str(tmp_path / "run")
    config = defaults(
        TrainConfig, hidden_size=8, epochs=3, batch_size=64, learning_rate=0.05, keep_epoch="best_val_loss"
    )
    train, val = windows.where("device_id < 'd30'"), windows.where("device_id >= 'd30'")
    result = training.train_lstm(
        spark, train, val, config=config, length=LENGTH, n_features=N_FEATURES, run_dir=run_dir
    )
    losses = dict(result.validation["log_loss"])
    assert result.epochs == 3 and result.kept_epoch == min(losses, key=lambda e: (losses[e], -e))
    kept = training.epoch_checkpoint(spark, f"{run_dir}/checkpoints", result.kept_epoch, result.iterations // 3)
    for returned, saved in zip(result.model.get_weights(), training.load_checkpoint_model(kept).get_weights()):
        assert np.array_equal(returned, saved)
