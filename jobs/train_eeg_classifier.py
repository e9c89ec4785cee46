"""Train the BigDL report classifier (abnormal study, seizure recorded) and compare it with the rules.

    EEG_DEID_KEY=... python -m jobs.train_eeg_classifier --archive hdfs:///eeg/train_archive \
        --eval-archive hdfs:///eeg/unseen_archive --out hdfs:///models/eeg_report_classifier
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from pipelines import context
from pipelines.cli import job_parser, run
from pipelines.config import PipelineConfig, as_dict
from pipelines.eeg import classifier, curate, deid, sources
from pipelines.io import fs

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(
        __doc__.strip().splitlines()[0],
        sections=("eeg.classifier", "eeg.deid"),
        notes="The classifier learns from de-identified text only, so the job needs the de-identification key (eeg.deid).",
    )
    parser.add_argument(
        "--archive", required=True, help="labelled archive: ARCHIVE/reports and ARCHIVE/truth/reports.jsonl"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="model URI (classifier.model, vocabulary.json, classifier.json); replaced atomically",
    )
    parser.add_argument(
        "--eval-archive",
        default=None,
        help="held-out labelled archive (another seed): classifier vs rules go to classifier.json",
    )
    parser.reads("archive")
    parser.reads("eval_archive")
    parser.writes("out")
    return parser


def labelled_texts(spark, archive: str, key: bytes, max_shift_days: int):
    read = sources.read_reports(spark, f"{archive}/reports")
    texts = curate.deidentified_texts(read.rows, key=key, max_shift_days=max_shift_days)
    labels = classifier.truth_labels(spark, f"{archive}/truth/reports.jsonl")
    return read, texts.join(labels, "report_id").cache()


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    key = deid.load_key(config.eeg.deid)
    cfg = config.eeg.classifier
    spark = context.get_or_create(master=args.master, app_name="train-eeg-classifier")
    read, train = labelled_texts(spark, args.archive.rstrip("/"), key, config.eeg.deid.max_shift_days)
    started = time.time()
    model, vocabulary = classifier.train(train, cfg)
    summary = {
        "config": as_dict(cfg),
        "training": {"reports": train.count(), "seconds": round(time.time() - started, 1), "read": read.counts()},
    }
    train.unpersist()
    read.unpersist()
    if args.eval_archive:
        archive = args.eval_archive.rstrip("/")
        read_eval, held_out = labelled_texts(spark, archive, key, config.eeg.deid.max_shift_days)
        scored = classifier.predict(model, vocabulary, held_out, cfg)
        rules = classifier.rule_predictions(read_eval.rows)  # the rules read the raw text, as in extraction
        summary["evaluation"] = classifier.compare(
            scored, rules, held_out.select("report_id", *classifier.TASKS), cfg.threshold
        )
        for task in classifier.TASKS:
            e = summary["evaluation"][task]
            log.info("%s: classifier F1 %s, rules F1 %s", task, e["classifier"]["f1"], e["rules"]["f1"])
        held_out.unpersist()
        read_eval.unpersist()
    with fs.atomic_output(spark, args.out) as tmp:
        model.saveModel(f"{tmp}/classifier.model", over_write=True)
        fs.write_text(spark, f"{tmp}/vocabulary.json", json.dumps(vocabulary))
        fs.write_json(spark, f"{tmp}/classifier.json", summary)
    log.info("report classifier written to %s", args.out)


parser = build_parser()

if __name__ == "__main__":
    sys.exit(run(main, parser))
