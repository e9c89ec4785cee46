"""Pairing pieces without Spark: file-name tokens, agreement features, session chains."""

from __future__ import annotations

from datetime import date, datetime

from pipelines.eeg.pairing import FEATURES, name_tokens, pair_features, session_cluster


def test_name_tokens_follow_the_naming_schemes():
    assert name_tokens("00314187_s001_t000.edf") == (["314187"], ["314187_s1"])
    assert name_tokens("00314187_s001.txt") == (["314187"], ["314187_s1"])
    assert name_tokens("EEG200024_1.EDF") == (["200024"], [])
    assert name_tokens("report_200024.txt") == (["200024"], [])
    assert name_tokens("rec_3fa9c1d2e0.edf") == ([], [])  # an opaque hash is not a code


class Row(dict):
    __getattr__ = dict.__getitem__


def _row(**changes) -> Row:
    base = dict(
        r_mrn="12345678",
        f_mrn="12345678",
        r_tokens=[],
        f_tokens=[],
        r_sessions=[],
        f_sessions=[],
        r_name="jane smith",
        f_name="jane smith",
        r_birthdate=date(1970, 5, 2),
        f_birthdate=date(1970, 5, 2),
        f_birth_year_only=0,
        r_sex="F",
        f_sex="F",
        r_age=36,
        f_age=36.0,
        r_first=date(2007, 2, 2),
        r_last=date(2007, 2, 4),
        start=datetime(2007, 2, 3, 0, 1),
    )
    base.update(changes)
    return Row(base)


def test_features_of_agreeing_and_conflicting_pairs():
    same = dict(zip(FEATURES, pair_features(_row())))
    assert same["mrn_equal"] == 1 and same["name_similarity"] == 1 and same["date_in_range"] == 1
    assert same["sex_agreement"] == 1 and same["birth_agreement"] == 1 and same["age_difference"] == 0
    other = dict(
        zip(
            FEATURES,
            pair_features(
                _row(
                    f_mrn="87654321",
                    f_name="john doe",
                    f_sex="M",
                    f_birthdate=date(1950, 1, 1),
                    f_birth_year_only=1,
                    f_age=57.0,
                    start=datetime(2007, 2, 10),
                    r_sessions=["314187_s1"],
                    f_sessions=["314187_s2"],
                )
            ),
        )
    )
    assert other["mrn_conflict"] == 1 and other["name_similarity"] == 0 and other["sex_agreement"] == -1
    assert other["birth_agreement"] == -1 and other["age_difference"] == 1 and other["date_gap"] == 0.6
    assert other["session_conflict"] == 1
    typo = dict(zip(FEATURES, pair_features(_row(f_mrn="12345687"))))
    assert typo["mrn_near"] == 1 and typo["mrn_conflict"] == 0
    unknown = dict(zip(FEATURES, pair_features(_row(r_mrn=None, r_name=None, r_first=None, r_last=None, f_sex=None))))
    assert unknown["mrn_equal"] == unknown["name_known"] == unknown["date_known"] == unknown["sex_agreement"] == 0


def test_a_report_keeps_the_files_of_one_session():
    files = [
        ("a", datetime(2007, 2, 2, 9), 0.9),
        ("b", datetime(2007, 2, 3, 0), 0.95),
        ("c", datetime(2007, 2, 4, 0), 0.9),
        ("d", datetime(2007, 2, 20, 10), 0.99),
    ]
    assert session_cluster(files, 36.0) == (["a", "b", "c"], ["d"])
    assert session_cluster(files[3:], 36.0) == (["d"], [])
