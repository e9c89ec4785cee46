"""Fault injection into the EEG readers (EDF headers, report files) and the extraction job: every listed file is
read or quarantined with one reason, the counts add up, and no report text or patient identifier leaves a
quarantine detail or a log line."""

from __future__ import annotations

import json
import logging
import random

import pytest

from jobs import extract_eeg_reports
from pipelines.cli import run
from pipelines.eeg import sources
from pipelines.errors import InputError
from pipelines.io import probe
from tests.faults.files import UNREADABLE_SKIP, Fault, deleted_after_listing, gz, write_batch
from tests.unit.test_eeg_edf import REAL_EDF, patch, small_edf

REAL = REAL_EDF.read_bytes()  # 65 signals: a 16,896-byte header
SMALL = small_edf()  # patient "0012345 F 02-MAY-1951 Doe_Jane Age:55", 3 records of 48 bytes

EDF_TABLE = [
    Fault("real.edf", lambda _: REAL, None),
    Fault("small.edf", lambda _: SMALL, None),
    Fault("data_cut.edf", lambda _: SMALL[:-60], None),  # the header claims 3 records, the file holds 1 and a part
    Fault("zero.edf", lambda _: b"", "empty"),
    Fault("short_header.edf", lambda _: REAL[:100], "corrupt_edf"),
    Fault("cut_header.edf", lambda _: REAL[:1000], "corrupt_edf"),
    Fault("garbage_field.edf", lambda _: patch(SMALL, 236, "abcdefgh", 8), "corrupt_edf"),
    Fault("vanishing.edf", lambda _: SMALL, "missing"),
    Fault("unreadable.edf", lambda _: SMALL, "unreadable", skip=UNREADABLE_SKIP),
]
EDF_DETAILS = {
    "short_header.edf": "truncated_header: 100 bytes",
    "cut_header.edf": "truncated_header: 1000 bytes",
    "garbage_field.edf": "corrupt_header: number of data records",
}

REPORT = "CLINICAL HISTORY: 34 year old with spells.\nIMPRESSION: Normal EEG.\n"
REPORT_TABLE = [
    Fault("good.txt", lambda _: REPORT.encode(), None),
    Fault("bom_crlf.txt", lambda _: b"\xef\xbb\xbf" + REPORT.replace("\n", "\r\n").encode(), None),
    Fault("latin1.txt", lambda _: (REPORT + "Dr. Müller").encode("latin-1"), "not_text"),
    Fault("utf16.txt", lambda _: REPORT.encode("utf-16"), "not_text"),
    Fault("nul_bytes.txt", lambda _: REPORT.encode().replace(b"34", b"3\x004"), "not_text"),
    Fault("garbage.txt", lambda _: random.Random(7).randbytes(5000), "not_text"),
    Fault("empty.txt", lambda _: b"", "empty"),
    Fault("blank.txt", lambda _: b" \r\n\n", "empty"),
    Fault("vanishing.txt", lambda _: REPORT.encode(), "missing"),
    Fault("unreadable.txt", lambda _: REPORT.encode(), "unreadable", skip=UNREADABLE_SKIP),
]
PRIVATE = ("Doe_Jane", "0012345", "spells", "Normal EEG", "Müller")


def batch(table: list[Fault]) -> list[Fault]:
    return [f for f in table if not f.skip]


def edf_batch(root):
    return write_batch(root, batch(EDF_TABLE), ".edf")


def report_batch(root):
    folder = write_batch(root, batch(REPORT_TABLE), ".txt")
    (folder / "zipped.txt.gz").write_bytes(gz(REPORT.encode())[:-10])  # reports are plain *.txt: never listed
    return folder


def assert_accounted(result: sources.ReadResult, table: list[Fault]) -> None:
    """Each file where its row says, and every count adding up."""
    fates = {c.path.rsplit("/", 1)[-1]: c.reason for c in result.checks}
    assert fates == {f.name: f.reason for f in batch(table)}
    quarantine = {r["file_name"]: r for r in result.quarantine.collect()}
    assert {n: r["reason"] for n, r in quarantine.items()} == {n: r for n, r in fates.items() if r}
    assert not any(p in (r["detail"] or "") for r in quarantine.values() for p in PRIVATE)
    files = result.counts()["files"]
    assert files["quarantined_by_reason"] == {r: sum(f.reason == r for f in batch(table)) for r in probe.FILE_REASONS}
    assert files["listed"] == len(batch(table)) == files["read"] + files["quarantined"]
    assert files["read"] == result.rows.count() == sum(f.reason is None for f in batch(table))


@pytest.mark.parametrize("via", ["driver", "spark"])
def test_every_edf_file_is_read_or_quarantined_with_its_reason(spark, tmp_path, caplog, via):
    folder = edf_batch(tmp_path / "edf")
    with deleted_after_listing(folder / "vanishing.edf"):
        result = sources.read_edf_headers(spark, str(folder), via=via)
    assert_accounted(result, EDF_TABLE)
    details = {r["file_name"]: r["detail"] for r in result.quarantine.collect()}
    assert all(details[name].startswith(start) for name, start in EDF_DETAILS.items())
    rows = {r["file_name"]: r for r in result.rows.collect()}
    assert rows["real.edf"]["n_signals"] == 65 and rows["small.edf"]["tolerated"] == []
    assert rows["data_cut.edf"]["tolerated"] == ["data_truncated"]  # read; the records present are whole
    assert not any(p in caplog.text for p in PRIVATE)
    result.unpersist()


def test_a_truncated_edf_gives_the_records_it_holds(spark, tmp_path):
    (tmp_path / "cut.edf").write_bytes(SMALL[:-60])
    signals = sources.read_signals(spark, str(tmp_path / "cut.edf"), channels=["EEG FP1-REF"], physical=False)
    assert signals["EEG FP1-REF"].tolist() == list(range(8))


def test_every_report_is_read_or_quarantined_with_its_reason(spark, tmp_path, caplog):
    folder = report_batch(tmp_path / "reports")
    with deleted_after_listing(folder / "vanishing.txt"):
        result = sources.read_reports(spark, str(folder))
    assert_accounted(result, REPORT_TABLE)
    assert {r["report_id"]: r["text"] for r in result.rows.collect()} == {"good.txt": REPORT, "bom_crlf.txt": REPORT}
    assert not any(p in caplog.text for p in PRIVATE)
    result.unpersist()


def test_nothing_readable_is_one_line_naming_the_input_and_the_counts(spark, tmp_path):
    edfs = write_batch(tmp_path / "edf", [f for f in EDF_TABLE if f.reason in ("empty", "corrupt_edf")], ".edf")
    with pytest.raises(InputError, match=f"no readable EDF files under {edfs}: 4 file.s. listed, 0 read, 4 quar"):
        sources.read_edf_headers(spark, str(edfs))


def test_extraction_job_counts_files_and_ends_in_one_line_when_nothing_is_readable(
    tmp_path, monkeypatch, capfd, caplog
):
    monkeypatch.setenv("EEG_DEID_KEY", "eeg-faults-test-key-0123456789")
    out = tmp_path / "out"
    reports = report_batch(tmp_path / "reports")
    assert (
        run(extract_eeg_reports.main, extract_eeg_reports.parser, ["--reports", str(reports), "--out", str(out)]) == 0
    )
    counts = json.loads((out / "counts.json").read_text())
    files = counts["files"]
    assert files["listed"] == len(batch(REPORT_TABLE)) == files["read"] + files["quarantined"]
    assert counts["written"] == files["read"] == 3  # vanishing.txt is read here: it stayed
    assert counts["read"] == counts["written"] + counts["quarantined"]

    broken = write_batch(tmp_path / "broken", [f for f in REPORT_TABLE if f.reason in ("empty", "not_text")], ".txt")
    capfd.readouterr()
    caplog.clear()
    assert run(extract_eeg_reports.main, extract_eeg_reports.parser, ["--reports", str(broken), "--out", str(out)]) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and not errors[0].exc_info
    assert f"{broken}: 6 file(s) listed, 0 read, 6 quarantined (empty 2, not_text 4)" in errors[0].getMessage()
    console = capfd.readouterr().err
    assert "Traceback" not in console and "\tat " not in console and not any(p in console for p in PRIVATE)
    assert json.loads((out / "counts.json").read_text()) == counts  # the previous output is whole
