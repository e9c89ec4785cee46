"""The extraction job in-process: de-identified findings, counts that add up, metrics against the truth, no key no run."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date

import pytest

from jobs.extract_eeg_reports import main, parser
from pipelines.cli import run
from tests.fixtures.eeg.archives import UNSEEN, archive

KEY = "extract-test-key-0123456789"


@pytest.fixture(scope="module")
def extracted(spark, tmp_path_factory):
    root = archive(spark, tmp_path_factory, UNSEEN)
    out = tmp_path_factory.mktemp("extract") / "findings"
    mp = pytest.MonkeyPatch()
    mp.setenv("EEG_DEID_KEY", KEY)
    try:
        code = run(
            main,
            parser,
            ["--reports", str(root / "reports"), "--out", str(out), "--truth", str(root / "truth" / "reports.jsonl")],
        )
    finally:
        mp.undo()
    assert code == 0
    return root, out


def test_counts_add_up_and_outputs_are_complete(spark, extracted):
    root, out = extracted
    counts = json.loads((out / "counts.json").read_text())
    truth = [json.loads(line) for line in (root / "truth" / "reports.jsonl").read_text().splitlines()]
    assert counts["read"] == len(truth) == counts["written"] + counts["quarantined"]
    assert counts["quarantined_by_reason"] == {"empty": 1, "not_text": 1, "extraction_failed": 0}
    assert counts["files"]["listed"] == counts["read"] and counts["files"]["quarantined"] == 2
    findings = spark.read.parquet(str(out / "findings"))
    assert findings.count() == counts["written"] == spark.read.json(str(out / "findings_json")).count()
    assert spark.read.parquet(str(out / "reports_deid")).count() == counts["written"]
    quarantine = spark.read.parquet(str(out / "quarantine")).collect()
    assert len(quarantine) == 2 and all(r["file_name"].startswith("h_") for r in quarantine)
    assert (out / "_SUCCESS").exists()


def test_dates_are_shifted_consistently_per_patient(spark, extracted):
    root, out = extracted
    truth = {t["report_id"]: t for t in map(json.loads, (root / "truth" / "reports.jsonl").read_text().splitlines())}
    rows = spark.read.parquet(str(out / "findings")).collect()
    shifts_by_patient = defaultdict(set)
    keys_by_patient = defaultdict(set)
    for row in rows:
        t = truth[row["report_id"]]
        keys_by_patient[t["patient"]].add(row["patient_key"])
        if row["study_dates"] and row["study_dates"] and len(row["study_dates"]) == len(t["study_dates"]):
            for shifted, real in zip(row["study_dates"], t["study_dates"]):
                shifts_by_patient[row["patient_key"]].add((date.fromisoformat(real) - date.fromisoformat(shifted)).days)
    assert shifts_by_patient and all(len(s) == 1 and 1 <= next(iter(s)) <= 365 for s in shifts_by_patient.values())
    assert len({next(iter(s)) for s in shifts_by_patient.values()}) > 5  # per-patient, not one global shift
    # A patient's reports share one key when they state the record number (most do).
    assert sum(len(k) == 1 for k in keys_by_patient.values()) >= 0.8 * len(keys_by_patient)
    assert all(r["age"] is None or r["age"] <= 90 for r in rows)


def test_metrics_against_the_truth(extracted):
    _, out = extracted
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reports_evaluated"] > 40
    fields = metrics["fields"]
    assert fields["sections"]["recall"] > 0.95 and fields["medications"]["precision"] > 0.95


def test_no_key_no_run(extracted, tmp_path, monkeypatch, caplog):
    root, _ = extracted
    monkeypatch.delenv("EEG_DEID_KEY", raising=False)
    code = run(main, parser, ["--reports", str(root / "reports"), "--out", str(tmp_path / "x")])
    assert code == 2 and "no de-identification key" in caplog.text
    assert not (tmp_path / "x").exists()


def test_help_lists_defaults():
    text = " ".join(parser.format_help().split())
    assert "--reports" in text and "--truth" in text and "eeg.deid: key_env=EEG_DEID_KEY" in text
