"""Extraction measured on hand-written reports in the house style of a large public EEG corpus (not generated).

The figures are printed (`pytest -s`); the bar is the issue's: every report parsed, and sections, age, sex and
impression found with recall >= 0.95.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.eeg import evaluate
from pipelines.eeg.extract import extract_findings

HANDWRITTEN = Path(__file__).resolve().parent.parent / "fixtures" / "eeg" / "handwritten"


def handwritten() -> list[tuple[str, str, dict]]:
    """(file name, text, expected findings) of every hand-written report."""
    expected = json.loads((HANDWRITTEN / "expected.json").read_text())["reports"]
    return [(name, (HANDWRITTEN / "reports" / name).read_text(), truth) for name, truth in sorted(expected.items())]


def measure(only: str = "") -> tuple[int, dict]:
    """(reports parsed, per-field precision/recall) of the rules on the hand-written reports (names containing `only`).

    `abnormal` is the rules' report classification (the impression says abnormal), against the reader's label.
    """
    totals: dict = {}
    parsed = 0
    for name, text, truth in handwritten():
        if only not in name:
            continue
        found = extract_findings(text)
        parsed += bool(found.sections)
        predicted = evaluate.predicted_values(found.as_dict())
        predicted["abnormal"] = found.impression == "abnormal"
        counts = evaluate.field_counts(predicted, truth)
        counts["abnormal"] = evaluate.field_counts(
            {"seizure_present": predicted["abnormal"]}, {"seizure_present": truth["abnormal"]}
        )["seizure_present"]
        totals = evaluate.add_counts(totals, {k: v for k, v in counts.items() if k in truth})
    return parsed, evaluate.summarize(totals)


def test_fixture_set_is_complete():
    reports = handwritten()
    assert len(reports) >= 20 and len(list((HANDWRITTEN / "reports").glob("*.txt"))) == len(reports)
    assert all(set(truth) >= {"sections", "age", "sex", "impression", "abnormal"} for _, _, truth in reports)


def test_extraction_meets_the_bar_on_handwritten_reports():
    parsed, metrics = measure()
    print(f"\nhand-written reports: {len(handwritten())}, parsed: {parsed}")
    for name, m in sorted(metrics.items()):
        print(
            f"  {name:16s} precision {m['precision']}  recall {m['recall']}  (tp {m['tp']}, fp {m['fp']}, fn {m['fn']})"
        )
    _, held_out = measure("heldout")
    print("  written after the rules were last changed (hw23-hw26), recall:")
    print("  " + ", ".join(f"{name} {m['recall']}" for name, m in sorted(held_out.items())))
    assert parsed == len(handwritten())
    for name in ("sections", "age", "sex", "impression"):
        assert metrics[name]["recall"] >= 0.95, (name, metrics[name])
