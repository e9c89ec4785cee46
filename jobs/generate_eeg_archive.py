"""Generate a synthetic EEG archive: EDF/EDF+ recordings, TUH-style reports and the true links between them.

python -m jobs.generate_eeg_archive --out hdfs:///data/eeg_archive --set eeg.generate.patients=500
spark-submit jobs/generate_eeg_archive.py --out file:///tmp/eeg --env ci --set eeg.generate.seed=202
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines import context
from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig
from pipelines.eeg.generate import generate_archive

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(
        __doc__.strip().splitlines()[0],
        sections=("eeg.generate",),
        notes="Writes edf/, reports/, truth/ (links.csv, edf_files.csv, reports.jsonl) and manifest.json.",
    )
    parser.add_argument(
        "--out", required=True, help="output URI (hdfs://, file://, s3a:// or a path); replaced atomically"
    )
    parser.add_argument(
        "--partitions", type=int, default=None, help="patient slices rendered in parallel; none: default parallelism"
    )
    parser.writes("out")
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    spark = context.get_or_create(master=args.master, app_name="generate-eeg-archive")
    cfg = config.eeg.generate
    log.info("generating %d patients (seed %d) into %s", cfg.patients, cfg.seed, args.out)
    summary = generate_archive(spark, cfg, args.out, num_partitions=args.partitions)
    log.info(
        "done: %d EDF files (%d broken), %d reports (%d broken), %d links",
        summary["edf_files"],
        summary["broken_edf_files"],
        summary["reports"],
        summary["broken_reports"],
        summary["links"],
    )


parser = build_parser()

if __name__ == "__main__":
    sys.exit(run(main, parser))
