"""Rule-based extraction of structured findings (and, separately, identifiers) from EEG report text. Pure.

Reports are split into sections by their headers (matched with typo tolerance), typos in the domain's own words
are corrected against a lexicon (one edit away from exactly one known word), and each field is read by rules with
sentence-level negation. `extract_findings` returns clinical fields only; `extract_identifiers` returns what
de-identification and pairing need (names, record numbers, birth date, ...): callers must keep those out of logs
and research outputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from pipelines.eeg.dates import MONTHS, find_dates, one_edit, parse_time
from pipelines.eeg.vocabulary import (
    LOCATIONS,
    MEDICATIONS,
    NUMBER_WORDS,
    SECTION_HEADERS,
    SECTIONS,
    SEIZURE_TYPES,
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


_BY_LENGTH: dict[int, list[str]] = {}
for _w in LEXICON:
    _BY_LENGTH.setdefault(len(_w), []).append(_w)


@lru_cache(maxsize=65536)
def _lexicon_word(lower: str) -> str | None:
    """The one lexicon word one edit away from `lower` (5+ letters, not itself a lexicon word), else None."""
    if len(lower) < 5 or lower in LEXICON:
        return None
    near = [
        w for n in (len(lower) - 1, len(lower), len(lower) + 1) for w in _BY_LENGTH.get(n, ()) if one_edit(lower, w)
    ]
    return near[0] if len(near) == 1 else None


def correct_typos(text: str) -> str:
    """Replace each word of 5+ letters that is one edit away from exactly one lexicon word by that word."""

    def fix(match: re.Match) -> str:
        word = match.group(0)
        fixed = _lexicon_word(word.lower())
        if fixed is None:
            return word
        return fixed.upper() if word.isupper() else fixed.capitalize() if word[0].isupper() else fixed

    return _WORD.sub(fix, text)


# ---------------------------------------------------------------------------------------------------------------
# Sections

_HEADER_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z /&#-]{0,40}?)\s*:\s*(.*)$")  # labelled preamble lines
_LABELLED = re.compile(r"^\s*(?P<label>[A-Za-z][A-Za-z /&#'-]{0,60}?)\s*(?::|;|\s[-–]{1,2}\s|\.?\s*$)(?P<rest>.*)$")
_CAPS_WORD = re.compile(r"\s*([A-Z][A-Z/&'-]*[A-Z])(?![a-z0-9])")
_HEADER_INDEX = {h: canonical for canonical, hs in SECTION_HEADERS.items() for h in hs}
_NOT_A_HEADING_END = re.compile(r"\b(TO|OF|BY|WITH|FOR|AND|IN|THE|AS|INCLUDE|INCLUDES|FOLLOWING|ARE|IS|WERE|WAS)$")


def sections_of(label: str) -> tuple[str, ...]:
    """Canonical sections a heading names (typos, case and spacing forgiven; `A/B` names both), or ()."""
    key = " ".join(correct_typos(label).upper().split())
    if key in _HEADER_INDEX:
        return (_HEADER_INDEX[key],)
    parts = [p for p in re.split(r"\s*(?:/|&|\bAND\b)\s*", key) if p]
    return tuple(dict.fromkeys(_HEADER_INDEX[p] for p in parts if p in _HEADER_INDEX)) if len(parts) > 1 else ()


def _heading(line: str, in_body: bool) -> tuple[tuple[str, ...], str] | None:
    """(sections, text after the heading) when `line` opens a section, else None.

    Known headings may end in `:`, `;`, ` - ` or the line's end, or, written in capitals, run straight into their
    text. Once the body has begun, an unknown heading in capitals with a colon opens a section of its own name.
    """
    match = _LABELLED.match(line)
    if match and len(match.group("label").split()) > 5:
        match = None  # a sentence, not a heading
    if match:
        alone = match.group("rest") == "" and ":" not in line
        found = sections_of(match.group("label")) if not alone or match.group("label").isupper() else ()
        if found:
            return found, match.group("rest").strip()
    words: list[str] = []
    end = 0
    while (word := _CAPS_WORD.match(line, end)) and len(words) < 6:
        words.append(word.group(1))
        end = word.end()
    if words and (found := sections_of(" ".join(words))):
        return found, line[end:].lstrip(" \t:;.,-–")
    if in_body and match and ":" in line[match.start("label") : match.start("rest")]:
        label = " ".join(match.group("label").split())
        letters = re.sub(r"[^A-Za-z]", "", label)
        if len(letters) >= 3 and letters.isupper() and len(label.split()) <= 5 and not _NOT_A_HEADING_END.search(label):
            return (re.sub(r"[^a-z]+", "_", label.lower()).strip("_"),), match.group("rest").strip()
    return None


def walk(text: str) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(sections, text, opens a section) of each line: () for the preamble; a heading's line without the heading."""
    current: tuple[str, ...] = ()
    for line in text.splitlines():
        opened = _heading(line, bool(current))
        if opened:
            current, line = opened
        yield current, line, bool(opened)


def split_sections(text: str) -> tuple[str, dict[str, str]]:
    """(preamble, {section: body}) of a report; repeated sections are concatenated, combined headings fill each part.

    Known sections have their canonical names (`vocabulary.SECTIONS`); unknown ones a name made from the heading.
    """
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    for names, line, _ in walk(text):
        if not names:
            preamble.append(line)
        for name in names:
            sections.setdefault(name, []).append(line)
    return "\n".join(preamble), {k: "\n".join(v).strip() for k, v in sections.items()}


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
    events: list[dict[str, str]] = field(default_factory=list)  # time, kind
    monitoring_days: list[dict[str, Any]] = field(default_factory=list)  # start, end, events (time, kind, description)
    medications: list[str] = field(default_factory=list)
    heart_rate: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(Findings.__dataclass_fields__)

# Sections whose text states what this recording showed (the history speaks of other seizures).
FINDING_SECTIONS = ("description", "abnormal_discharges", "seizures", "events")

_AGE = re.compile(
    r"\b(\d{1,3})\+?(?:\s*-?\s*(?:years?|yrs?)[- ]?old\b|\s*(?:y/o|y\.o\.|yo)(?![a-z])|\s+years? of age\b)"
    r"|\bage[d:]?\s+(\d{1,3})\b",
    re.I,
)
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
_SEX_LETTER = re.compile(r"^[\s,]*(?:(?:right|left)[- ]handed\s+)?([FM])\b")
_TITLE_SEX = re.compile(r"\b(Mrs?|Ms|Miss)\.? (?:[A-Z]|\[NAME\])")  # also in scrubbed text
_PRONOUN = re.compile(r"\b(she|he)\b", re.I)


def extract_findings(text: str) -> Findings:
    """The clinical content of one report."""
    preamble, sections = split_sections(text)
    fixed = {k: correct_typos(v) for k, v in sections.items()}
    out = Findings(sections=[s for s in SECTIONS if s in sections] + [s for s in sections if s not in SECTIONS])
    history = "\n".join(fixed.get(s, "") for s in ("clinical_history", "reason_for_study"))
    findings_text = "\n".join(fixed.get(s, "") for s in FINDING_SECTIONS)
    impression = fixed.get("impression", "")
    intro = fixed.get("introduction", "")

    out.age, out.sex = _age_and_sex(history, findings_text)
    out.monitoring_days, out.events = timeline(text)
    days = {d for day in out.monitoring_days for d in (day["start"], day["end"]) if d}
    out.study_dates = sorted(set(study_dates(preamble, intro)) | days)
    out.study_type = _study_type(intro)
    out.duration_minutes = _duration(intro)
    out.impression = _impression(impression) if "impression" in sections else None
    out.epileptiform = _epileptiform(findings_text)
    out.slowing, out.slowing_location = _slowing(findings_text)
    _seizures(findings_text, impression, out)
    out.seizure_present = out.seizure_present or any(e["kind"] == "seizure" for e in out.events)
    out.medications = _medications(fixed.get("medications", ""))
    hr = re.search(r"\b(\d{2,3})\s*(bpm|beats)", fixed.get("hr", ""), re.I) or re.match(
        r"\s*(\d{2,3})\s*\.?\s*$", fixed.get("hr", "")
    )
    out.heart_rate = int(hr.group(1)) if hr else None
    return out


def _age_and_sex(history: str, description: str) -> tuple[int | None, str | None]:
    """Age and sex as the history states them (`a 37-year-old woman`, `62 y/o M`, `Mrs.`, else `she`/`he`)."""
    in_history = _AGE.search(history)
    match = in_history or _AGE.search(description)
    age = int(match.group(1) or match.group(2)) if match else None
    after = history[in_history.end() :] if in_history else history
    if sex := _SEX.search(after) or _SEX.search(history):
        return age, _SEX_WORDS[sex.group(1).lower()]
    if in_history and (letter := _SEX_LETTER.match(after)):
        return age, letter.group(1)
    if title := _TITLE_SEX.search(history):
        return age, "M" if title.group(1) == "Mr" else "F"
    if pronoun := _PRONOUN.search(history):
        return age, "F" if pronoun.group(1).lower() == "she" else "M"
    return age, None


_DATE_LINE = re.compile(
    r"\s*(?:dates? of (?:the )?(?:study|service|recording|monitoring|exam|test)|study dates?|recording dates?)\s*:",
    re.I,
)


def study_dates(preamble: str, intro: str) -> list[str]:
    """Dates of the study stated by a `Date(s) of Study` line and by the introduction's `began on / obtained on`."""
    found: set[str] = set()
    for line in preamble.splitlines():
        if _DATE_LINE.match(correct_typos(line)):
            found |= {d.isoformat() for _, _, d in find_dates(correct_typos(line))}
    match = re.search(r"(began on|obtained on|performed on|recorded on)(.*)", intro, re.I)
    if match:
        found |= {d.isoformat() for _, _, d in find_dates(match.group(2))}
    return sorted(found)


_DAY_LINE = re.compile(
    r"^\s*(?:long[- ]?term|continuous|prolonged|ambulatory|video)[a-z -]{0,40}?(?:monitoring|eeg|recording|study)"
    r"\s*[,:;-]?\s*(?:from\s+|of\s+|on\s+)?",
    re.I,
)
_TIME_TEXT = r"\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?"
_EVENT_TIME = re.compile(r"\bEVENT\s+TIME\s*:?\s*(?P<time>" + _TIME_TEXT + r")\s*[:,.-]?\s*(?P<desc>.*)$", re.I)
_AT_TIME = re.compile(r"\bAt (?P<time>" + _TIME_TEXT + r"),? (?P<desc>[^.]*)", re.I)


def _day(line: str) -> dict[str, Any] | None:
    """A monitoring day opened by `line` (`Long-Term Monitoring, February 3, 2007 to February 4, 2007`), or None."""
    match = _DAY_LINE.match(line)
    if not match:
        return None
    dates = find_dates(line)
    if not dates or dates[0][0] != match.end():
        return None
    end = dates[1][2] if len(dates) > 1 else dates[0][2]
    return {"start": dates[0][2].isoformat(), "end": end.isoformat(), "events": []}


def _event_kind(description: str) -> str:
    lower = description.lower()
    if "button" in lower:
        return "pushbutton"
    at = lower.find("seizure")
    return "seizure" if at >= 0 and not _negated(lower, at) else "event"


def timeline(text: str) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(monitoring days, events): days opened by their date lines, each with its `EVENT TIME` and `At hh:mm` events.

    An `EVENT TIME` entry's description runs on over the following lines up to a blank line or a heading.
    """
    days: list[dict[str, Any]] = []
    events: list[dict[str, str]] = []
    pending: dict[str, str] | None = None

    def add(time_text: str, description: str) -> dict[str, str] | None:
        time = parse_time(time_text)
        if time is None:
            return None
        event = {"time": time, "kind": "", "description": description.strip()}
        events.append(event)
        if days:
            days[-1]["events"].append(event)
        return event

    for names, line, opened in walk(text):
        if opened or not line.strip():
            pending = None
        if not line.strip():
            continue
        if day := _day(line):
            days.append(day)
            pending = None
        elif match := _EVENT_TIME.search(line):
            pending = add(match.group("time"), match.group("desc"))
        elif pending is not None:
            pending["description"] = f"{pending['description']} {line.strip()}".strip()
        elif set(names) & set(FINDING_SECTIONS):
            for match in _AT_TIME.finditer(line):
                add(match.group("time"), match.group("desc"))
    for event in events:
        event["kind"] = _event_kind(correct_typos(event["description"]))
    return days, [{"time": e["time"], "kind": e["kind"]} for e in events]


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
    if re.search(r"\bno abnormalit|\bwithin normal limits\b|\bunremarkable\b", lower):
        return "normal"
    if re.search(r"\babnormal\b|\bremarkable for\b|\bconsistent with an? [a-z ]*encephalopathy\b", lower):
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


_GENERALIZED = re.compile(
    r"\b(?:diffuse(?:ly)?|generali[sz]ed)\b[^.;]{0,25}?\b(?:slow\w*|theta|delta)\b"
    r"|\bslowing of the background\b|\bbackground (?:is )?slow",
    re.I,
)


def _slowing(text: str) -> tuple[str | None, str | None]:
    """("generalized", None), ("focal", location) or (None, None); slowing during hyperventilation is normal."""
    found = [s for s in sentences(text) if "hyperventilation" not in s.lower()]
    for sentence in found:
        match = _GENERALIZED.search(sentence)
        if match and not _negated(sentence, match.start()):
            return "generalized", None
    for sentence in found:
        lower = sentence.lower()
        where = next((loc for loc in sorted(LOCATIONS, key=len, reverse=True) if loc in lower), None)
        at = [i for i in (lower.find("slowing"), lower.find("focal")) if i >= 0]
        if "slowing" in lower and ("focal" in lower or where) and not _negated(sentence, min(at)):
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
            for part in re.split(r"[,\s]+", value)[:4]:  # the name, not what may follow it on the line
                if not re.fullmatch(r"[A-Z][A-Za-z'.-]*", part):
                    break
                ids.names.append(part)
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
