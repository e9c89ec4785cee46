"""Train the EEG report-recording pairing classifiers (BigDL MLP and Spark ML logistic regression).

    python -m jobs.train_eeg_pairing --archive hdfs:///eeg/train_archive --out hdfs:///models/eeg_pairing \
        --eval-archive hdfs:///eeg/unseen_archive
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from pipelines import context
from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig, as_dict
from pipelines.eeg import pairing
from pipelines.io import fs

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.strip().splitlines()[0], sections=("eeg.pairing",))
    parser.add_argument(
        "--archive", required=True, help="labelled archive: ARCHIVE/reports, ARCHIVE/edf and ARCHIVE/truth/links.csv"
    )
    parser.add_argument(
        "--out", required=True, help="model URI (bigdl.model, logreg/, pairing.json); replaced atomically"
    )
    parser.add_argument(
        "--eval-archive",
        default=None,
        help="a second labelled archive (another seed): precision/recall of both models go to pairing.json",
    )
    parser.add_argument("--augment-copies", type=int, default=3, help="masked copies of each training pair")
    parser.reads("archive")
    parser.reads("eval_archive")
    parser.writes("out")
    return parser


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    spark = context.get_or_create(master=args.master, app_name="train-eeg-pairing")
    cfg = config.eeg.pairing
    archive = args.archive.rstrip("/")
    prepared = pairing.prepare(spark, f"{archive}/reports", f"{archive}/edf", cfg, wide=True)
    links = pairing.read_links(spark, f"{archive}/truth/links.csv")
    labelled = pairing.label(prepared.features, links).cache()
    started = time.time()
    mlp, logreg = pairing.fit_models(spark, labelled, cfg, augment_copies=args.augment_copies)
    train_s = round(time.time() - started, 1)
    summary = {
        "features": list(pairing.FEATURES),
        "config": as_dict(cfg),
        "training": {
            "candidates": labelled.count(),
            "links": labelled.where("label = 1").count(),
            "augment_copies": args.augment_copies,
            "seconds": train_s,
            "reports": prepared.reports.counts(),
            "edf_files": prepared.headers.counts(),
        },
    }
    labelled.unpersist()
    prepared.unpersist()
    if args.eval_archive:
        summary["evaluation"] = evaluate_models(spark, args.eval_archive.rstrip("/"), cfg, mlp, logreg)
    with fs.atomic_output(spark, args.out) as tmp:
        pairing.save_models(tmp, mlp, logreg)
        fs.write_json(spark, f"{tmp}/pairing.json", summary)
    log.info("pairing models written to %s (training %.1f s)", args.out, train_s)


def evaluate_models(spark, archive: str, cfg, mlp, logreg) -> dict:
    """Pairs, then precision/recall, for each model on another labelled archive."""
    prepared = pairing.prepare(spark, f"{archive}/reports", f"{archive}/edf", cfg)
    links = pairing.read_links(spark, f"{archive}/truth/links.csv")
    out = {}
    for name, scored in (
        ("bigdl", pairing.predict_bigdl(mlp, prepared.features)),
        ("logreg", pairing.predict_logreg(logreg, prepared.features)),
    ):
        pairs, unpaired_reports, unpaired_files = pairing.assign(
            scored, prepared.report_facts, prepared.file_facts, cfg
        )
        metrics = pairing.pairing_metrics(pairs, links, prepared)
        metrics["unpaired_reports"] = {
            r["reason"]: r["count"] for r in unpaired_reports.groupBy("reason").count().collect()
        }
        metrics["unpaired_files"] = {
            r["reason"]: r["count"] for r in unpaired_files.groupBy("reason").count().collect()
        }
        out[name] = metrics
        log.info("%s on %s: precision %s, recall %s", name, archive, metrics["precision"], metrics["recall"])
    prepared.unpersist()
    return out


parser = build_parser()

if __name__ == "__main__":
    sys.exit(run(main, parser))
