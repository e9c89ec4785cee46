"""Rule-based extraction of structured findings (and, separately, identifiers) from EEG report text. Pure.

Reports are split into sections by their headers (matched with typo tolerance), typos in the domain's own words
are corrected against a lexicon (one edit away from exactly one known word), and each field is read by rules with
sentence-level negation. `extract_findings` returns clinical fields only; `extract_identifiers` returns what
de-identification and pairing need (names, record numbers, birth date, ...): callers must keep those out of logs
and research outputs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from pipelines.eeg.vocabulary import (
    LOCATIONS,
    MEDICATIONS,
    NUMBER_WORDS,
    SECTION_HEADERS,
    SECTIONS,
    SEIZURE_TYPES,
)

MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

LEXICON = {
    *MONTHS,
    *(m[:3] for m in MONTHS),
    *MEDICATIONS,
    *(b.lower() for bs in MEDICATIONS.values() for b in bs),
    *(w.lower() for hs in SECTION_HEADERS.values() for h in hs for w in h.split()),
    "seizure",
    "seizures",
    "spikes",
    "spike",
    "sharp",
    "waves",
    "discharges",
    "epileptiform",
    "abnormal",
    "normal",
    "abnormalities",
    "abnormality",
    "slowing",
    "focal",
    "generalized",
    "diffusely",
    "diffuse",
    "routine",
    "continuous",
    "monitoring",
    "video",
    "prolonged",
    "recording",
    "minute",
    "minutes",
    "female",
    "woman",
    "male",
    "gentleman",
    "girl",
    "temporal",
    "frontal",
    "central",
    "parietal",
    "occipital",
    "bifrontal",
    "hemisphere",
    "electrographic",
    "clinical",
    "tonic",
    "clonic",
    "absence",
    "myoclonic",
    "captured",
    "recorded",
    "typical",
    "events",
    "event",
    "button",
    "pushed",
    "correlate",
    "consistent",
    "remarkable",
    "within",
    "limits",
    "wakefulness",
    "drowsy",
    "awake",
    "background",
    "posterior",
    "dominant",
    "rhythm",
    "polymorphic",
    "theta",
    "delta",
    "intermittent",
    "occasional",
    "frequent",
    "electroencephalogram",
    "occurred",
    "single",
    "study",
    "lasted",
    "hours",
    "began",
    "ended",
    "obtained",
    "mildly",
    "moderately",
    "because",
    "lady",
    "right",
    "left",
    "handed",
    "epilepsy",
    "spells",
    "history",
    "medications",
    "none",
    "reported",
    "antiepileptic",
}

_WORD = re.compile(r"[A-Za-z]+")


def _one_edit(a: str, b: str) -> bool:
    """True when `a` and `b` differ by one substitution, insertion, deletion or swap of adjacent letters."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long_)):
        if long_[:i] + long_[i + 1 :] == short:
            return True
    return False


_BY_LENGTH: dict[int, list[str]] = {}
for _w in LEXICON:
    _BY_LENGTH.setdefault(len(_w), []).append(_w)


def correct_typos(text: str) -> str:
    """Replace each word of 5+ letters that is one edit away from exactly one lexicon word by that word."""

    def fix(match: re.Match) -> str:
        word = match.group(0)
        lower = word.lower()
        if len(lower) < 5 or lower in LEXICON:
            return word
        near = [
            w
            for n in (len(lower) - 1, len(lower), len(lower) + 1)
            for w in _BY_LENGTH.get(n, ())
            if _one_edit(lower, w)
        ]
        if len(near) != 1:
            return word
        fixed = near[0]
        return fixed.upper() if word.isupper() else fixed.capitalize() if word[0].isupper() else fixed

    return _WORD.sub(fix, text)


# ---------------------------------------------------------------------------------------------------------------
# Sections

_HEADER_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z /&#-]{0,40}?)\s*:\s*(.*)$")
_HEADER_INDEX = {h: canonical for canonical, hs in SECTION_HEADERS.items() for h in hs}


def section_of(header: str) -> str | None:
    """Canonical section of a header text (typos already corrected), or None."""
    key = " ".join(header.upper().split())
    return _HEADER_INDEX.get(key)


def split_sections(text: str) -> tuple[str, dict[str, str]]:
    """(preamble, {canonical section: body}) of a report; repeated sections are concatenated."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _HEADER_LINE.match(line)
        canonical = section_of(correct_typos(match.group(1))) if match else None
        if match and canonical:
            current = canonical
            sections.setdefault(current, []).append(match.group(2))
        elif current is None:
            preamble.append(line)
        else:
            sections[current].append(line)
    return "\n".join(preamble), {k: "\n".join(v).strip() for k, v in sections.items()}


# ---------------------------------------------------------------------------------------------------------------
# Dates and small parsers

_MONTH_RE = "|".join(m.capitalize() for m in MONTHS) + "|" + "|".join(m[:3].capitalize() for m in MONTHS)
DATE_PATTERNS = (
    re.compile(rf"\b(?P<month>{_MONTH_RE})\.? (?P<day>\d{{1,2}}),? (?P<year>\d{{4}})\b", re.I),
    re.compile(r"\b(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})\b"),
    re.compile(rf"\b(?P<day>\d{{1,2}})-(?P<month>{_MONTH_RE})-(?P<year>\d{{4}})\b", re.I),
    re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})\b"),
)


def _month(text: str) -> int:
    if text.isdigit():
        return int(text)
    lower = text.lower()
    for i, m in enumerate(MONTHS):
        if lower == m or lower == m[:3]:
            return i + 1
    raise ValueError(text)


def find_dates(text: str) -> list[tuple[int, int, date]]:
    """(start, end, date) of every date in `text`, in order; impossible dates are skipped."""
    found = []
    for pattern in DATE_PATTERNS:
        for match in pattern.finditer(text):
            try:
                d = date(int(match.group("year")), _month(match.group("month")), int(match.group("day")))
            except ValueError:
                continue
            found.append((match.start(), match.end(), d))
    found.sort()
    out, last_end = [], -1
    for start, end, d in found:
        if start >= last_end:
            out.append((start, end, d))
            last_end = end
    return out


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.replace("\n", " ")) if s.strip()]


_NEGATION = re.compile(r"\b(no|not|without|absence of|negative for|free of|denies|none)\b", re.I)


def _negated(sentence: str, at: int) -> bool:
    return bool(_NEGATION.search(sentence[:at]))


def _count(word: str) -> int | None:
    word = word.lower()
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)


# ---------------------------------------------------------------------------------------------------------------
# Findings


@dataclass
class Findings:
    sections: list[str] = field(default_factory=list)
    age: int | None = None
    sex: str | None = None
    study_dates: list[str] = field(default_factory=list)
    study_type: str | None = None
    duration_minutes: int | None = None
    impression: str | None = None
    epileptiform: list[str] = field(default_factory=list)
    slowing: str | None = None
    slowing_location: str | None = None
    seizure_present: bool = False
    seizure_count: int | None = None
    seizure_types: list[str] = field(default_factory=list)
    events: list[dict[str, str]] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)
    heart_rate: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(Findings.__dataclass_fields__)

_AGE = re.compile(r"\b(\d{1,3})[- ]year[- ]old\b", re.I)
_SEX_WORDS = {
    "woman": "F",
    "female": "F",
    "lady": "F",
    "girl": "F",
    "man": "M",
    "male": "M",
    "gentleman": "M",
    "boy": "M",
}
_SEX = re.compile(r"\b(" + "|".join(_SEX_WORDS) + r")\b", re.I)
_TITLE_SEX = re.compile(r"\b(Mrs?|Ms|Miss)\.? [A-Z]")


def extract_findings(text: str) -> Findings:
    """The clinical content of one report."""
    preamble, sections = split_sections(text)
    fixed = {k: correct_typos(v) for k, v in sections.items()}
    out = Findings(sections=[s for s in SECTIONS if s in sections])
    history = fixed.get("clinical_history", "")
    description = fixed.get("description", "")
    impression = fixed.get("impression", "")
    intro = fixed.get("introduction", "")

    match = _AGE.search(history) or _AGE.search(description)
    if match:
        out.age = int(match.group(1))
    sex = _SEX.search(history[match.end() :] if match and _AGE.search(history) else history)
    if sex:
        out.sex = _SEX_WORDS[sex.group(1).lower()]
    elif title := _TITLE_SEX.search(history):
        out.sex = "M" if title.group(1) == "Mr" else "F"

    out.study_dates = study_dates(preamble, intro)
    out.study_type = _study_type(intro)
    out.duration_minutes = _duration(intro)
    out.impression = _impression(impression) if "impression" in sections else None
    out.epileptiform = _epileptiform(description)
    out.slowing, out.slowing_location = _slowing(description)
    _seizures(description, impression, out)
    out.events = _events(description)
    out.medications = _medications(fixed.get("medications", ""))
    hr = re.search(r"\b(\d{2,3})\s*(bpm|beats)", fixed.get("hr", ""), re.I)
    out.heart_rate = int(hr.group(1)) if hr else None
    return out


def study_dates(preamble: str, intro: str) -> list[str]:
    """Dates of the study: the `Date(s) of Study` line, else the introduction's `began on / obtained on`."""
    for line in preamble.splitlines():
        if re.match(r"\s*dates? of (study|service|recording)\s*:", correct_typos(line), re.I):
            found = sorted({d.isoformat() for _, _, d in find_dates(correct_typos(line))})
            if found:
                return found
    match = re.search(r"(began on|obtained on|performed on|recorded on)(.*)", intro, re.I)
    if match:
        return sorted({d.isoformat() for _, _, d in find_dates(match.group(2))})
    return []


def _study_type(text: str) -> str | None:
    lower = text.lower()
    if re.search(r"\bvideo\b", lower):
        return "video"
    if re.search(r"\b(continuous|long-term|prolonged|ambulatory|ceeg)\b", lower):
        return "ltm"
    if re.search(r"\broutine\b", lower):
        return "routine"
    return None


def _duration(text: str) -> int | None:
    match = re.search(r"\b(\d{1,4})[- ]minute", text, re.I)
    if match:
        return int(match.group(1))
    match = re.search(r"\blasted (\d{1,2}) days\b", text, re.I)
    if match:
        return int(match.group(1)) * 1440
    match = re.search(r"\blasted about (\d{1,3}) hours\b", text, re.I)
    if match:
        return int(match.group(1)) * 60
    return None


def _impression(text: str) -> str | None:
    lower = text.lower()
    if re.search(r"\bno abnormalit", lower) or re.search(r"\bwithin normal limits\b", lower):
        return "normal"
    if re.search(r"\babnormal\b", lower):
        return "abnormal"
    if re.search(r"\bnormal\b", lower):
        return "normal"
    return None


_EPI_TERMS = (
    ("spike_and_wave", re.compile(r"spike[- ]and[- ]wave|spike[- ]wave", re.I)),
    ("spikes", re.compile(r"\bspikes?\b(?![- ]and[- ]wave)", re.I)),
    ("sharp_waves", re.compile(r"\bsharp[- ]waves?\b", re.I)),
)


def _epileptiform(text: str) -> list[str]:
    found = set()
    for sentence in sentences(text):
        for name, pattern in _EPI_TERMS:
            for match in pattern.finditer(sentence):
                if not _negated(sentence, match.start()):
                    found.add(name)
    return sorted(found)


def _slowing(text: str) -> tuple[str | None, str | None]:
    for sentence in sentences(text):
        lower = sentence.lower()
        if ("diffusely slow" in lower or "generalized slowing" in lower or "diffuse slowing" in lower) and not _negated(
            sentence, lower.find("slow")
        ):
            return "generalized", None
    for sentence in sentences(text):
        lower = sentence.lower()
        if "focal" in lower and "slowing" in lower and not _negated(sentence, lower.find("focal")):
            where = next((loc for loc in sorted(LOCATIONS, key=len, reverse=True) if loc in lower), None)
            return "focal", where
    return None, None


_SEIZURE_COUNT = re.compile(
    r"\b(a single|single|one|two|three|four|five|six|seven|eight|nine|ten|\d{1,2})\s+"
    r"(?:typical\s+)?(?:(" + "|".join(SEIZURE_TYPES) + r")\s+)?(seizures?|events)\b",
    re.I,
)
_SEIZURE_TYPE = re.compile(r"\b(" + "|".join(SEIZURE_TYPES) + r")\s+seizures?\b", re.I)


def _seizures(description: str, impression: str, out: Findings) -> None:
    types: set[str] = set()
    for sentence in sentences(description):
        lower = sentence.lower()
        count_match = _SEIZURE_COUNT.search(sentence)
        if count_match and not _negated(sentence, count_match.start()):
            noun = count_match.group(3).lower()
            correlated = "correlate" in lower and "no eeg change" not in lower and "without" not in lower
            if noun.startswith("seizure") or (noun == "events" and correlated):
                n = _count(count_match.group(1).replace("a single", "single"))
                if n and out.seizure_count is None:
                    out.seizure_count = n
                out.seizure_present = True
        for match in _SEIZURE_TYPE.finditer(sentence):
            if not _negated(sentence, match.start()):
                types.add(match.group(1).lower())
                out.seizure_present = True
        if re.search(r"\bhad an? [a-z -]*seizure\b", lower):
            out.seizure_present = True
    for sentence in sentences(impression):
        for match in _SEIZURE_TYPE.finditer(sentence):
            if not _negated(sentence, match.start()):
                types.add(match.group(1).lower())
                out.seizure_present = True
    out.seizure_types = sorted(types)


_EVENT = re.compile(r"\bAt (\d{1,2}:\d{2})(?::\d{2})?,? ([^.]*)", re.I)


def _events(text: str) -> list[dict[str, str]]:
    events = []
    for match in _EVENT.finditer(text):
        rest = match.group(2).lower()
        kind = "pushbutton" if "button" in rest else "seizure" if "seizure" in rest else "event"
        hh, mm = match.group(1).split(":")
        events.append({"time": f"{int(hh):02d}:{mm}", "kind": kind})
    return events


_MED_NAMES = sorted(
    [(generic, generic) for generic in MEDICATIONS]
    + [(brand.lower(), generic) for generic, brands in MEDICATIONS.items() for brand in brands],
    key=lambda pair: -len(pair[0]),
)


def _medications(text: str) -> list[str]:
    lower = text.lower()
    found = set()
    for name, generic in _MED_NAMES:
        if re.search(rf"\b{re.escape(name)}\b", lower):
            found.add(generic)
    return sorted(found)


# ---------------------------------------------------------------------------------------------------------------
# Identifiers (for de-identification and pairing only)


@dataclass
class Identifiers:
    names: list[str] = field(default_factory=list)  # the patient's name parts, as written
    mrn: str | None = None  # digits only, no leading zeros
    mrn_forms: list[str] = field(default_factory=list)  # as written
    birthdate: date | None = None
    physicians: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)


_PHONE = re.compile(r"\(?\b\d{3}\)?[ .-]?\d{3}[ .-]\d{4}\b")
_TITLE_NAME = re.compile(r"\b(Dr|Mr|Mrs|Ms|Miss)\.? ([A-Z][a-z]+(?:[ -][A-Z][a-z]+)?)")


def extract_identifiers(text: str) -> Identifiers:
    """Identifiers stated in a report: the preamble's labelled lines, titles with names, phones, addresses."""
    preamble, sections = split_sections(text)
    ids = Identifiers()
    for line in preamble.splitlines():
        match = _HEADER_LINE.match(line)
        if not match:
            continue
        label, value = match.group(1).lower().strip(), match.group(2).strip()
        if label in ("patient name", "name", "patient"):
            ids.names.extend(p for p in re.split(r"[,\s]+", value) if p)
        elif label in ("mrn", "mr#", "mr", "medical record number", "record number", "mr number"):
            value_id = re.match(r"[\d-]+", value)
            if value_id:
                ids.mrn_forms.append(value_id.group(0))
                digits = value_id.group(0).replace("-", "").lstrip("0")
                ids.mrn = digits or None
        elif label in ("dob", "date of birth", "birth date"):
            found = find_dates(value)
            if found:
                ids.birthdate = found[0][2]
        elif label == "address":
            ids.addresses.append(value)
    for match in _TITLE_NAME.finditer(text):
        if match.group(1) == "Dr":
            ids.physicians.append(match.group(2))
        else:
            ids.names.extend(match.group(2).split())
    ids.phones = sorted(set(_PHONE.findall(text)))
    ids.names = list(dict.fromkeys(ids.names))
    ids.physicians = list(dict.fromkeys(ids.physicians))
    return ids
