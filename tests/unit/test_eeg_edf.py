"""The lenient EDF header reader, signal decoding and the writer, on bytes (no Spark)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from pipelines.eeg import edf

REAL_EDF = Path(__file__).resolve().parents[3] / "shared" / "data" / "eeg" / "S001R01.edf"  # ../shared beside the clone


def _signal(label: str, spr: int = 8) -> edf.SignalHeader:
    return edf.SignalHeader(label, "AgAgCl electrode", "uV", -3200.0, 3200.0, -32768, 32767, "HP:0.1Hz", spr)


def small_edf(*, plus: bool = False, records: int = 3, patient: str = "0012345 F 02-MAY-1951 Doe_Jane Age:55") -> bytes:
    signals = [
        (_signal(f"EEG {e}-REF"), np.arange(8 * records, dtype=np.int16) * (i + 1))
        for i, e in enumerate(["FP1", "C3", "O2"])
    ]
    return edf.build_edf(
        patient=patient,
        recording="Startdate 03-FEB-2007 EEG_123 tech XLTEK" if plus else "Startdate 03-FEB-2007 X X XLTEK",
        start=datetime(2007, 2, 3, 9, 15, 30),
        record_duration=1.0,
        signals=signals,
        edf_plus=plus,
        annotations=[(1.5, 2.0, "seizure start")] if plus else (),
    )


def patch(data: bytes, offset: int, text: str, width: int) -> bytes:
    return data[:offset] + text.encode("latin-1").ljust(width, b" ") + data[offset + width :]


def test_written_file_round_trips():
    data = small_edf()
    h = edf.parse_header(data, file_size=len(data))
    assert h.tolerated == ()
    assert (h.start, h.n_records, h.record_duration, h.n_signals, h.edf_plus) == (
        datetime(2007, 2, 3, 9, 15, 30),
        3,
        1.0,
        3,
        None,
    )
    assert h.patient == edf.PatientId("0012345", "F", date(1951, 5, 2), "Doe Jane", 55.0)
    assert [edf.normalize_label(s.label) for s in h.signals] == ["FP1", "C3", "O2"]
    assert h.equipment == "XLTEK" and h.records_in_file == 3
    signals = edf.decode_records(h, data[h.header_bytes :], physical=False)
    assert np.array_equal(signals["EEG C3-REF"], np.arange(24) * 2)
    physical = edf.decode_records(h, data[h.header_bytes :], channels=["c3"])
    assert list(physical) == ["EEG C3-REF"]
    assert physical["EEG C3-REF"][1] == pytest.approx((2 + 32768) * 6400 / 65535 - 3200)


def test_edfplus_annotations_round_trip():
    data = small_edf(plus=True)
    h = edf.parse_header(data, file_size=len(data))
    assert h.edf_plus == "C" and h.n_signals == 4 and len(h.data_signals) == 3
    assert edf.annotation_records(h, data[h.header_bytes :]) == [(1.5, 2.0, "seizure start")]


@pytest.mark.parametrize(
    "offset, text, width, code",
    [
        (184, "9999", 8, "header_bytes_mismatch"),
        (236, "-1", 8, "n_records_unknown"),
        (244, "1,0", 8, "decimal_comma"),
        (168, "03/02/07", 8, "date_separator"),
        (176, "09:15:30", 8, "time_separator"),
        (0, "00", 8, "version_nonstandard"),
    ],
)
def test_tolerated_oddities_are_reported(offset, text, width, code):
    data = patch(small_edf(), offset, text, width)
    h = edf.parse_header(data, file_size=len(data))
    assert code in h.tolerated
    assert h.n_records == 3 and h.start == datetime(2007, 2, 3, 9, 15, 30)


def test_nul_padding_and_truncated_data_and_free_text_patient():
    data = small_edf(patient="DOE, JANE  MRN 0012345  female 1951-05-02")
    data = data[:236] + b"3\x00\x00\x00\x00\x00\x00\x00" + data[244:]
    h = edf.parse_header(data[:-10], file_size=len(data) - 10)
    assert {"nul_padding", "data_truncated", "patient_field_free_text"} <= set(h.tolerated)
    assert h.records_in_file == 2
    assert (h.patient.code, h.patient.sex, h.patient.birthdate) == ("0012345", "F", date(1951, 5, 2))


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: b"", edf.EMPTY_FILE),
        (lambda d: d[:200], edf.TRUNCATED_HEADER),
        (lambda d: d[:700], edf.TRUNCATED_HEADER),
        (lambda d: b"%PDF-1.4" + d[8:], edf.NOT_EDF),
        (lambda d: patch(d, 252, "abc", 4), edf.CORRUPT_HEADER),
        (lambda d: patch(d, 252, "0", 4), edf.IMPOSSIBLE_VALUE),
        (lambda d: patch(d, 168, "31.02.07", 8), edf.IMPOSSIBLE_VALUE),
        (lambda d: patch(d, 176, "25.61.00", 8), edf.IMPOSSIBLE_VALUE),
        (lambda d: patch(d, 244, "-1", 8), edf.IMPOSSIBLE_VALUE),
        (lambda d: patch(d, 236, "-5", 8), edf.IMPOSSIBLE_VALUE),
        # samples per record of signal 1 (field block starts at 256 + 3 * 216)
        (lambda d: patch(d, 256 + 3 * 216, "0", 8), edf.IMPOSSIBLE_VALUE),
        # digital minimum of signal 1 above its maximum
        (lambda d: patch(d, 256 + 3 * 120, "40000", 8), edf.IMPOSSIBLE_VALUE),
        (lambda d: patch(d, 256 + 3 * 104, "x", 8), edf.CORRUPT_HEADER),
    ],
)
def test_broken_headers_raise_a_reason(mutate, reason):
    data = mutate(small_edf())
    with pytest.raises(edf.EdfHeaderError) as info:
        edf.parse_header(data, file_size=len(data))
    assert info.value.reason == reason


def test_error_details_carry_no_field_values():
    data = patch(small_edf(patient="Jane Doe 0012345"), 168, "xx.02.07", 8)
    with pytest.raises(edf.EdfHeaderError) as info:
        edf.parse_header(data, file_size=len(data))
    assert "xx" not in str(info.value) and "Doe" not in str(info.value)


def test_repair_text_mode_marks_lost_bytes():
    original = np.array([1, -2, 10, 3338, 300], dtype="<i2").tobytes()
    mangled = original.decode("utf-8", "replace").replace("\n", "\r\n").encode("utf-8")
    repaired, unknown = edf.repair_text_mode(mangled)
    assert len(repaired) == len(original)
    known = ~unknown
    assert bytes(np.frombuffer(repaired, np.uint8)[known]) == bytes(np.frombuffer(original, np.uint8)[known])
    assert unknown.sum() == 4  # the two 0xFF of -2, and the 0x0A bytes of 10 and 3338 (CR or LF: ambiguous)


def test_real_file_that_strict_readers_refuse():
    """S001R01.edf (PhysioNet EEGMMIDB) went through a text-mode copy: the header is intact, the data is not."""
    data = REAL_EDF.read_bytes()
    h = edf.parse_header(data[:20000], file_size=len(data))
    assert (h.n_signals, h.n_records, h.record_duration, h.edf_plus) == (65, 61, 1.0, "C")
    assert h.start == datetime(2009, 8, 12, 16, 15, 0)
    assert h.sample_rate(h.signals[0]) == 160.0
    assert edf.normalize_label(h.signals[0].label) == "FC5" and h.signals[-1].is_annotation
    assert {"text_mode_corruption", "nonstandard_labels"} <= set(h.tolerated)
    assert h.patient == edf.PatientId()  # "X X X X": everything unknown
    repaired, unknown = edf.repair_text_mode(data[h.header_bytes :])
    assert len(repaired) == h.n_records * h.record_bytes
    signals = edf.decode_records(h, repaired, unknown=unknown)
    fc5 = signals["Fc5."]
    assert fc5.shape == (61 * 160,)
    finite = fc5[np.isfinite(fc5)]
    assert 0.2 < finite.size / fc5.size < 0.9 and np.abs(finite).max() <= 8092
    annotations = edf.annotation_records(h, repaired)
    assert annotations[0] == (0.0, 60.2, "T0")
