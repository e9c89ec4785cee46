"""Extract structured, de-identified findings from EEG report files (one row per report, Parquet and JSON).

EEG_DEID_KEY=... python -m jobs.extract_eeg_reports --reports hdfs:///eeg/reports --out hdfs:///research/eeg_findings
spark-submit jobs/extract_eeg_reports.py --reports file:///tmp/eeg/reports --out file:///tmp/findings --truth file:///tmp/eeg/truth/reports.jsonl
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines import context
from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig
from pipelines.eeg import curate, deid, sources
from pipelines.io import fs
from pipelines.io.quarantine import write_quarantine

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(
        __doc__.strip().splitlines()[0],
        sections=("eeg.deid",),
        notes="Writes findings/ (Parquet), findings_json/ (JSON lines), reports_deid/ (de-identified text), quarantine/ "
        "(file names as keyed hashes), counts.json and, with --truth, metrics.json. Needs the de-identification key "
        "(eeg.deid); the job refuses to run without it.",
    )
    parser.add_argument("--reports", required=True, help="URI of the report files (*.txt, searched recursively)")
    parser.add_argument("--out", required=True, help="output URI; replaced atomically")
    parser.add_argument("--truth", default=None, help="generator truth (truth/reports.jsonl): also write metrics.json")
    parser.add_argument("--partitions", type=int, default=None, help="report slices; none: as read")
    parser.reads("reports")
    parser.reads("truth")
    parser.writes("out")
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    key = deid.load_key(config.eeg.deid)  # before anything is read: no key, no run
    spark = context.get_or_create(master=args.master, app_name="extract-eeg-reports")
    read = sources.read_reports(spark, args.reports, partitions=args.partitions)
    try:
        curated = curate.curate_reports(read.rows, key=key, max_shift_days=config.eeg.deid.max_shift_days).cache()
        outcome = {
            r["failed"]: int(r["count"])
            for r in curated.groupBy(curated["reason"].isNotNull().alias("failed")).count().collect()
        }
        failed, written = outcome.get(True, 0), outcome.get(False, 0)
        counts = read.counts()
        counts["quarantined_by_reason"]["extraction_failed"] = failed
        counts.update(written=written, quarantined=read.quarantined + failed)
        if counts["read"] != counts["written"] + counts["quarantined"]:
            raise RuntimeError(f"counts do not add up: {counts}")
        with fs.atomic_output(spark, args.out) as tmp:
            findings = curate.findings_frame(curated)
            findings.write.parquet(f"{tmp}/findings")
            findings.coalesce(1).write.json(f"{tmp}/findings_json")
            curate.deid_text_frame(curated).write.parquet(f"{tmp}/reports_deid")
            quarantine = read.quarantine.unionByName(curate.failed_frame(curated))
            write_quarantine(curate.protect_quarantine(quarantine, key), f"{tmp}/quarantine")
            fs.write_json(spark, f"{tmp}/counts.json", counts)
            if args.truth:
                metrics = curate.extraction_metrics(read.rows, curate.read_truth(spark, args.truth))
                fs.write_json(spark, f"{tmp}/metrics.json", metrics)
                log.info(
                    "extraction recall per field: %s", {k: v["recall"] for k, v in sorted(metrics["fields"].items())}
                )
        log.info(
            "reports: %d read, %d written, %d quarantined %s",
            counts["read"],
            counts["written"],
            counts["quarantined"],
            counts["quarantined_by_reason"],
        )
    finally:
        read.unpersist()
        if "curated" in locals():
            curated.unpersist()


parser = build_parser()

if __name__ == "__main__":
    sys.exit(run(main, parser))
