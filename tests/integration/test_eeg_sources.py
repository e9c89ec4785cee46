"""EDF headers and reports read through Spark and the Hadoop FileSystem: every file parsed or quarantined."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from pipelines.eeg import sources
from pipelines.errors import InputError
from tests.unit.test_eeg_edf import REAL_EDF, patch, small_edf


@pytest.fixture(scope="module")
def edf_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edf")
    (root / "sub").mkdir()
    good = small_edf()
    (root / "good.edf").write_bytes(good)
    (root / "sub" / "plus.EDF").write_bytes(small_edf(plus=True))
    (root / "sub" / "odd.edf").write_bytes(patch(good, 236, "-1", 8))  # tolerated
    (root / "empty.edf").write_bytes(b"")
    (root / "cut.edf").write_bytes(good[:300])
    (root / "date.edf").write_bytes(patch(good, 168, "31.02.07", 8))
    (root / "notes.txt").write_text("not an EDF file")
    (root / ".hidden.edf").write_bytes(good)
    return root


@pytest.mark.parametrize("via", ["driver", "spark"])
def test_headers_and_quarantine_add_up(spark, edf_dir, via):
    result = sources.read_edf_headers(spark, f"file://{edf_dir}", via=via)
    rows = {r["file_name"]: r for r in result.rows.collect()}
    bad = {r["file_name"]: r["reason"] for r in result.quarantine.collect()}
    counts = result.counts()
    assert {k: counts[k] for k in ("read", "parsed", "quarantined", "quarantined_by_reason")} == {
        "read": 6,
        "parsed": 3,
        "quarantined": 3,
        "quarantined_by_reason": {"corrupt_edf": 2, "empty": 1},
    }
    assert (counts["files"]["listed"], counts["files"]["read"], counts["files"]["quarantined"]) == (6, 3, 3)
    assert sorted(rows) == ["good.edf", "odd.edf", "plus.EDF"]
    assert bad == {"empty.edf": "empty", "cut.edf": "corrupt_edf", "date.edf": "corrupt_edf"}
    details = {r["file_name"]: r["detail"] for r in result.quarantine.collect()}
    assert details["cut.edf"].startswith("truncated_header:") and details["date.edf"].startswith("impossible_value:")
    good = rows["good.edf"]
    assert good["start"] == datetime(2007, 2, 3, 9, 15, 30) and good["edf_type"] == "EDF"
    assert good["electrodes"] == ["FP1", "C3", "O2"] and good["sample_rate"] == 8.0
    assert (good["patient_code"], good["patient_sex"], good["patient_age"]) == ("0012345", "F", 55.0)
    assert rows["plus.EDF"]["edf_type"] == "EDF+C" and rows["plus.EDF"]["n_signals"] == 4
    assert rows["odd.edf"]["tolerated"] == ["n_records_unknown"] and rows["odd.edf"]["n_records"] == 3
    result.unpersist()


def test_missing_input_is_an_input_error(spark, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        sources.read_edf_headers(spark, str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no EDF files"):
        sources.read_edf_headers(spark, str(tmp_path))


def test_real_file_through_spark_with_signals_on_demand(spark):
    uri = f"file://{REAL_EDF}"
    result = sources.read_edf_headers(spark, f"file://{REAL_EDF.parent}")
    (row,) = result.rows.collect()
    assert result.quarantined == 0
    assert (row["n_signals"], row["sample_rate"], row["edf_type"]) == (65, 160.0, "EDF+C")
    assert "text_mode_corruption" in row["tolerated"]
    signals = sources.read_signals(spark, uri, channels=["Cz", "Oz"], start_s=10.0, duration_s=2.0)
    assert sorted(signals) == ["Cz..", "Oz.."]
    assert signals["Cz.."].shape == (320,) and np.isfinite(signals["Cz.."]).any()


def test_signals_on_demand_read_only_the_records_asked_for(spark, edf_dir):
    signals = sources.read_signals(
        spark, f"file://{edf_dir}/good.edf", channels=["EEG O2-REF"], start_s=1.0, duration_s=1.0, physical=False
    )
    assert np.array_equal(signals["EEG O2-REF"], np.arange(8, 16) * 3)


def test_reports_decoded_or_quarantined_without_text(spark, tmp_path):
    (tmp_path / "a.txt").write_text("CLINICAL HISTORY: fine.\r\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("IMPRESSION: Müller".encode("cp1252"))
    (tmp_path / "c.txt").write_bytes(b"  \n ")
    (tmp_path / "d e.TXT").write_bytes(b"\xef\xbb\xbfHR: 60")
    (tmp_path / "f.txt").write_bytes(b"")
    result = sources.read_reports(spark, str(tmp_path))
    assert {r["report_id"]: r["text"] for r in result.rows.collect()} == {
        "a.txt": "CLINICAL HISTORY: fine.\n",
        "d e.TXT": "HR: 60",
    }
    assert {r["file_name"]: r["reason"] for r in result.quarantine.collect()} == {
        "b.txt": "not_text",
        "c.txt": "empty",
        "f.txt": "empty",
    }
    assert "text" not in result.quarantine.columns and result.read == 5
    result.unpersist()
