"""Pairing end to end: models trained on one seed, evaluated and run as a job on an archive of another seed."""

from __future__ import annotations

import json

import pytest

from jobs.pair_eeg import main, parser
from pipelines.cli import run
from tests.fixtures.eeg.archives import UNSEEN, archive, pairing_model

KEY = "pairing-test-key-0123456789"


@pytest.fixture(scope="module")
def paired(spark, tmp_path_factory):
    model = pairing_model(spark, tmp_path_factory)
    root = archive(spark, tmp_path_factory, UNSEEN)
    out = tmp_path_factory.mktemp("pairing") / "pairs"
    mp = pytest.MonkeyPatch()
    mp.setenv("EEG_DEID_KEY", KEY)
    try:
        code = run(
            main,
            parser,
            [
                "--reports",
                str(root / "reports"),
                "--edf",
                str(root / "edf"),
                "--model",
                str(model),
                "--out",
                str(out),
                "--truth",
                str(root / "truth" / "links.csv"),
                "--compare",
            ],
        )
    finally:
        mp.undo()
    assert code == 0
    return model, root, out


def test_both_models_meet_the_bar_on_an_unseen_seed(paired):
    model, _, out = paired
    summary = json.loads((model / "pairing.json").read_text())
    assert summary["training"]["links"] > 100 and (model / "bigdl.model").exists() and (model / "logreg").is_dir()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "bigdl" and metrics["blocking_recall"] >= 0.99
    for name, m in (("bigdl", metrics), ("logreg", metrics["comparison"]["logreg"])):
        print(f"\npairing on the unseen seed, {name}: precision {m['precision']}, recall {m['recall']}")
        assert m["precision"] >= 0.99 and m["recall"] >= 0.97, (name, m)


def test_the_job_writes_pairs_unpaired_and_counts_that_add_up(spark, paired):
    _, root, out = paired
    counts = json.loads((out / "counts.json").read_text())
    manifest = json.loads((root / "manifest.json").read_text())
    reports, files = counts["reports"], counts["edf_files"]
    assert reports["read"] == manifest["reports"] and files["read"] == manifest["edf_files"]
    for side in (reports, files):
        assert side["read"] == side["parsed"] + side["quarantined"]
        assert side["parsed"] == side["paired"] + side["unpaired"]
    assert files["tolerated"] and all(n > 0 for n in files["tolerated"].values())  # the generator's header oddities
    pairs = spark.read.parquet(str(out / "pairs"))
    assert pairs.count() == counts["pairs"] == files["paired"] and set(pairs.columns) == {
        "report_id",
        "edf_file",
        "probability",
        "model",
    }
    assert pairs.where("probability < 0.5").count() == 0
    unpaired = spark.read.parquet(str(out / "unpaired_reports")).collect()
    assert len(unpaired) == reports["unpaired"] and all(r["reason"] for r in unpaired)
    # Reports without recordings in the archive are unpaired, not paired to something else.
    assert reports["unpaired_by_reason"].get("no_candidate", 0) >= manifest["reports_without_files"] - 1
    unpaired_files = spark.read.parquet(str(out / "unpaired_files"))
    assert unpaired_files.count() == files["unpaired"] >= manifest["files_without_reports"]
    quarantine = spark.read.parquet(str(out / "quarantine"))
    assert quarantine.count() == reports["quarantined"] + files["quarantined"]


def test_help_and_missing_key(tmp_path, monkeypatch, caplog):
    text = " ".join(parser.format_help().split())
    assert "--model" in text and "threshold=0.5" in text and "--via" in text
    monkeypatch.delenv("EEG_DEID_KEY", raising=False)
    args = ["--reports", str(tmp_path), "--edf", str(tmp_path), "--model", str(tmp_path), "--out", str(tmp_path / "o")]
    assert run(main, parser, args) == 2 and "no de-identification key" in caplog.text
    assert not (tmp_path / "o").exists()
