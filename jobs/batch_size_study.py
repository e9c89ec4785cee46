"""Batch-size study on the telemetry windows: batch sizes x optimiser arms; a table and a plot in the run folder.

python -m jobs.batch_size_study --windows OUT/windows --out OUT/study
"""

from __future__ import annotations

import logging
import sys

from pipelines.cli import job_parser, report, run
from pipelines.context import get_or_create
from pipelines.io import fs
from pipelines.models import study
from pipelines.telemetry import sources

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0], sections=("study", "train"))
parser.add_argument("--windows", required=True, help="folder written by build_windows (train, val and test splits)")
parser.add_argument("--out", required=True, help="study folder: results/ (study.md, .csv, .json, .png) and runs/")
parser.reads("windows")
parser.writes("out", "runs", mode="append")
parser.writes("out", "results")


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="batch_size_study")
    spec = sources.read_window_spec(spark, args.windows)
    splits = {name: sources.read_windows(spark, args.windows, name) for name in ("train", "val", "test")}
    if config.study.max_val_windows:
        splits["val"] = study.fixed_sample(splits["val"], config.study.max_val_windows)
    splits = {name: df.cache() for name, df in splits.items()}
    rows = study.run_study(
        spark,
        splits["train"],
        splits["val"],
        splits["test"],
        base=config.train,
        study=config.study,
        length=spec.length,
        n_features=spec.n_features,
        work_dir=f"{args.out}/runs",
    )
    fs.write_local_dir(spark, f"{args.out}/results", lambda local: study.render(rows, local))
    report(study.markdown_table(rows))
    report(f"table and plot: {args.out}/results/study.md, study.png")


if __name__ == "__main__":
    sys.exit(run(main, parser))
