"""Pair EEG reports with their EDF recordings; write pairs, unpaired reports and unpaired files with reasons.

    EEG_DEID_KEY=... python -m jobs.pair_eeg --reports hdfs:///eeg/reports --edf hdfs:///eeg/edf \
        --model hdfs:///models/eeg_pairing --out hdfs:///eeg/pairing
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import functions as F

from pipelines import context
from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig
from pipelines.eeg import curate, deid, pairing, sources
from pipelines.io import fs
from pipelines.io.quarantine import write_quarantine

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(
        __doc__.strip().splitlines()[0],
        sections=("eeg.pairing", "eeg.deid"),
        notes="Writes pairs/, unpaired_reports/, unpaired_files/ (Parquet), quarantine/, counts.json and, with --truth, "
        "metrics.json. File names that carry identifiers are replaced by keyed hashes, so the job needs the "
        "de-identification key (eeg.deid).",
    )
    parser.add_argument("--reports", required=True, help="URI of the report files (*.txt, searched recursively)")
    parser.add_argument("--edf", required=True, help="URI of the EDF files (*.edf, searched recursively)")
    parser.add_argument("--model", required=True, help="models written by jobs.train_eeg_pairing")
    parser.add_argument("--out", required=True, help="output URI; replaced atomically")
    parser.add_argument("--truth", default=None, help="true links (truth/links.csv): also write metrics.json")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="with --truth: also pair with the other model (bigdl/logreg) and put its metrics beside",
    )
    parser.add_argument(
        "--via",
        choices=["driver", "spark"],
        default="driver",
        help="read EDF headers through the driver's Hadoop FileSystem (header bytes only) or on the executors",
    )
    for name in ("reports", "edf", "model", "truth"):
        parser.reads(name)
    parser.writes("out")
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    key = deid.load_key(config.eeg.deid)
    cfg = config.eeg.pairing
    spark = context.get_or_create(master=args.master, app_name="pair-eeg")
    scorer = pairing.load_scorer(args.model.rstrip("/"), cfg.model)
    prepared = pairing.prepare(spark, args.reports, args.edf, cfg, via=args.via)
    try:
        scored = scorer(prepared.features).cache()
        pairs, unpaired_reports, unpaired_files = pairing.assign(
            scored, prepared.report_facts, prepared.file_facts, cfg
        )
        pairs, unpaired_reports, unpaired_files = (f.cache() for f in (pairs, unpaired_reports, unpaired_files))
        counts = _counts(prepared, pairs, unpaired_reports, unpaired_files)
        report_ids, file_ids = (f.cache() for f in pairing.safe_ids(prepared, key))

        def hide(frame, column, ids):
            return frame.join(ids, column).drop(column).withColumnRenamed("safe_id", column)

        with fs.atomic_output(spark, args.out) as tmp:
            hide(hide(pairs, "report_id", report_ids), "edf_file", file_ids).select(
                "report_id", "edf_file", "probability"
            ).withColumn("model", F.lit(cfg.model)).write.parquet(f"{tmp}/pairs")
            hide(unpaired_reports, "report_id", report_ids).select(
                "report_id", "reason", "best_probability"
            ).write.parquet(f"{tmp}/unpaired_reports")
            hide(unpaired_files, "edf_file", file_ids).select("edf_file", "reason", "best_probability").write.parquet(
                f"{tmp}/unpaired_files"
            )
            quarantine = prepared.reports.quarantine.withColumn("input", F.lit("report")).unionByName(
                prepared.headers.quarantine.withColumn("input", F.lit("edf"))
            )
            write_quarantine(curate.protect_quarantine(quarantine, key), f"{tmp}/quarantine")
            fs.write_json(spark, f"{tmp}/counts.json", counts)
            if args.truth:
                links = pairing.read_links(spark, args.truth)
                metrics = pairing.pairing_metrics(pairs, links, prepared)
                metrics["model"] = cfg.model
                if args.compare:
                    other = "logreg" if cfg.model == "bigdl" else "bigdl"
                    other_pairs, _, _ = pairing.assign(
                        pairing.load_scorer(args.model.rstrip("/"), other)(prepared.features),
                        prepared.report_facts,
                        prepared.file_facts,
                        cfg,
                    )
                    metrics["comparison"] = {other: pairing.pairing_metrics(other_pairs, links, prepared)}
                    log.info(
                        "pairing (%s): precision %s, recall %s",
                        other,
                        metrics["comparison"][other]["precision"],
                        metrics["comparison"][other]["recall"],
                    )
                fs.write_json(spark, f"{tmp}/metrics.json", metrics)
                log.info(
                    "pairing (%s): precision %s, recall %s over %s links",
                    cfg.model,
                    metrics["precision"],
                    metrics["recall"],
                    metrics["links"],
                )
        log.info("pairs: %d; reports %s; EDF files %s", counts["pairs"], counts["reports"], counts["edf_files"])
    finally:
        prepared.unpersist()


def _counts(prepared, pairs, unpaired_reports, unpaired_files) -> dict:
    paired_reports = pairs.select("report_id").distinct().count()
    n_pairs = pairs.count()
    reports = prepared.reports.counts()
    files = prepared.headers.counts()
    reports.update(paired=paired_reports, unpaired_by_reason=_by_reason(unpaired_reports))
    files.update(
        paired=n_pairs,
        unpaired_by_reason=_by_reason(unpaired_files),
        tolerated=sources.tolerated_counts(prepared.headers.rows),
    )
    for side in (reports, files):
        side["unpaired"] = sum(side["unpaired_by_reason"].values())
        if side["read"] != side["parsed"] + side["quarantined"] or side["parsed"] != side["paired"] + side["unpaired"]:
            raise RuntimeError(f"counts do not add up: {side}")
    return {"pairs": n_pairs, "reports": reports, "edf_files": files}


def _by_reason(frame) -> dict:
    return dict(sorted((r["reason"], int(r["count"])) for r in frame.groupBy("reason").count().collect()))


parser = build_parser()

if __name__ == "__main__":
    sys.exit(run(main, parser))
