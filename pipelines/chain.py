"""The telemetry chain's steps, one function each (`<step>_run`, named as in `pipelines.registry`, taking its paths
as keywords): what the jobs, the demos and the schedulers run. The model's steps work on a run folder (`RunLayout`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.config import PipelineConfig
from pipelines.context import total_cores
from pipelines.errors import InputError
from pipelines.evaluation.alerting import best_on_validation, fit_policy, load_policy, policies_by_model, run_alerting
from pipelines.evaluation.baseline import probability_scores
from pipelines.evaluation.calibration import Calibrator, fit_calibrator, fit_calibrators
from pipelines.evaluation.evaluate import evaluate_models
from pipelines.evaluation.peers import window_summary
from pipelines.evaluation.report import write_report
from pipelines.evaluation.scoring import (
    Scorer,
    bigdl_scorer,
    score_fleet,
    spark_ml_scorer,
    stack_scorer,
    write_risk_table,
)
from pipelines.evaluation.stacking import STACK, stacked_scores, with_model
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.models.fit import cached_samples
from pipelines.models.lstm import average_members
from pipelines.models.train import TrainResult, latest_checkpoint, load_model, predict_scores, save_model, train_lstm
from pipelines.telemetry import sources
from pipelines.telemetry.ingest import ingest
from pipelines.telemetry.schema import WindowSpec
from pipelines.telemetry.windows import build_window_dataset

log = logging.getLogger(__name__)


def ingest_run(
    spark: SparkSession, config: PipelineConfig, *, input: str, out: str, devices: str | None = None
) -> dict:
    """Validate, quarantine and resample raw telemetry into `out`; returns its counts (counts.json)."""
    return ingest(spark, input, out, config.ingest, devices_uri=devices)


def windows_run(spark: SparkSession, config: PipelineConfig, *, clean: str, failures: str, out: str) -> dict:
    """Split, normalise, window and label the clean readings into `out` with its spec; returns the counts."""
    readings = sources.read_parquet(spark, clean, "clean readings")
    events = sources.read_failures(spark, failures)
    windows, stats = build_window_dataset(
        readings, events, config=config.windows, interval_minutes=config.ingest.interval_minutes
    )
    return sources.write_windows(spark, windows, stats, out, spec=WindowSpec.of(config))


def train_run(spark: SparkSession, config: PipelineConfig, *, windows: str, run_dir: str, resume: bool = False) -> dict:
    """Train on the train split, validate on val, save the model; returns the training record (training.json).

    With `train.members` K > 1, K LSTMs are trained (seeds seed, seed + 100, ...; each in members/<k>/ with its own
    checkpoints, model and record) and the model saved is their average (`average_members`); with `resume`, members
    already saved are loaded and the first unfinished one resumes from its checkpoints."""
    run = RunLayout(run_dir)
    spec = sources.read_window_spec(spark, windows)
    train = sources.read_windows(spark, windows, "train")
    val = sources.read_windows(spark, windows, "val")
    members = config.train.members

    def member(index: int, member_run: RunLayout, member_resume: bool, samples=None) -> tuple[Any, dict]:
        seed = config.train.seed
        if members > 1:
            seed = None if seed is None else seed + 100 * index
            log.info("ensemble member %d of %d (seed %s)", index + 1, members, seed)
        result = train_lstm(
            spark,
            train,
            val,
            config=dataclasses.replace(config.train, seed=seed),
            length=spec.length,
            n_features=spec.n_features,
            run_dir=member_run.root,
            resume=member_resume,
            samples=samples,
        )
        return result.model, {**training_record(result), "seed": seed}

    if members == 1:
        model, record = member(0, run, resume)
    else:
        trained = []
        with ExitStack() as releases:
            samples = None  # one cache of the rows as Samples for every member trained
            for index in range(members):
                member_run = RunLayout(run.path(f"{RunLayout.MEMBERS}/{index}"))
                if resume and fs.exists(spark, member_run.model) and fs.exists(spark, member_run.training):
                    trained.append((load_model(member_run.model), fs.read_json(spark, member_run.training)))
                    log.info("ensemble member %d of %d: trained before, loaded", index + 1, members)
                    continue
                if samples is None:
                    shape = (spec.length, spec.n_features)
                    samples = releases.enter_context(cached_samples(train, val, shape=shape, cores=total_cores(spark)))
                started = resume and latest_checkpoint(spark, member_run.checkpoints) is not None
                member_model, member_record = member(index, member_run, started, samples)
                save_model(spark, member_model, member_run.model)
                fs.write_json(spark, member_run.training, member_record)
                trained.append((member_model, member_record))
        model = average_members([m for m, _ in trained])
        record = {**trained[0][1], "members": [r for _, r in trained]}
    save_model(spark, model, run.model)
    fs.write_json(spark, run.training, record)
    log.info("trained %d epochs (%d iterations); model in %s", record["epochs"], record["iterations"], run.model)
    return record


def training_record(result: TrainResult) -> dict:
    """training.json's content for one trained LSTM."""
    return {
        "epochs": result.epochs,
        "kept_epoch": result.kept_epoch,
        "iterations": result.iterations,
        "batch_size": result.batch_size,
        "train_loss": result.train_loss,
        "validation": result.validation,
        "learning_rate": result.learning_rate,
    }


def evaluate_run(
    spark: SparkSession, config: PipelineConfig, *, windows: str, run_dir: str, failures: str | None = None
) -> dict:
    """Evaluate every model, fit each one's alert policy on the validation split, put the chosen model's policy in
    force (`alerting.model`; `best`: the best on validation), write predictions and alerting, and merge the figures
    into the run's metrics.json (`report_run` renders them)."""
    run = RunLayout(run_dir)
    if not fs.exists(spark, run.model):
        raise InputError(f"no trained model at {run.model}: run train_lstm first")
    model = load_model(run.model)
    spec = sources.read_window_spec(spark, windows)
    metrics, predictions, others = evaluate_models(
        model,
        sources.read_windows(spark, windows, "train"),
        sources.read_windows(spark, windows, "test"),
        spec=spec,
        config=config,
    )
    with fs.atomic_output(spark, run.predictions) as tmp:
        predictions.write.partitionBy("model").parquet(tmp)
    predictions.unpersist()
    val = sources.read_windows(spark, windows, "val")
    if config.evaluate.peers:  # summarised once for every peer
        val = window_summary(val, length=spec.length, n_features=spec.n_features).cache()
    lstm_val = predict_scores(
        model, val, length=spec.length, n_features=spec.n_features, batch_size=config.evaluate.batch_size
    )
    keys = ["device_id", "window_end", "label"]
    scored_val = {"lstm": lstm_val, **{name: probability_scores(m, val) for name, m in others.items()}}
    val_scores = with_model(scored_val, [*keys, "score"]).cache()  # every model's, computed once
    failure_list = sources.read_failures(spark, failures) if failures else None
    test = spark.read.parquet(run.predictions)
    calibrators = fit_calibrators(val_scores, method=config.alerting.calibration)
    validation, stack_val = val_scores, None
    if config.alerting.stack:  # its members calibrated first, its policy then fitted with theirs
        stack_val = stacked_scores(val_scores, calibrators, keys=keys).withColumn("model", F.lit(STACK)).cache()
        stack_test = stacked_scores(test, calibrators, keys=keys).withColumn("model", F.lit(STACK))
        calibrators[STACK] = fit_calibrator(stack_val, method=config.alerting.calibration)
        validation = val_scores.unionByName(stack_val)
        test = test.unionByName(stack_test, allowMissingColumns=True).cache()
    policies, at_policy = policies_by_model(
        validation, test, config.alerting, failures=failure_list, calibrators=calibrators
    )
    chosen = best_on_validation(at_policy) if config.alerting.model == "best" else config.alerting.model
    if chosen not in policies:
        raise InputError(f"alerting.model {chosen!r} is not one of the evaluated models {sorted(policies)}")
    log.info(
        "alert policy in force: %s's (%s)", chosen, "best on validation" if config.alerting.model == "best" else "set"
    )

    def model_record(name: str) -> dict[str, str]:
        uri = run.model if name == "lstm" else _save_spark_model(spark, others[name], run.path(f"model/{name}"))
        return {
            "model": uri.removeprefix(run.root.rstrip("/") + "/"),
            "kind": "bigdl" if name == "lstm" else "spark_ml",
            "output_kind": "log_probabilities" if name == "lstm" else "probability",
        }

    if chosen == STACK:
        members_record = [
            {"name": name, **model_record(name), "calibration": policies[name].calibrator.to_dict()}
            for name in scored_val
        ]
        record: dict[str, Any] = {"kind": STACK, "output_kind": "probability", "members": members_record}
    else:
        record = model_record(chosen)
    scoring = {
        **record,
        "length": spec.length,
        "interval_minutes": spec.interval_minutes,
        "features": list(spec.features),
        "normalization": sources.read_normalization(spark, windows),
        "horizon_days": spec.horizon_days,
        "min_history": spec.min_history,
    }
    block = run_alerting(
        spark,
        policies[chosen],
        test.where(F.col("model") == chosen),
        run_dir,
        config,
        scoring=scoring,
        failures=failure_list,
    )
    metrics["alerting"] = {"model": chosen, **block}
    metrics["at_policy"] = at_policy
    val.unpersist()
    val_scores.unpersist()
    if stack_val is not None:
        stack_val.unpersist()
    test.unpersist()
    run.merge_metrics(spark, metrics)
    return metrics


def _save_spark_model(spark: SparkSession, model: PipelineModel, uri: str) -> str:
    with fs.atomic_output(spark, uri) as tmp:
        model.save(tmp)
    return uri


def score_run(
    spark: SparkSession,
    config: PipelineConfig,
    *,
    clean: str,
    run_dir: str,
    out: str | None = None,
    policy: str | None = None,
    scorer: Callable[[dict[str, Any]], Scorer] | None = None,
    scored_by: str | None = None,
    refit_on: str | None = None,
) -> dict:
    """Score every device's latest window with the run's alert policy into `out` (default: the run's risk/).

    `scorer` builds the scorer from the policy's scoring record (window length, features, model); default: the
    policy's own model (the run's BigDL LSTM, or the Spark ML model whose policy is in force), and `scored_by` its
    kind. `refit_on`: a windows folder whose validation split calibrates the policy again for that scorer.
    Returns the risk table's summary."""
    run = RunLayout(run_dir)
    policy_uri = policy or run.policy
    if not fs.exists(spark, policy_uri):
        raise InputError(f"no alert policy at {policy_uri}: run evaluate_telemetry (or the demo) first")
    alert_policy, scoring = load_policy(spark, policy_uri)
    score = (scorer or _run_model_scorer(spark, run, config))(scoring)
    if refit_on:
        val = sources.read_windows(spark, refit_on, "val")
        scored = score(val.select("device_id", "window_end", "features"))
        labels = val.select("device_id", "window_end", "label")
        alert_policy = fit_policy(scored.join(labels, ["device_id", "window_end"]), config.alerting)
    elif scorer is not None:
        log.warning("the policy was fitted for the run's own model: use --refit-on WINDOWS for another model")
    readings = sources.read_parquet(spark, clean, "clean readings")
    scored_by = scored_by or scoring.get("kind", "bigdl")
    table = score_fleet(readings, score, alert_policy, scoring, scored_by=scored_by)
    return write_risk_table(spark, table, out or run.risk, policy=alert_policy)


def _run_model_scorer(
    spark: SparkSession, run: RunLayout, config: PipelineConfig
) -> Callable[[dict[str, Any]], Scorer]:
    def build(scoring: dict[str, Any]) -> Scorer:
        kind = scoring.get("kind", "bigdl")
        if kind == STACK:
            return stack_scorer(
                {
                    m["name"]: (build({**scoring, **m}), Calibrator.from_dict(m["calibration"]))
                    for m in scoring["members"]
                }
            )
        model_uri = run.resolve(scoring.get("model", RunLayout.MODEL))
        if not fs.exists(spark, model_uri):
            raise InputError(f"no {'BigDL' if kind == 'bigdl' else 'Spark ML'} model at {model_uri}")
        if kind == "spark_ml":
            return spark_ml_scorer(PipelineModel.load(model_uri))
        return bigdl_scorer(
            load_model(model_uri),
            length=int(scoring["length"]),
            n_features=len(scoring["features"]),
            batch_size=config.evaluate.batch_size,
        )

    return build


def report_run(spark: SparkSession, config: PipelineConfig, *, run_dir: str, notes: Sequence[str] = ()) -> str:
    """Render the run's report (report/index.html) from its metrics; returns its URI."""
    if not fs.exists(spark, RunLayout(run_dir).metrics):
        raise InputError(f"no metrics.json in {run_dir}: evaluate the run first")
    return write_report(spark, run_dir, notes=notes)
