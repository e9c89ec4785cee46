"""Training with BigDL (`train.engine`: the project's BarrierOptimizer or DistriOptimizer) on Samples built on the
executors, checkpoints and resume."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.rdd import RDD
from pyspark.sql import DataFrame, SparkSession

from pipelines.config import TrainConfig
from pipelines.io import fs, probe
from pipelines.layout import RunLayout
from pipelines.models import extension, optim
from pipelines.models.fit import Fitting, fit
from pipelines.models.lstm import build_lstm
from pipelines.models.stages import BigDLModel

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: object
    epochs: int
    kept_epoch: int
    iterations: int
    batch_size: int
    train_loss: list[tuple[int, float]]
    validation: dict[str, list[tuple[int, float]]]
    learning_rate: dict
    learning_rates: list[tuple[int, float]]
    epoch_seconds: list[float]
    train_seconds: list[float]


def sample_builder(length: int, n_features: int):
    """A mapPartitions function turning window rows (features, label) into BigDL Samples."""

    def build(rows):
        from bigdl.dllib.utils.common import Sample

        for row in rows:
            x = np.asarray(row["features"], dtype=np.float32).reshape(length, n_features)
            yield Sample.from_ndarray(x, np.array([row["label"] + 1.0], dtype=np.float32))

    return build


def to_samples(windows: DataFrame, *, length: int, n_features: int) -> RDD:
    """RDD of BigDL `Sample`s (features length x n_features, label 1 or 2), built on the executors."""
    return windows.select("features", "label").rdd.mapPartitions(sample_builder(length, n_features))


_SNAPSHOT_NAME = re.compile(r"(model|optimMethod-(.*))\.(\d+)")


def _snapshots(spark: SparkSession, checkpoint_dir: str) -> dict[int, dict[str, str]]:
    """{iteration: {"": model path, optimised module: optim-method path}} of the complete snapshots under
    `checkpoint_dir` (any Hadoop URI): a model and every optim method its folder has, none of them empty.

    The iteration is the counter in the names (`model.16`: written after 15 iterations). BigDL nests a folder per
    `optimize()` call; an iteration written again by a later call (a resumed run) is taken from the later folder.
    """
    if not fs.exists(spark, checkpoint_dir):
        return {}
    written: dict[tuple[int, str], dict[str, tuple[str, int]]] = {}
    modules: dict[str, set[str]] = {}
    for path, size in probe.list_files(spark, checkpoint_dir, ["*"]):
        folder, name = path.rsplit("/", 1)
        match = _SNAPSHOT_NAME.fullmatch(name)
        if match:
            module = match.group(2) or ""
            written.setdefault((int(match.group(3)), folder), {})[module] = (path, size)
            modules.setdefault(folder, set()).add(module)
    snapshots = {}
    for (iteration, folder), files in sorted(written.items()):
        complete = "" in files and len(files) > 1 and files.keys() == modules[folder]
        if complete and all(size > 0 for _, size in files.values()):
            snapshots[iteration] = {module: path for module, (path, _) in files.items()}
    return snapshots


def _snapshot_epoch(iteration: int, iterations_per_epoch: int) -> int:
    """The epoch after which the snapshot of `iteration` was written."""
    return (iteration - 1) // iterations_per_epoch


def latest_checkpoint(spark: SparkSession, checkpoint_dir: str) -> tuple[str, dict[str, str]] | None:
    """(model path, {optimised module: optim-method path}) of the newest complete snapshot (any Hadoop URI)."""
    snapshots = _snapshots(spark, checkpoint_dir)
    if not snapshots:
        return None
    newest = dict(snapshots[max(snapshots)])
    return newest.pop(""), newest


def epoch_checkpoint(spark: SparkSession, checkpoint_dir: str, epoch: int, iterations_per_epoch: int) -> str:
    """The model of the complete snapshot written at the end of `epoch` (the newest, when a resumed run wrote it
    again)."""
    snapshots = _snapshots(spark, checkpoint_dir)
    found = [i for i in snapshots if _snapshot_epoch(i, iterations_per_epoch) == epoch]
    if not found:
        raise FileNotFoundError(f"no checkpoint of epoch {epoch} under {checkpoint_dir}")
    return snapshots[max(found)][""]


def train_lstm(
    spark: SparkSession,
    train: DataFrame,
    validation: DataFrame,
    *,
    config: TrainConfig,
    length: int,
    n_features: int,
    run_dir: str,
    resume: bool = False,
    samples: tuple[Any, Any, int] | None = None,
) -> TrainResult:
    """Train the LSTM with one optimize() run (`config.engine`), validating, summarising and checkpointing every
    epoch; `samples`: the rows already cached as Samples (`fit.cached_samples`), shared by several trainings.

    Validation after each epoch, by BigDL on the executors: Top1Accuracy, Loss, and the project's ROC-AUC and
    PR-AUC; each epoch is logged as BigDL's summaries record it. With `resume`, training continues from the
    newest checkpoint in `run_dir/checkpoints`, and `config.epochs` counts the epochs already done.
    """
    run = RunLayout(run_dir)
    checkpoint_dir = run.checkpoints
    snapshot = latest_checkpoint(spark, checkpoint_dir) if resume else None
    if resume and snapshot is None:
        raise FileNotFoundError(f"--resume: no checkpoint under {checkpoint_dir}")
    from bigdl.dllib.nn.criterion import ClassNLLCriterion
    from bigdl.dllib.optim.optimizer import Loss, OptimMethod, Top1Accuracy

    if snapshot:
        model = load_checkpoint_model(snapshot[0])
        loaded = {name: OptimMethod(OptimMethod.load(path), "float") for name, path in snapshot[1].items()}
        done = optim_method_state(next(iter(loaded.values()))).get("epoch", 1) - 1
        log.info("resuming from %s after epoch %d", snapshot[0], done)
    else:
        model = build_lstm(
            n_features,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout,
            seed=config.seed,
            kind=config.lstm,
            input_gradient=False,
        )
        done = 0

    def optim_methods(batch_size: int, iterations_per_epoch: int):
        if snapshot:
            made = loaded if config.optimizer == "lars" else next(iter(loaded.values()))
            plan = optim.learning_rate_plan(config, batch_size=batch_size, iterations_per_epoch=iterations_per_epoch)
        else:
            made, plan = optim.make_optim_methods(
                model, config, batch_size=batch_size, iterations_per_epoch=iterations_per_epoch
            )
        log.info(
            "%s, batch %d, %d iterations per epoch: learning rate %.4g -> %.4g over %d warm-up iterations, then %s",
            config.optimizer,
            batch_size,
            iterations_per_epoch,
            plan["start"],
            plan["peak"],
            plan["warmup_iterations"],
            config.schedule,
        )
        return made

    progress: list[EpochProgress] = []

    def logged(fitting: Fitting) -> EpochProgress:
        def checkpointed() -> int:
            newest = max(_snapshots(spark, checkpoint_dir), default=None)
            return 0 if newest is None else _snapshot_epoch(newest, fitting.iterations_per_epoch)

        progress.append(
            EpochProgress(
                fitting.train_summary,
                fitting.val_summary,
                iterations_per_epoch=fitting.iterations_per_epoch,
                first_epoch=done + 1,
                last_epoch=config.epochs,
                samples_per_epoch=fitting.n_train,
                checkpointed=checkpointed,
            )
        )
        return progress[0]

    fitting = fit(
        spark,
        model,
        train,
        shape=(length, n_features),
        criterion=ClassNLLCriterion(weights=np.asarray(config.class_weights, dtype=np.float32)),
        optim_method=optim_methods,
        epochs=config.epochs,
        batch_size=config.batch_size,
        engine=config.engine,
        validation=validation,
        methods=[Top1Accuracy(), Loss(ClassNLLCriterion()), extension.binary_auc("roc"), extension.binary_auc("pr")],
        summary_dir=run.summaries,
        app_name="lstm",
        checkpoint_dir=checkpoint_dir,
        clip_value=config.clip_value,
        clip_norm=config.clip_norm,
        around=logged,
        samples=samples,
    )
    # From the newest checkpoint: when BigDL recovers from a lost executor it replaces the optimisers by ones
    # loaded from the snapshot, and the objects held here stop counting.
    optim_method = fitting.optim_method
    newest = latest_checkpoint(spark, checkpoint_dir)
    if newest is not None:
        optim_method = OptimMethod(OptimMethod.load(next(iter(newest[1].values()))), "float")
    state = optim_method_state(optim_method)
    epochs = progress[0].epochs()
    model, kept = fitting.model, state["epoch"] - 1
    if config.keep_epoch == "best_val_loss":
        losses = {epoch: values["Loss"] for epoch, values in epochs.items() if values.get("Loss") is not None}
        best = min(losses, key=lambda epoch: (losses[epoch], -epoch)) if losses else kept
        if best != kept:
            model = load_checkpoint_model(epoch_checkpoint(spark, checkpoint_dir, best, fitting.iterations_per_epoch))
            log.info("kept epoch %d of %d: the lowest validation loss, %.4g", best, kept, losses[best])
            kept = best
    train_summary = fitting.train_summary
    return TrainResult(
        model=model,
        epochs=state["epoch"] - 1,
        kept_epoch=kept,
        iterations=state["neval"] - 1,
        batch_size=fitting.batch_size,
        train_loss=[(int(step), float(value)) for step, value, _ in train_summary.read_scalar("Loss")],
        validation={
            **{
                name: [
                    (values["step"], values[tag]) for _, values in sorted(epochs.items()) if values.get(tag) is not None
                ]
                for name, tag in BY_ITERATION.items()
            },
            **{
                name: [(epoch, values[tag]) for epoch, values in sorted(epochs.items()) if values.get(tag) is not None]
                for name, tag in BY_EPOCH.items()
            },
        },
        learning_rate=optim.learning_rate_plan(
            config, batch_size=fitting.batch_size, iterations_per_epoch=fitting.iterations_per_epoch
        ),
        epoch_seconds=progress[0].epoch_seconds(epochs),
        train_seconds=progress[0].train_seconds(epochs),
        learning_rates=[(int(step), abs(float(value))) for step, value, _ in train_summary.read_scalar("LearningRate")],
    )


# training.json's validation curves and the ValidationSummary tags they come from: BigDL's own by iteration, as
# its summaries have them, the others by epoch.
BY_ITERATION = {"Top1Accuracy": "Top1Accuracy", "Loss": "Loss"}
BY_EPOCH = {"roc_auc": "RocAuc", "pr_auc": "PrAuc", "log_loss": "Loss"}
VALIDATION_TAGS = ("Top1Accuracy", "Loss", "RocAuc", "PrAuc")


class EpochProgress:
    """Logs each epoch while `optimize()` runs, from BigDL's summaries (read every few seconds), once its
    checkpoint is written (so that a run killed after the line resumes after that epoch).

    As a context manager around the one `optimize()` call; afterwards `epochs()` gives every epoch the
    summaries hold ({epoch: {tag: value, "step": iteration, "time": wall-clock seconds}}; an epoch validated
    twice, by a run that died and the run that resumed it, keeps the later) and `epoch_seconds(epochs)` this call's.
    """

    def __init__(
        self,
        train_summary,
        val_summary,
        *,
        iterations_per_epoch: int,
        first_epoch: int,
        last_epoch: int,
        samples_per_epoch: int,
        checkpointed: Callable[[], int],
        interval_s: float = 2.0,
    ):
        self.train_summary, self.val_summary = train_summary, val_summary
        self.iterations_per_epoch, self.first_epoch, self.last_epoch = iterations_per_epoch, first_epoch, last_epoch
        self.samples_per_epoch, self.checkpointed, self.interval_s = samples_per_epoch, checkpointed, interval_s
        self.logged = first_epoch - 1
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="epoch-progress", daemon=True)

    def __enter__(self) -> EpochProgress:
        self.started = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self._try_log(final=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._try_log(final=False)

    def _try_log(self, *, final: bool) -> None:
        """Progress lines are a courtesy: a summary being written or a listing failing never stops training."""
        try:
            self._log_new()
        except Exception:
            log.log(
                logging.WARNING if final else logging.DEBUG,
                "epoch progress: summaries not readable",
                exc_info=not final,
            )

    def epochs(self) -> dict[int, dict[str, Any]]:
        latest: dict[tuple[int, str], tuple[float, int, float | None]] = {}
        for tag in VALIDATION_TAGS:
            for step, value, wall in self.val_summary.read_scalar(tag):
                epoch = max(int(round(int(step) / self.iterations_per_epoch)), 1)
                if (epoch, tag) not in latest or float(wall) >= latest[epoch, tag][0]:
                    latest[epoch, tag] = (float(wall), int(step), None if math.isnan(float(value)) else float(value))
        out: dict[int, dict[str, Any]] = {}
        for (epoch, tag), (wall, step, value) in latest.items():
            values = out.setdefault(epoch, {"step": step, "time": wall})
            values[tag] = value
            values["time"] = max(values["time"], wall)
        return out

    def epoch_seconds(self, epochs: dict[int, dict[str, Any]]) -> list[float]:
        """Wall seconds of each epoch of this call (from `epochs()`), its validation included."""
        ends = [
            values["time"]
            for epoch, values in sorted(epochs.items())
            if epoch >= self.first_epoch and values["time"] >= self.started
        ]
        return [round(end - start, 3) for start, end in zip([self.started, *ends[:-1]], ends)]

    def train_seconds(self, epochs: dict[int, dict[str, Any]]) -> list[float]:
        """Wall seconds of each epoch of this call without its validation: from the previous epoch's validation
        (or the call's start) to the summary of the epoch's last iteration. (DistriOptimizer writes that summary
        after validating: there the figure includes the validation.)"""
        walls = {int(step): float(wall) for step, _, wall in self.train_summary.read_scalar("Loss")}
        ours = [
            (epoch, values["time"])
            for epoch, values in sorted(epochs.items())
            if epoch >= self.first_epoch and values["time"] >= self.started
        ]
        out, start = [], self.started
        for epoch, validated in ours:
            out.append(round(min(walls.get(epoch * self.iterations_per_epoch, validated), validated) - start, 3))
            start = validated
        return out

    def _log_new(self) -> None:
        epochs = self.epochs()
        checkpointed = self.checkpointed()
        train_loss = None  # read once, when an epoch is to be logged
        while self.logged < checkpointed and self._complete(epochs.get(self.logged + 1)):
            self.logged += 1
            values = epochs[self.logged]
            if train_loss is None:
                train_loss = [(int(step), v) for step, v, _ in self.train_summary.read_scalar("Loss")]
            losses = [v for step, v in train_loss if step <= self.logged * self.iterations_per_epoch]
            done = self.logged - self.first_epoch + 1
            elapsed = values["time"] - self.started
            log.info(
                "epoch %d/%d: train loss %.4f, val accuracy %.3f, val loss %.4f, val ROC-AUC %s, PR-AUC %s; "
                "%.0f samples/s, %.0f s left",
                self.logged,
                self.last_epoch,
                float(losses[-1]) if losses else float("nan"),
                values["Top1Accuracy"],
                values["Loss"],
                _fmt(values["RocAuc"]),
                _fmt(values["PrAuc"]),
                self.samples_per_epoch * done / max(elapsed, 1e-9),
                elapsed / done * (self.last_epoch - self.logged),
            )

    def _complete(self, values: dict | None) -> bool:
        """All of an epoch's validation, recorded by this call."""
        return values is not None and values["time"] >= self.started and all(tag in values for tag in VALIDATION_TAGS)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def optim_method_state(optim_method) -> dict[str, int]:
    """The optimiser's epoch and iteration counters (BigDL counts from 1: the next ones to run)."""
    if isinstance(optim_method, dict):
        optim_method = next(iter(optim_method.values()))
    state = optim_method.value.state()
    out = {}
    for key in ("epoch", "neval"):
        value = state.get(key)
        if value.isDefined():
            out[key] = int(value.get())
    return out


def load_checkpoint_model(path: str):
    """A model snapshot written by `set_checkpoint` (Java-serialised: load only from trusted paths)."""
    from bigdl.dllib.nn.layer import Layer
    from bigdl.dllib.utils.common import callBigDlFunc

    return Layer.of(callBigDlFunc("float", "loadBigDL", path))


def save_model(spark: SparkSession, model, uri: str) -> None:
    """Save in BigDL's format (definition + weights), any Hadoop URI, through a temporary file (`fs.atomic_file`)."""
    with fs.atomic_file(spark, uri) as tmp:
        model.saveModel(tmp, over_write=True)


def load_model(uri: str):
    from bigdl.dllib.nn.layer import Model

    return Model.loadModel(uri)


def predict_scores(model, windows: DataFrame, *, length: int, n_features: int, batch_size: int) -> DataFrame:
    """`device_id, window_end, label, score`, the score being the predicted probability of failure."""
    stage = BigDLModel(model, featureShape=[length, n_features], batchSize=batch_size)
    scored = stage.transform(windows.select("device_id", "window_end", "label", "features"))
    return scored.select("device_id", "window_end", "label", "score")
