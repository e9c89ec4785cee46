"""The one training loop of every BigDL model here: Samples built and cached on the executors from the rows, one
`optimize()` by the chosen engine, validation, TensorBoard summaries and checkpoints when asked for."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from pipelines.context import total_cores
from pipelines.io import fs
from pipelines.models import extension

log = logging.getLogger(__name__)


@dataclass
class Fitting:
    """One fit: its sizes, optimiser(s) and summaries (for a hook around `optimize()`), and the trained model once
    done."""

    batch_size: int
    n_train: int
    iterations_per_epoch: int
    optim_method: Any = None
    train_summary: Any = None
    val_summary: Any = None
    model: Any = None


def round_batch_size(requested: int, cores: int) -> int:
    """BigDL needs the batch size to be a multiple of the total cores; round to the nearest one."""
    rounded = max(cores, int(round(requested / cores)) * cores)
    if rounded != requested:
        log.warning("batch size %d is not a multiple of the %d cores; using %d", requested, cores, rounded)
    return rounded


@contextmanager
def cached_samples(
    train: DataFrame, validation: DataFrame | None, *, shape: Sequence[int], cores: int
) -> Iterator[tuple[Any, Any, int]]:
    """(training Samples, validation Samples or None, number of training rows): built from `features` and `label`
    on the executors and cached (the training rows dealt into one partition per core), released afterwards."""
    started = time.time()
    train_samples = extension.samples(train.repartition(cores), shape=tuple(shape)).cache()
    val_samples = extension.samples(validation, shape=tuple(shape)).cache() if validation is not None else None
    try:
        n_train = train_samples.count()
        n_val = val_samples.count() if val_samples is not None else 0
        log.info(
            "%d training and %d validation rows cached as Samples on the executors in %.1f s",
            n_train,
            n_val,
            time.time() - started,
        )
        yield train_samples, val_samples, n_train
    finally:
        train_samples.unpersist(False)
        if val_samples is not None:
            val_samples.unpersist(False)


def fit(
    spark: SparkSession,
    model,
    train: DataFrame,
    *,
    shape: Sequence[int],
    criterion,
    optim_method: Any,
    epochs: int,
    batch_size: int,
    engine: str = "barrier",
    validation: DataFrame | None = None,
    methods: Sequence[Any] = (),
    summary_dir: str | None = None,
    app_name: str = "model",
    checkpoint_dir: str | None = None,
    clip_value: float = 0.0,
    clip_norm: float = 0.0,
    around: Callable[[Fitting], AbstractContextManager] | None = None,
    samples: tuple[Any, Any, int] | None = None,
) -> Fitting:
    """Train `model` on the rows' `features` (`shape`) and `label` until epoch `epochs` (counted by the optimiser's
    state, so a resumed one goes on where it stopped).

    `optim_method`: a BigDL OptimMethod, {submodule: OptimMethod}, or a function of (batch size, iterations per
    epoch) that gives one (for schedules). With `validation`, `methods` run after every epoch; with `summary_dir`,
    BigDL's Train/ValidationSummary go to `summary_dir/app_name`; with `checkpoint_dir`, a snapshot every epoch.
    `around` makes a context to run `optimize()` in (progress logging, say). `samples`: what `cached_samples` gives
    for `train` and `validation`, cached once for several fits (released by the caller), instead of a cache of this
    fit's own.
    """
    from bigdl.dllib.optim.optimizer import EveryEpoch, MaxEpoch, SeveralIteration, TrainSummary, ValidationSummary
    from bigdl.dllib.utils.common import callBigDlFunc

    cores = total_cores(spark)
    batch = round_batch_size(batch_size, cores)
    prepared = nullcontext(samples) if samples else cached_samples(train, validation, shape=shape, cores=cores)
    with prepared as (train_samples, val_samples, n_train):
        if n_train < batch:
            raise ValueError(f"batch size {batch} is larger than the {n_train} training rows")
        fitting = Fitting(batch_size=batch, n_train=n_train, iterations_per_epoch=max(math.ceil(n_train / batch), 1))
        method = optim_method(batch, fitting.iterations_per_epoch) if callable(optim_method) else optim_method
        fitting.optim_method = method
        optimizer = extension.optimizer(
            engine,
            model=model,
            criterion=criterion,
            optim_method=method,
            end_trigger=MaxEpoch(epochs),
            samples=train_samples,
            batch_size=batch,
        )
        if clip_value > 0:
            optimizer.set_gradclip_const(-clip_value, clip_value)
        if clip_norm > 0:
            optimizer.set_gradclip_l2norm(clip_norm)
        if val_samples is not None and methods:
            extension.set_validation(
                optimizer, samples=val_samples, trigger=EveryEpoch(), batch_size=batch, methods=list(methods)
            )
        if summary_dir:
            if fs.exists(spark, f"{summary_dir}/{app_name}"):
                # BigDL names an event file by the second its writer opened it: a writer opened within the same
                # second as an earlier run's (a quick resume) would overwrite that run's history.
                time.sleep(1.05 - time.time() % 1)
            fitting.train_summary = TrainSummary(log_dir=summary_dir, app_name=app_name)
            if not isinstance(method, dict):  # BigDL records no rate for per-layer optimisers (LARS)
                fitting.train_summary.set_summary_trigger("LearningRate", SeveralIteration(1))
            optimizer.set_train_summary(fitting.train_summary)
            if val_samples is not None and methods:
                fitting.val_summary = ValidationSummary(log_dir=summary_dir, app_name=app_name)
                optimizer.set_val_summary(fitting.val_summary)
        if checkpoint_dir:
            # BigDL's Python set_checkpoint creates the folder with os.makedirs; the JVM handles any Hadoop URI.
            # Each optimize() call nests a timestamped folder.
            fs.mkdirs(spark, checkpoint_dir)
            callBigDlFunc("float", "setCheckPoint", optimizer.value, EveryEpoch(), checkpoint_dir, False)
        with around(fitting) if around else nullcontext():
            fitting.model = optimizer.optimize()
    return fitting
