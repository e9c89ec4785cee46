"""The EEG archive generator: layout, determinism, truth, real EDF files, and that the readers account for all."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from jobs.generate_eeg_archive import main, parser
from pipelines.cli import run
from pipelines.config import EegGenerateConfig, defaults
from pipelines.eeg import edf, sources
from pipelines.eeg.generate import archive_plan, generate_archive, render_report

CONFIG = defaults(
    EegGenerateConfig,
    patients=14,
    seed=5,
    edf_seconds=1,
    sample_rates=[128],
    broken_edf_files=5,
    broken_reports=2,
    multi_session_fraction=0.4,
    ltm_fraction=0.4,
)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.name != "manifest.json"
    }


@pytest.fixture(scope="module")
def archive(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("eeg") / "archive"
    summary = generate_archive(spark, CONFIG, str(out), num_partitions=2)
    return out, summary


def test_layout_truth_and_counts(archive):
    out, summary = archive
    assert (out / "_SUCCESS").exists() and not list(out.parent.glob("archive._tmp-*"))
    edfs = [p for p in (out / "edf").rglob("*") if p.is_file() and p.suffix.lower() == ".edf"]
    reports = list((out / "reports").glob("*.txt"))
    assert len(edfs) == summary["edf_files"] and len(reports) == summary["reports"]
    assert any(p.parent != out / "edf" for p in edfs)
    links = list(csv.DictReader((out / "truth" / "links.csv").open()))
    assert len(links) == summary["links"] > 0
    names = {p.name for p in edfs}
    assert all(row["edf_file"] in names and (out / "reports" / row["report_id"]).exists() for row in links)
    truth = [json.loads(line) for line in (out / "truth" / "reports.jsonl").read_text().splitlines()]
    assert sorted(t["report_id"] for t in truth) == sorted(p.name for p in reports)
    files = list(csv.DictReader((out / "truth" / "edf_files.csv").open()))
    assert len(files) == len(edfs) and sum(f["fate"] != "ok" for f in files) == 5
    assert summary["broken_reports"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["links"] == summary["links"] and manifest["seed"] == 5


def test_readers_account_for_every_file_as_the_truth_says(spark, archive):
    out, summary = archive
    headers = sources.read_edf_headers(spark, str(out / "edf"))
    fates = {row["edf_file"]: row["fate"] for row in csv.DictReader((out / "truth" / "edf_files.csv").open())}
    assert headers.read == summary["edf_files"] == headers.parsed + headers.quarantined
    assert {r["file_name"]: r["detail"].split(":")[0] for r in headers.quarantine.collect()} == {
        k: v if v != "empty_file" else "no bytes" for k, v in fates.items() if v != "ok"
    }
    rows = headers.rows.collect()
    assert all(fates[r["file_name"]] == "ok" for r in rows)
    assert {r["edf_type"] for r in rows} >= {"EDF", "EDF+C"}
    reports = sources.read_reports(spark, str(out / "reports"))
    truth = {
        json.loads(line)["report_id"]: json.loads(line)["fate"]
        for line in (out / "truth" / "reports.jsonl").read_text().splitlines()
    }
    assert {r["file_name"]: r["reason"] for r in reports.quarantine.collect()} == {
        k: {"not_utf8": "not_text", "empty_report": "empty"}[v] for k, v in truth.items() if v != "ok"
    }
    assert reports.parsed == sum(v == "ok" for v in truth.values())
    headers.unpersist()
    reports.unpersist()


def test_same_seed_same_bytes_other_seed_other_archive(spark, archive, tmp_path):
    out, _ = archive
    again = tmp_path / "again"
    generate_archive(spark, CONFIG, str(again), num_partitions=3)
    assert _digest(again) == _digest(out)
    other = tmp_path / "other"
    generate_archive(spark, replace(CONFIG, seed=6), str(other), num_partitions=2)
    assert set(_digest(other)) != set(_digest(out))


def test_reports_have_the_promised_shape():
    config = replace(CONFIG, patients=60, typo_rate=0.0, missing_field_rate=0.0)
    plans = archive_plan(config)
    texts = [render_report(p, s, config) for p in plans for s in p.sessions if s.report_name]
    assert all({"description", "impression", "clinical_history"} <= set(t["sections"]) for _, t in texts)
    assert any(t["study_type"] != "routine" and len(t["study_dates"]) == 2 for _, t in texts)  # multi-day monitoring
    assert any(t["events"] for _, t in texts) and any(t["seizure_count"] > 1 for _, t in texts)
    assert any("-year-old" in t for t, _ in texts) and any(" year old " in t for t, _ in texts)
    # The real reports' variants: day-by-day monitoring, combined and other headings, every date form.
    assert any(t["monitoring_days"] and t["events"] for _, t in texts) and any("EVENT TIME" in t for t, _ in texts)
    assert any("IMPRESSION/CLINICAL CORRELATION" in t for t, _ in texts) and any(
        "REASON FOR STUDY" in t for t, _ in texts
    )
    assert any(re.search(r"^[A-Z]+  [A-Z ]+:", t, re.M) for t, _ in texts) and any(
        "ABNORMAL DISCHARGES" in t for t, _ in texts
    )
    dates = "\n".join(
        line for t, _ in texts for line in t.splitlines() if "Long-Term Monitoring" in line or "Stud" in line
    )
    assert re.search(r"\b\d{1,2}/\d{1,2}/\d{2}\b", dates) and re.search(r"\b\d{4}-\d{2}-\d{2}\b", dates)
    assert re.search(r"[A-Z][a-z]+day, ", dates) and re.search(r"\b\d{1,2}\.\d{1,2}\.\d{4}\b", dates)
    multi = [p for p in plans if len(p.sessions) > 1]
    assert any((b.start - a.start).days < 8 for p in multi for a, b in zip(p.sessions, p.sessions[1:]))
    styles = {f.header_style for p in plans for s in p.sessions for f in s.files}
    assert styles == {"edfplus", "tuh", "legacy", "anonymized"}


def test_generated_headers_hold_what_the_plan_says(archive):
    out, _ = archive
    plans = archive_plan(CONFIG)
    plan = next(p for p in plans for s in p.sessions for f in s.files if f.header_style == "edfplus" and not f.broken)
    session = next(s for s in plan.sessions if s.files)
    path = next((out / "edf").rglob(session.files[0].name))
    data = path.read_bytes()
    h = edf.parse_header(data, file_size=len(data))
    assert h.start == session.files[0].start and h.patient.sex == plan.sex
    assert h.patient.birthdate == plan.birthdate
    assert len(h.data_signals) >= 21 and h.sample_rate(h.signals[0]) == 128


def test_job_in_process_help_and_bad_config(spark, tmp_path, capsys):
    text = parser.format_help()
    assert "--out" in text and "patients=120" in text
    assert run(main, parser, ["--out", str(tmp_path / "x"), "--set", "eeg.generate.patients=abc"]) == 2
    assert run(main, parser, ["--out", str(tmp_path / "x"), "--set", "eeg.generate.typo_rate=2"]) == 2
    assert not (tmp_path / "x").exists()
    assert run(main, parser, ["--out", str(tmp_path / "ok"), "--env", "ci", "--set", "eeg.generate.patients=3"]) == 0
    assert (tmp_path / "ok" / "_SUCCESS").exists()
