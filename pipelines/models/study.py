"""Batch-size study: the same LSTM trained at several batch sizes under several optimiser arms.

Each arm is a set of `train.*` settings; each run reports test PR-AUC and the epochs and wall time it
took to reach a target validation loss. `render` writes the table (Markdown, CSV, JSON) and the plot.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.config import StudyConfig, TrainConfig
from pipelines.evaluation.metrics import binary_metrics
from pipelines.io import fs
from pipelines.models.train import predict_scores, train_lstm

log = logging.getLogger(__name__)

ROW_FILE = "row.json"


def arm_settings(study: StudyConfig, arm: str) -> dict:
    """The `train.*` settings of an arm; the rates are the ones tuned at `study.base_batch_size`."""
    sgd = {"learning_rate": study.sgd_learning_rate, "momentum": study.momentum}
    warm = {"lr_scaling": "linear", "warmup_epochs": study.warmup_epochs, "schedule": "poly"}
    arms = {
        "sgd_fixed": {"optimizer": "sgd", **sgd},
        "sgd_linear_warmup": {"optimizer": "sgd", **sgd, **warm},
        "lars_linear_warmup": {
            "optimizer": "lars",
            **sgd,
            **warm,
            "learning_rate": study.lars_learning_rate,
            "lars_trust": study.lars_trust,
        },
        "adam_fixed": {"optimizer": "adam", "learning_rate": study.adam_learning_rate},
    }
    if arm not in arms:
        raise ValueError(f"study.arms: unknown arm {arm!r} (known: {', '.join(arms)})")
    return arms[arm]


def fixed_sample(windows: DataFrame, n: int) -> DataFrame:
    """The same `n` windows on every run: the ones with the smallest hash of (device, window end)."""
    return windows.orderBy(F.xxhash64("device_id", "window_end")).limit(n)


def run_study(
    spark: SparkSession,
    train: DataFrame,
    validation: DataFrame,
    test: DataFrame,
    *,
    base: TrainConfig,
    study: StudyConfig,
    length: int,
    n_features: int,
    work_dir: str,
) -> list[dict]:
    """Train every (arm, batch size) for `study.epochs` epochs; one result row each.

    Each row is also kept in `work_dir/<arm>-<batch size>/row.json`; a rerun of a study that was
    interrupted takes the rows already there and trains only the rest.
    """
    rows = []
    for arm in study.arms:
        for batch_size in study.batch_sizes:
            row_uri = f"{work_dir}/{arm}-{batch_size}/{ROW_FILE}"
            if fs.exists(spark, row_uri):
                log.info("study: %s at batch %d already done (%s)", arm, batch_size, row_uri)
                rows.append(fs.read_json(spark, row_uri))
                continue
            config = dataclasses.replace(
                base,
                **arm_settings(study, arm),
                base_batch_size=study.base_batch_size,
                batch_size=batch_size,
                epochs=study.epochs,
            )
            log.info("study: %s at batch %d", arm, batch_size)
            started = time.perf_counter()
            result = train_lstm(
                spark,
                train,
                validation,
                config=config,
                length=length,
                n_features=n_features,
                run_dir=f"{work_dir}/{arm}-{batch_size}",
            )
            seconds = time.perf_counter() - started
            scores = binary_metrics(
                predict_scores(result.model, test, length=length, n_features=n_features, batch_size=result.batch_size)
            )
            rows.append(
                {
                    "arm": arm,
                    "batch_size": result.batch_size,
                    "iterations": result.iterations,
                    "peak_learning_rate": result.learning_rate["peak"],
                    "val_loss": [round(v, 5) for _, v in result.validation["log_loss"]],
                    "epoch_seconds": [round(s, 2) for s in result.epoch_seconds],
                    "test_pr_auc": scores["pr_auc"],
                    "test_roc_auc": scores["roc_auc"],
                    "wall_s": round(seconds, 1),
                }
            )
            fs.write_json(spark, row_uri, rows[-1])
    return add_time_to_target(rows, study.target_val_loss)


def add_time_to_target(rows: list[dict], target: float | None) -> list[dict]:
    """Epochs and training seconds until the validation loss first reaches `target`.

    Without a target, it is 5 % above the best validation loss of the first row (the reference run).
    """
    if target is None:
        target = round(min(rows[0]["val_loss"]) * 1.05, 5)
    for row in rows:
        reached = next((i for i, loss in enumerate(row["val_loss"]) if loss <= target), None)
        row["target_val_loss"] = target
        row["epochs_to_target"] = None if reached is None else reached + 1
        row["seconds_to_target"] = None if reached is None else round(sum(row["epoch_seconds"][: reached + 1]), 1)
    return rows


COLUMNS = (
    "arm",
    "batch_size",
    "peak_learning_rate",
    "iterations",
    "test_pr_auc",
    "test_roc_auc",
    "best_val_loss",
    "epochs_to_target",
    "seconds_to_target",
    "wall_s",
)


def table_rows(rows: list[dict]) -> list[dict]:
    return [{**row, "best_val_loss": min(row["val_loss"])} for row in rows]


def markdown_table(rows: list[dict]) -> str:
    def cell(value) -> str:
        if value is None:
            return "not reached"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in table_rows(rows)]
    target = rows[0]["target_val_loss"] if rows else None
    return "\n".join(lines) + f"\n\nTarget validation loss: {target}\n"


def render(rows: list[dict], out_dir: str | Path) -> None:
    """study.md, study.csv, study.json and study.png (test PR-AUC and epochs to target against batch size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    (out / "study.md").write_text(markdown_table(rows), encoding="utf-8")
    (out / "study.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    with open(out / "study.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table_rows(rows))

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for arm in dict.fromkeys(row["arm"] for row in rows):
        mine = [row for row in rows if row["arm"] == arm]
        sizes = [row["batch_size"] for row in mine]
        left.plot(sizes, [row["test_pr_auc"] for row in mine], marker="o", label=arm)
        right.plot(sizes, [row["epochs_to_target"] or float("nan") for row in mine], marker="o", label=arm)
    for ax, title in ((left, "test PR-AUC"), (right, "epochs to target validation loss (missing: not reached)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("global batch size")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "study.png", dpi=100)
    plt.close(fig)
