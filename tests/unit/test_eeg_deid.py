"""De-identification: the key policy, keyed hashes, date shifts, scrubbed text, safe file ids (no Spark)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from pipelines import PROJECT_ROOT
from pipelines.config import ConfigError, EegDeidConfig, defaults
from pipelines.eeg import deid
from pipelines.eeg.extract import extract_identifiers

PLANTED = Path(__file__).resolve().parent.parent / "fixtures" / "eeg" / "planted"
KEY = b"test-key-0123456789abcdef"


def planted_strings() -> list[str]:
    data = json.loads((PLANTED / "planted.json").read_text())
    return [s for k, v in data.items() if k != "comment" for s in v]


def test_key_from_env_or_file_outside_the_repository(tmp_path):
    config = defaults(EegDeidConfig)
    assert deid.load_key(config, environ={"EEG_DEID_KEY": "x" * 20}) == b"x" * 20
    key_file = tmp_path / "eeg.key"
    key_file.write_text("y" * 32 + "\n")
    assert deid.load_key(defaults(EegDeidConfig, key_file=str(key_file)), environ={}) == b"y" * 32


@pytest.mark.parametrize(
    "config, environ, message",
    [
        (defaults(EegDeidConfig), {}, "no de-identification key"),
        (defaults(EegDeidConfig), {"EEG_DEID_KEY": "short"}, "shorter"),
        (
            defaults(EegDeidConfig, key_file=str(PROJECT_ROOT / "conf" / "base" / "eeg.yml")),
            {},
            "inside the repository",
        ),
        (defaults(EegDeidConfig, key_file="/nonexistent/eeg.key"), {}, "readable file"),
    ],
)
def test_no_usable_key_no_run(config, environ, message):
    with pytest.raises(ConfigError, match=message):
        deid.load_key(config, environ=environ)


def test_keyed_hashes_and_shifts_are_stable_and_secret():
    assert deid.keyed_hash(KEY, "patient", "mrn:1") == deid.keyed_hash(KEY, "patient", "mrn:1")
    assert deid.keyed_hash(KEY, "patient", "mrn:1") != deid.keyed_hash(b"another-key-0123456789", "patient", "mrn:1")
    assert deid.keyed_hash(KEY, "patient", "mrn:1") != deid.keyed_hash(KEY, "report", "mrn:1")
    shifts = {deid.shift_days(KEY, f"mrn:{i}", 365) for i in range(200)}
    assert min(shifts) >= 1 and max(shifts) <= 365 and len(shifts) > 100
    assert deid.shift(date(2007, 3, 1), 1) == date(2007, 2, 28)
    assert deid.cap_age(93) == (90, True) and deid.cap_age(45) == (45, False)


@pytest.mark.parametrize("name", ["00044172_s001.txt", "report_krumholz.txt"])
def test_planted_identifiers_do_not_survive_the_text_scrubber(name):
    text = (PLANTED / "reports" / name).read_text()
    ids = extract_identifiers(text)
    days = deid.shift_days(KEY, deid.patient_identity(ids, name), 365)
    clean = deid.deidentify_text(text, ids, days)
    for planted in planted_strings():
        assert planted.lower() not in clean.lower(), planted
    assert "Keppra" in clean or "video" in clean  # the clinical content stays
    assert re.search(r"\d{4}-\d{2}-\d{2}", clean)  # dates are shifted, not dropped


def test_file_ids_are_hashed_only_when_they_carry_identifiers():
    assert deid.safe_file_id("00044172_s001.txt", KEY, identifiers=("Quimby", "4417-2209")) == "00044172_s001.txt"
    assert deid.safe_file_id("report_krumholz.txt", KEY, identifiers=("Krumholz",)).startswith("h_")
    assert deid.safe_file_id("EEG_44172209.edf", KEY, identifiers=("4417-2209",)).startswith("h_")
    assert deid.safe_file_id("rec_2011-03-03.edf", KEY).startswith("h_")
    assert deid.safe_file_id("rec_20110303_1.edf", KEY).startswith("h_")


@pytest.mark.parametrize(
    "text, kept, gone",
    [
        ("Study 2/3/2007. Most recent seizure 4/14/06.", ["2007-01-24", "2006-04-04"], ["4/14", "2/3"]),
        ("Study 2/3/2007. Clinical events are noted on February 3.", ["2007-01-24"], ["February", "3."]),
        ("Clinical events are noted on February 3rd.", ["[DATE]"], ["February", "3rd"]),
        ("Seizure free since June 2005, on Monday the 14th.", ["2005"], ["June", "Monday", "14th"]),
        ("A 93-year-old man, born 1917; study 3/1/2010.", ["90+", "2010-02-19"], ["93", "1917"]),
    ],
)
def test_dates_keep_only_what_safe_harbor_allows(text, kept, gone):
    clean = deid.deidentify_text(text, extract_identifiers(text), 10)
    assert all(k in clean for k in kept) and not any(g in clean for g in gone), clean
