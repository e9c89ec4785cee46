"""Train the BigDL LSTM on Parquet windows; checkpoints every epoch, --resume continues.

    python -m jobs.train_lstm --windows OUT/windows --run-dir OUT/run
"""
from __future__ import annotations

import logging
import sys

from pipelines.cli import job_parser, run
from pipelines.context import get_or_create
from pipelines.io import fs
from pipelines.models.train import save_model, train_lstm
from pipelines.telemetry import sources

log = logging.getLogger(__name__)

MODEL_DIR = "model"
MODEL_FILE = "lstm.bigdl"
TRAINING_FILE = "training.json"

parser = job_parser(__doc__.splitlines()[0], sections=("windows", "train"))
parser.add_argument("--windows", required=True, help="folder written by build_windows")
parser.add_argument("--run-dir", required=True, help="run folder: checkpoints/, summaries/, model/, training.json")
parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
parser.reads("windows")
parser.writes("run_dir", "checkpoints", "summaries", mode="append")
parser.writes("run_dir", f"{MODEL_DIR}/{MODEL_FILE}", TRAINING_FILE, mode="overwrite")


def train_from_windows(spark, windows_root: str, run_dir: str, config, *, resume: bool = False) -> dict:
    """Train on the train split, validate on val, save the model; returns the training record."""
    result = train_lstm(
        spark,
        sources.read_windows(spark, windows_root, "train"),
        sources.read_windows(spark, windows_root, "val"),
        config=config.train,
        length=config.windows.length,
        n_features=len(config.windows.features),
        run_dir=run_dir,
        resume=resume,
    )
    save_model(result.model, f"{run_dir}/{MODEL_DIR}/{MODEL_FILE}")
    record = {
        "epochs": result.epochs,
        "iterations": result.iterations,
        "batch_size": result.batch_size,
        "train_loss": result.train_loss,
        "validation": result.validation,
        "learning_rate": result.learning_rate,
    }
    fs.write_json(spark, f"{run_dir}/{TRAINING_FILE}", record)
    log.info("trained %d epochs (%d iterations); model in %s/%s", result.epochs, result.iterations, run_dir, MODEL_DIR)
    return record


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="train_lstm")
    train_from_windows(spark, args.windows, args.run_dir, config, resume=args.resume)


if __name__ == "__main__":
    sys.exit(run(main, parser))
