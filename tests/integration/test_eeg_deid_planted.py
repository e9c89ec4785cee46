"""Planted identifiers in reports, EDF headers and file names: none reaches any output of the jobs, or any log."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from jobs import extract_eeg_reports, pair_eeg
from pipelines.cli import run
from pipelines.eeg import deid, edf
from tests.fixtures.eeg.archives import pairing_model
from tests.unit.test_eeg_deid import PLANTED, planted_strings

KEY = "planted-test-key-0123456789abcdef"


def _edf(patient: str, start: datetime) -> bytes:
    sig = edf.SignalHeader("EEG FP1-REF", "", "uV", -3276.8, 3276.7, -32768, 32767, "", 64)
    recording = f"Startdate {edf.edfplus_date(start.date())} X X X"
    return edf.build_edf(
        patient=patient,
        recording=recording,
        start=start,
        record_duration=1.0,
        signals=[(sig, np.zeros(128, dtype=np.int16))],
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    shutil.copytree(PLANTED / "reports", root / "reports")
    (root / "edf").mkdir()
    (root / "edf" / "00044172_s001_t000.edf").write_bytes(
        _edf("4417-2209 F 14-MAR-1948 Quimby_Zelda", datetime(2011, 3, 3, 10, 2))
    )
    (root / "edf" / "EEG_44172209.edf").write_bytes(_edf("X X X X", datetime(2011, 3, 3, 10, 30)))
    (root / "edf" / "Krumholz_T.edf").write_bytes(_edf("KRUMHOLZ, THADDEUS 009876543 M", datetime(2010, 1, 12, 9, 0)))
    (root / "edf" / "quimby_cut.edf").write_bytes(_edf("X X X X", datetime(2011, 3, 3, 11, 0))[:300])
    return root


def _output_text(spark, root: Path) -> str:
    """Everything a reader of the outputs can see: paths, text files and the rows of every Parquet folder."""
    chunks = [str(p.relative_to(root)) for p in root.rglob("*")]
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".txt"):
            chunks.append(path.read_text(errors="replace"))
    for folder in {p.parent for p in root.rglob("*.parquet")}:
        chunks.extend(str(row.asDict(recursive=True)) for row in spark.read.parquet(str(folder)).collect())
    return "\n".join(chunks)


def test_no_planted_identifier_survives_into_outputs_or_logs(
    spark, inputs, tmp_path, tmp_path_factory, monkeypatch, caplog, capfd
):
    model = pairing_model(spark, tmp_path_factory)
    monkeypatch.setenv("EEG_DEID_KEY", KEY)
    # The test key must move every planted date well away from the others, or a shifted date could equal one.
    for identity in ("mrn:44172209", "mrn:9876543"):
        assert deid.shift_days(KEY.encode(), identity, 365) >= 3
    caplog.set_level(logging.DEBUG, logger="pipelines")
    caplog.set_level(logging.DEBUG, logger="jobs")
    extracted, paired = tmp_path / "findings", tmp_path / "pairs"
    assert (
        run(
            extract_eeg_reports.main,
            extract_eeg_reports.parser,
            ["--reports", str(inputs / "reports"), "--out", str(extracted)],
        )
        == 0
    )
    assert (
        run(
            pair_eeg.main,
            pair_eeg.parser,
            [
                "--reports",
                str(inputs / "reports"),
                "--edf",
                str(inputs / "edf"),
                "--model",
                str(model),
                "--out",
                str(paired),
                "--set",
                "eeg.pairing.model=logreg",
            ],
        )
        == 0
    )
    captured = capfd.readouterr()
    logs = "\n".join([caplog.text, captured.out, captured.err])

    outputs = _output_text(spark, extracted) + _output_text(spark, paired)
    # The outputs are not empty: the clinical content is there, under pseudonyms.
    findings = spark.read.parquet(str(extracted / "findings")).collect()
    assert len(findings) == 2 and {r["age"] for r in findings} == {62, 90}
    assert {r["study_type"] for r in findings} == {"routine", "video"}
    days = [d for r in findings for d in r["monitoring_days"]]  # read from the de-identified text
    assert len(days) == 2 and any("[NAME]" in e["description"] for d in days for e in d["events"])
    assert spark.read.parquet(str(paired / "pairs")).count() >= 1
    assert "h_" in outputs  # identifying file names were replaced by keyed hashes
    for planted in planted_strings():
        assert planted.lower() not in outputs.lower(), f"planted identifier in an output: {planted!r}"
        assert planted.lower() not in logs.lower(), f"planted identifier in the logs: {planted!r}"
    assert "reports: 4 read, 2 written, 2 quarantined" in caplog.text  # the logs still say what happened
