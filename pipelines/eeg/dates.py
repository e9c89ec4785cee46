"""Dates as clinicians write them: every common form found in text, partial dates completed from context. Pure.

A mention is completed when the text says enough: `February 3 to February 4, 2007` gives both days their year,
and a date without a year (`February 3`, `the 14th`) takes the year and month of the report's latest full date
when there is one (the nearest such day to it). What cannot be completed keeps its year (`February 2007`) or
nothing at all, so that de-identification can reduce it to the year or remove it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

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
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class DateMention:
    start: int
    end: int
    date: date | None  # the day, when stated or completed
    year: int | None  # the year when only the year is known


def one_edit(a: str, b: str) -> bool:
    """True when `a` and `b` differ by one substitution, insertion, deletion or swap of adjacent letters."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def month_number(word: str) -> int | None:
    """1-12 for a month's name or abbreviation (`Sept`, a typo one edit away from a full name), else None.

    `may` and `march` count only capitalised, as they are also verbs.
    """
    lower = word.lower().rstrip(".")
    if lower in ("may", "march") and word[0].islower():
        return None
    for i, m in enumerate(MONTHS):
        if lower == m or lower == m[:3] or (m == "september" and lower == "sept"):
            return i + 1
    if len(lower) >= 5:
        near = [i for i, m in enumerate(MONTHS) if one_edit(lower, m)]
        if len(near) == 1:
            return near[0] + 1
    return None


def _year(text: str) -> int:
    y = int(text.lstrip("'"))
    if len(text.lstrip("'")) == 2:
        return 2000 + y if y < 50 else 1900 + y
    return y


_WD = r"(?P<wd>\b(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?)\.?,?\s+)?"
_MON = r"\b(?P<mon>[A-Za-z]{3,9})\.?"
_ORD = r"(?:st|nd|rd|th)?"
_RANGE = r"\s*(?:-|–|to|through|thru|until|and)\s*"
_PATTERNS = (
    # 2007-02-03, 2007/02/03
    re.compile(r"(?<![\d.])(?P<y>(?:19|20)\d{2})(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?!\d)"),
    # 2/3/2007, 2/3/07, 2-3-07 (month first; a first number over 12 is the day)
    re.compile(_WD + r"(?<![\d/.])(?P<m>\d{1,2})(?P<s>[/-])(?P<d>\d{1,2})(?P=s)(?P<y>\d{4}|\d{2})(?![\d/])", re.I),
    # 3.2.2007 (day first)
    re.compile(r"(?<![\d.])(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})(?!\d|\.\d)"),
    # February 3-4, 2007; Feb 3rd to the 5th
    re.compile(
        _WD + _MON + r"\s+(?P<d>\d{1,2})" + _ORD + _RANGE + r"(?:the\s+)?(?P<d2>\d{1,2})" + _ORD + r"\b"
        r"(?:,?\s+(?P<y>\d{4})\b)?",
        re.I,
    ),
    # Tuesday, February 3, 2007; Feb. 3rd; FEB 3 2007
    re.compile(_WD + _MON + r"\s+(?P<d>\d{1,2})" + _ORD + r"\b(?!:)(?:,?\s+(?P<y>\d{4})\b)?", re.I),
    # 3 February 2007, 3rd of February, 03-Feb-2007, 3-Feb-07
    re.compile(
        _WD + r"(?<![\d.:/])(?P<d>\d{1,2})" + _ORD + r"(?:\s+of)?(?:\s+|-)" + _MON + r"(?:(?:,?\s+|-)(?P<y>\d{4})\b"
        r"|-(?P<y2>\d{2})\b)?",
        re.I,
    ),
    # February 2007, 02/2007
    re.compile(_MON + r",?\s+(?P<y>(?:19|20)\d{2})\b", re.I),
    re.compile(r"(?<![\d/.])(?P<m>\d{1,2})/(?P<y>(?:19|20)\d{2})(?![\d/])"),
    # on 4/14, 4/14-4/16/2006: a month and day without a year, only after a cue word or before a range's end
    re.compile(
        r"(?:\b(?P<cue>on|since|from|to|until|through|of|dated?|and|between|before|after)\s+)?(?<![\d/.])"
        r"(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])(?P<rng>(?=\s*(?:-|–|to|through)\s*\d{1,2}/))?",
        re.I,
    ),
    # the 14th (not "the 3rd seizure")
    re.compile(r"\bthe\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b(?!\s+(?!(?:of|at|and|to|in|on|when|with)\b)[a-z])", re.I),
)
_CONNECTOR = re.compile(r"^" + _RANGE + r"(?:the\s+)?$", re.I)
_PART = tuple[int, int, int | None, int | None, int | None]


def _parts(match: re.Match) -> list[_PART]:
    """(start, end, year, month, day) of the dates a pattern matched; none when a name is no month."""
    g = match.groupdict()
    if "cue" in g and not g["cue"] and g["rng"] is None:
        return []
    if g.get("mon") is not None:
        month = month_number(g["mon"])
        if month is None:
            return []
    else:
        month = int(g["m"]) if g.get("m") else None
    y = g.get("y") or g.get("y2")
    year = _year(y) if y else None
    day = int(g["d"]) if g.get("d") else None
    if month and day and month > 12 and day <= 12:
        month, day = day, month
    start = min(match.start(k) for k in ("wd", "mon", "m", "d", "y") if g.get(k))
    if g.get("d2"):
        first_end = match.end("d") + len(re.match(_ORD, match.string[match.end("d") :]).group(0))  # type: ignore[union-attr]
        return [(start, first_end, year, month, day), (match.start("d2"), match.end(), year, month, int(g["d2"]))]
    return [(start, match.end(), year, month, day)]


def _make(year: int | None, month: int | None, day: int | None) -> date | None:
    try:
        return date(year, month, day) if year and month and day else None
    except ValueError:
        return None


def _nearest(anchor: date, month: int | None, day: int) -> date | None:
    """The day `day` (of `month`, or of any month) nearest to `anchor`."""
    candidates = []
    for shift in (-1, 0, 1):
        if month:
            candidates.append(_make(anchor.year + shift, month, day))
        else:
            m = (anchor.month - 1 + shift) % 12 + 1
            y = anchor.year + (anchor.month - 1 + shift) // 12
            candidates.append(_make(y, m, day))
    found = [c for c in candidates if c]
    return min(found, key=lambda c: abs((c - anchor).days)) if found else None


def date_mentions(text: str) -> list[DateMention]:
    """Every date of `text` in order, completed where the text allows (see the module's docstring)."""
    raw = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            raw.extend(_parts(match))
    raw.sort(key=lambda r: (r[0], -r[1]))
    kept, last_end = [], -1
    for part in raw:
        if part[0] >= last_end:
            kept.append(part)
            last_end = part[1]
    full = [_make(y, m, d) for _, _, y, m, d in kept]
    anchor = max((d for d in full if d), default=None)
    out = []
    for i, (start, end, year, month, day) in enumerate(kept):
        found = full[i]
        if found is None and day and year is None and i + 1 < len(kept):
            nxt = kept[i + 1]
            if nxt[2] and _CONNECTOR.match(text[end : nxt[0]]):
                m = month or nxt[3]
                found = _make(
                    nxt[2] - (m is not None and nxt[3] is not None and (m, day) > (nxt[3], nxt[4] or 0)), m, day
                )
        if found is None and day and year is None and anchor and (month is None or month <= 12):
            found = _nearest(anchor, month, day)
        out.append(DateMention(start, end, found, year if found is None and month and month <= 12 else None))
    return out


def find_dates(text: str) -> list[tuple[int, int, date]]:
    """(start, end, date) of every date of `text` that is stated in full or completed from context."""
    return [(m.start, m.end, m.date) for m in date_mentions(text) if m.date]


def shift(d: date, days: int) -> date:
    return d - timedelta(days=days)


_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2}))(?::\d{2})?(?:\s*([ap])\.?m\.?)?", re.I)


def parse_time(text: str) -> str | None:
    """`HH:MM` (24-hour) of the first clock time in `text` (`10:04`, `10:04:33`, `2:15 p.m.`), else None."""
    match = _TIME.search(text)
    if not match:
        return None
    hh, mm = int(match.group(1)), int(match.group(2))
    if match.group(3):
        hh = hh % 12 + (12 if match.group(3).lower() == "p" else 0)
    return f"{hh:02d}:{mm:02d}" if hh < 24 and mm < 60 else None
