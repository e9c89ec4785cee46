"""Rule-based report extraction: sections, typo correction, fields with negation, and measured P/R (no Spark)."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.config import EegGenerateConfig, defaults
from pipelines.eeg import evaluate
from pipelines.eeg.extract import (
    correct_typos,
    extract_findings,
    extract_identifiers,
    find_dates,
    split_sections,
)
from pipelines.eeg.generate import archive_plan, render_report

REPORT = """Patient Name: DOE, JANE
MR#: 12-345-678
Dates of Study: February 2, 2007 to 2/4/2007

CLINCAL HISTORY: This is a 37-year-old right-handed woman with staring spells. Seizure free since 2005.

MEDS: Keppra 500 mg BID, Lamotrigine.

INTRODUCTION: Long-term video-EEG monitoring was performed. The study lasted 2 days.

DESCRIPTION OF THE RECORD: The background is well organized.
There is intermittent focal delta slowing over the left temporal region. No spikes are seen.
Occasional sharp waves are noted in the left temporal region. Three focal seizures were recorded.
At 02:14, the patient had a focal seizure lasting 40 seconds. At 9:05, the patient pushed the event button; there was no EEG change.

HR: 72 bpm.

IMPRESION: This EEG is abnormal because of sharp waves and focal slowing.
"""


def test_sections_survive_typos_and_variants():
    preamble, sections = split_sections(REPORT)
    assert "Patient Name" in preamble
    assert list(sections) == ["clinical_history", "medications", "introduction", "description", "hr", "impression"]
    assert sections["description"].count("\n") == 3  # continuation lines stay in their section


def test_fields_of_a_known_report():
    f = extract_findings(REPORT)
    assert (f.age, f.sex, f.study_type, f.duration_minutes, f.heart_rate) == (37, "F", "video", 2880, 72)
    assert f.study_dates == ["2007-02-02", "2007-02-04"]
    assert f.impression == "abnormal"
    assert f.epileptiform == ["sharp_waves"]  # "No spikes are seen" is negated
    assert (f.slowing, f.slowing_location) == ("focal", "left temporal")
    assert (f.seizure_present, f.seizure_count, f.seizure_types) == (True, 3, ["focal"])
    assert f.events == [{"time": "02:14", "kind": "seizure"}, {"time": "09:05", "kind": "pushbutton"}]
    assert f.medications == ["lamotrigine", "levetiracetam"]


@pytest.mark.parametrize(
    "description, present",
    [
        ("No seizures were recorded.", False),
        ("There were no electrographic seizures.", False),
        ("The patient's typical events were captured without an EEG correlate.", False),
        ("A single electrographic seizure was recorded.", True),
        (
            "Two typical events were captured, each with a clear electrographic correlate consistent with focal seizures.",
            True,
        ),
    ],
)
def test_seizure_negation(description, present):
    text = f"CLINICAL HISTORY: History of seizures.\n\nDESCRIPTION OF THE RECORD: {description}\n"
    assert extract_findings(text).seizure_present is present


def test_typo_correction_and_dates():
    assert correct_typos("Febraury seizrues IMPRESION Keppra Smith") == "February seizures IMPRESSION Keppra Smith"
    found = [d for _, _, d in find_dates("on 02-Feb-2007, 2/3/2007, March 9, 2008 and 2009-12-31; not 13/45/2007")]
    assert found == [date(2007, 2, 2), date(2007, 2, 3), date(2008, 3, 9), date(2009, 12, 31)]


def test_identifiers_are_found_for_deidentification():
    ids = extract_identifiers(REPORT + "\nElectronically signed by Dr. Ann Lee. Call (215) 555-0101.")
    assert ids.names == ["DOE", "JANE"] and ids.mrn == "12345678" and ids.mrn_forms == ["12-345-678"]
    assert ids.physicians == ["Ann Lee"] and ids.phones == ["(215) 555-0101"]


def test_measured_precision_and_recall_on_generated_reports():
    """The rules against the generator's truth: the floors guard against regressions; the note reports the figures."""
    config = defaults(EegGenerateConfig, patients=150, seed=404)
    totals: dict = {}
    for plan in archive_plan(config):
        for session in plan.sessions:
            if session.report_name:
                text, truth = render_report(plan, session, config)
                found = evaluate.predicted_values(extract_findings(text).as_dict())
                totals = evaluate.add_counts(totals, evaluate.field_counts(found, evaluate.truth_values(truth)))
    metrics = evaluate.summarize(totals)
    for name in ("sections", "age", "sex", "study_dates", "study_type", "impression", "epileptiform", "slowing"):
        assert metrics[name]["precision"] >= 0.97 and metrics[name]["recall"] >= 0.95, (name, metrics[name])
    for name in ("medications", "events", "monitoring_days", "seizure_present"):
        assert metrics[name]["precision"] >= 0.97 and metrics[name]["recall"] >= 0.95, (name, metrics[name])


LTM = """CLINICAL  HISTORY:21 year old female with nocturnal spells.
REASON FOR STUDY/CLINICAL HISTORY - Spells.
INTRODUCTION: Continuous video EEG monitoring was performed in the EMU.
Long-Term Monitoring, February 3, 2007 to February 4, 2007
DESCRIPTION  OF THE  RECORD:  The background is well organized.
EVENT TIME 10:04: Patient pushed the button for a typical spell.
No EEG change.
EVENT TIME 2:15 p.m.: Clinical seizure with head turning to the left.
Long-Term Monitoring, February 4 to February 5, 2007
EVENTS:
EVENT TIME 03:30: The patient was sleeping; no seizure.
ACTIVATION PROCEDURES: Photic stimulation was not performed.
IMPRESSION/CLINICAL CORRELATION: This is an abnormal video EEG because of a right temporal seizure.
"""


def test_heading_variants_combined_and_unknown_headings():
    _, sections = split_sections(LTM)
    assert list(sections) == [
        "clinical_history",
        "reason_for_study",
        "introduction",
        "description",
        "events",
        "activation_procedures",
        "impression",
        "clinical_correlation",
    ]
    assert sections["impression"] == sections["clinical_correlation"]
    assert "Photic" in sections["activation_procedures"] and "Photic" not in sections["events"]
    f = extract_findings(LTM)
    assert (f.age, f.sex, f.impression, f.study_type) == (21, "F", "abnormal", "video")
    assert split_sections("IMPRESSION Normal EEG.\n")[1] == {"impression": "Normal EEG."}
    assert split_sections("Impression:\nNORMAL EEG\n")[1] == {"impression": "NORMAL EEG"}
    assert split_sections("History of seizures.\nSeizures were not seen.\n")[1] == {}


def test_monitoring_days_and_their_events():
    f = extract_findings(LTM)
    assert f.study_dates == ["2007-02-03", "2007-02-04", "2007-02-05"]
    assert [(d["start"], d["end"]) for d in f.monitoring_days] == [
        ("2007-02-03", "2007-02-04"),
        ("2007-02-04", "2007-02-05"),
    ]
    first, second = f.monitoring_days
    assert [(e["time"], e["kind"]) for e in first["events"]] == [("10:04", "pushbutton"), ("14:15", "seizure")]
    assert first["events"][0]["description"] == "Patient pushed the button for a typical spell. No EEG change."
    assert [(e["time"], e["kind"]) for e in second["events"]] == [("03:30", "event")]
    assert len(f.events) == 3


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Most recent seizure 4/14/06.", [date(2006, 4, 14)]),
        ("on 2-3-07 and 3.2.2007", [date(2007, 2, 3), date(2007, 2, 3)]),
        ("Tuesday, February 3, 2007; Feb. 3rd, 2007; 3 February 2007", [date(2007, 2, 3)] * 3),
        ("February 3-4, 2007", [date(2007, 2, 3), date(2007, 2, 4)]),
        ("4/14-4/16/2006", [date(2006, 4, 14), date(2006, 4, 16)]),
        ("Study 2007-02-03. Events on February 5 and on the 6th.", [date(2007, 2, d) for d in (3, 5, 6)]),
        ("Clinical events are noted on February 3.", []),  # no year anywhere: nothing to complete it from
        ("the 3rd seizure, 10-20 system, 8-9 Hz, 2/3 of the record, the patient may 3", []),
    ],
)
def test_date_forms(text, expected):
    assert [d for _, _, d in find_dates(text)] == expected
