"""Train the BigDL LSTM on Parquet windows; checkpoints every epoch, --resume continues.

python -m jobs.train_lstm --windows OUT/windows --run-dir OUT/run
"""

from __future__ import annotations

import logging
import sys

from pipelines.chain import train_run
from pipelines.cli import job_parser, run
from pipelines.context import get_or_create
from pipelines.layout import RunLayout

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0], sections=("windows", "train"))
parser.add_argument("--windows", required=True, help="folder written by build_windows")
parser.add_argument("--run-dir", required=True, help="run folder: checkpoints/, summaries/, model/, training.json")
parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
parser.reads("windows")
parser.writes("run_dir", RunLayout.CHECKPOINTS, RunLayout.SUMMARIES, RunLayout.MEMBERS, mode="append")
parser.writes("run_dir", RunLayout.MODEL, RunLayout.TRAINING, mode="overwrite")


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="train_lstm")
    train_run(spark, config, windows=args.windows, run_dir=args.run_dir, resume=args.resume)


if __name__ == "__main__":
    sys.exit(run(main, parser))
