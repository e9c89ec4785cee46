"""Precision and recall of report extraction per field, and of pairing, against the generator's truth. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# field -> how to compare: "scalar" (one value or None), "set" (a list of values), "flag" (positive class of a bool)
FIELD_KINDS: dict[str, str] = {
    "sections": "set",
    "age": "scalar",
    "sex": "scalar",
    "study_dates": "set",
    "study_type": "scalar",
    "duration_minutes": "scalar",
    "impression": "scalar",
    "epileptiform": "set",
    "slowing": "scalar",
    "seizure_present": "flag",
    "seizure_count": "scalar",
    "seizure_types": "set",
    "events": "set",
    "monitoring_days": "set",
    "medications": "set",
    "heart_rate": "scalar",
}


def truth_values(truth: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's truth of one report in the shape of the extractor's fields."""
    return {
        "sections": truth["sections"],
        "age": truth["age"],
        "sex": truth["sex"],
        "study_dates": truth["study_dates"],
        "study_type": truth["study_type_stated"],
        "duration_minutes": truth["duration_minutes"],
        "impression": truth["impression"],
        "epileptiform": truth["epileptiform"],
        "slowing": truth["slowing"],
        "seizure_present": truth["seizure_present"],
        "seizure_count": truth["seizure_count"] or None,
        "seizure_types": truth["seizure_types"],
        "events": [f"{e['time']} {e['kind']}" for e in truth["events"]],
        "monitoring_days": truth.get("monitoring_days", []),
        "medications": truth["medications"],
        "heart_rate": truth["heart_rate"],
    }


def predicted_values(found: Mapping[str, Any]) -> dict[str, Any]:
    out = {name: found.get(name) for name in FIELD_KINDS}
    out["events"] = [f"{e['time']} {e['kind']}" for e in (found.get("events") or [])]
    out["monitoring_days"] = [f"{d['start']}/{d['end']}" for d in (found.get("monitoring_days") or [])]
    return out


def field_counts(predicted: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, tuple[int, int, int]]:
    """(tp, fp, fn) per field for one report; both sides in the extractor's field shape."""
    counts = {}
    for name, kind in FIELD_KINDS.items():
        p, t = predicted.get(name), truth.get(name)
        if kind == "set":
            ps, ts = set(map(str, p or [])), set(map(str, t or []))
            counts[name] = (len(ps & ts), len(ps - ts), len(ts - ps))
        elif kind == "flag":
            counts[name] = (int(bool(p) and bool(t)), int(bool(p) and not t), int(not p and bool(t)))
        else:
            if p is None:
                counts[name] = (0, 0, int(t is not None))
            elif t is not None and str(p) == str(t):
                counts[name] = (1, 0, 0)
            else:
                counts[name] = (0, 1, int(t is not None))
    return counts


def summarize(totals: Mapping[str, tuple[int, int, int]]) -> dict[str, dict[str, float | int | None]]:
    """Precision, recall and counts per field from summed (tp, fp, fn)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for name, (tp, fp, fn) in totals.items():
        out[name] = {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
    return out


def add_counts(
    a: dict[str, tuple[int, int, int]], b: dict[str, tuple[int, int, int]]
) -> dict[str, tuple[int, int, int]]:
    def total(k: str) -> tuple[int, int, int]:
        (x1, x2, x3), (y1, y2, y3) = a.get(k, (0, 0, 0)), b.get(k, (0, 0, 0))
        return x1 + y1, x2 + y2, x3 + y3

    return {k: total(k) for k in {*a, *b}}


def pairing_metrics(
    predicted: Iterable[tuple[str, str]], truth: Iterable[tuple[str, str]]
) -> dict[str, float | int | None]:
    """Precision and recall of (report, file) links."""
    p, t = set(predicted), set(truth)
    tp = len(p & t)
    return {
        "precision": round(tp / len(p), 4) if p else None,
        "recall": round(tp / len(t), 4) if t else None,
        "tp": tp,
        "fp": len(p - t),
        "fn": len(t - p),
    }
