"""De-identification for research outputs: keyed-hash ids, secret per-patient date shifts, scrubbed text. Pure.

The key comes from an environment variable or a file outside the repository, never from configuration in git;
without one nothing runs (`load_key` raises). Patient ids become HMAC-SHA256 keyed hashes of the best identity a
report offers (record number, else name and birth date, else the report itself); every date of a patient moves
back by the same secret number of days (1..max_shift_days, derived from the key and the identity), so intervals
survive and calendar dates do not. Ages of 90 and over are reported as 90 (HIPAA Safe Harbor).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from pipelines import PROJECT_ROOT
from pipelines.config import ConfigError, EegDeidConfig
from pipelines.eeg.dates import WEEKDAYS, date_mentions, shift
from pipelines.eeg.extract import LEXICON, Identifiers

log = logging.getLogger(__name__)

AGE_CAP = 90


def load_key(config: EegDeidConfig, *, environ: Mapping[str, str] | None = None) -> bytes:
    """The secret key: `$<key_env>`, else the contents of `key_file` (which must lie outside the repository)."""
    env = os.environ if environ is None else environ
    raw = env.get(config.key_env, "") if config.key_env else ""
    if not raw and config.key_file:
        path = Path(config.key_file).expanduser().resolve()
        if path == PROJECT_ROOT or PROJECT_ROOT in path.parents:
            raise ConfigError("eeg.deid.key_file lies inside the repository; keep the key outside git")
        if not path.is_file():
            raise ConfigError("eeg.deid.key_file does not name a readable file")
        if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("the de-identification key file is readable by other users; restrict it with chmod 600")
        raw = path.read_text(encoding="utf-8").strip()
    if not raw:
        raise ConfigError(
            f"no de-identification key: set ${config.key_env} or eeg.deid.key_file (a file outside the repository);"
            " refusing to write research outputs without one"
        )
    key = raw.encode("utf-8")
    if len(key) < config.min_key_bytes:
        raise ConfigError(f"the de-identification key is shorter than eeg.deid.min_key_bytes={config.min_key_bytes}")
    return key


def keyed_hash(key: bytes, kind: str, value: str, *, length: int = 20) -> str:
    """A stable pseudonym of `value`: hex HMAC-SHA256 under `key`, domain-separated by `kind`."""
    return hmac.new(key, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:length]


def normalize_name(name: str) -> str:
    return " ".join(sorted(re.sub(r"[^a-z ]", " ", name.lower()).split()))


def patient_identity(ids: Identifiers, report_id: str) -> str:
    """The identity a report's patient key derives from; the weakest falls back to the report itself."""
    if ids.mrn:
        return f"mrn:{ids.mrn}"
    if ids.names and ids.birthdate:
        return f"name:{normalize_name(' '.join(ids.names))}|{ids.birthdate.isoformat()}"
    return f"report:{report_id}"


def shift_days(key: bytes, identity: str, max_days: int) -> int:
    """The secret per-patient shift, 1..max_days days back."""
    digest = hmac.new(key, f"shift\x1f{identity}".encode(), hashlib.sha256).digest()
    return 1 + int.from_bytes(digest[:8], "big") % max(1, max_days)


def cap_age(age: int | None) -> tuple[int | None, bool]:
    if age is None:
        return None, False
    return (AGE_CAP, True) if age >= AGE_CAP else (age, False)


# Name grammar: a capitalised word (O'Neil, Smith-Jones, McDonald, SMITH), an initial (J., A.B.), or a particle
# and a word (van Berg); one to three of them, perhaps after a title.
_TOKEN = r"(?:(?:[A-Z]\.){1,3}|[A-Z][A-Za-z'’-]+|(?:van|von|de|der|del|da|di|du|le|la)\s+[A-Z][A-Za-z'’-]+)"
_NAME = rf"(?:(?:Dr|Mr|Mrs|Ms|Miss|Prof)\.?\s+)?{_TOKEN}(?:[ \t]+{_TOKEN}){{0,2}}"
_TITLE = re.compile(
    rf"\b(?P<title>Dr|DR|Doctor|Mr|MR|Mrs|MRS|Ms|MS|Miss|Prof|Professor)\.?\s+(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN}){{0,2}})"
)
_CUES = (
    _TITLE,
    # labels and verbs of authorship, anywhere in a line: `Tech: A.B.`, `Dictated by Jane Doe`, `cc: Smith`
    re.compile(
        r"(?i:\b(?:(?:eeg\s+)?tech(?:nologist|nician)?s?|attending|resident|fellow|(?:referring|reading|interpreting)"
        r"\s+(?:physician|doctor|provider)|physician|neurologist|pcp|primary care(?:\s+(?:physician|provider))?|nurse|"
        r"provider|cc|contact|emergency contact|guardian|caregiver|informant|next of kin|name|patient name|"
        r"(?:electronically\s+)?(?:signed|dictated|read|reviewed|interpreted|transcribed|performed|recorded|seen)"
        r"(?:\s+and\s+\w+)?\s+by)(?![A-Za-z]))\s*[:#-]?\s*(?P<name>" + _NAME + r"(?:,\s*" + _TOKEN + r")?)"
    ),
    # relatives and the patient by name: `her daughter, Agnes Quimby`, `mother's name is Ann`, `the patient Zelda`
    re.compile(
        r"(?i:\b(?:mother|father|mom|dad|wife|husband|daughter|son|sister|brother|grandmother|grandfather|grandson|"
        r"granddaughter|aunt|uncle|cousin|niece|nephew|guardian|partner|spouse|boyfriend|girlfriend|fianc[eé]e?|"
        r"friend|neighbou?r|roommate|caregiver|patient|pt)(?:'s)?(?:,|\s+name\s+is|\s+named)?)\s+"
        r"(?P<name>" + _NAME + r")"
    ),
    # credentials after a name: `John Smith, MD`, `A. Lee R. EEG T.`
    re.compile(
        r"(?P<name>" + _NAME + r"),?\s+(?:M\.?D\.?|D\.?O\.?|Ph\.?D\.?|R\.?N\.?|N\.?P\.?|PA-C|R\.?\s?EEG\s?T\.?|REEGT|"
        r"CNIM|CLTM|RPSGT|MBBS|LPN)(?![A-Za-z])"
    ),
    # `Jane Doe is a 45-year-old`
    re.compile(r"(?P<name>" + _NAME + r")\s+(?:is|was)\s+an?\s+\d{1,3}[- ]?(?:year|yr|y/o|yo|month|week|day)"),
)
_NOT_NAMES = {"this", "the", "he", "she", "his", "her", "patient", "pt", "dr", "mr", "mrs", "ms", "miss", "prof", "eeg"}
_NOT_NAMES |= {"name", "names", "phone", "fax", "record", "number", "address", "date", "age", "is", "was", "has", "had"}
_NOT_NAMES |= {"md", "do", "rn", "np", "phd", "tech", "technologist", "physician", "signed", "by", "and", "or"}
_NOT_NAMES |= {"a", "an", "of", "in", "on", "at", "to", "with", "for", "from", "as", "are", "were", "be", "it", "its"}
_NOT_NAMES |= {"that", "they", "them", "lives", "family", "home", "who", "per", "via", "not", "no", "yes", "none"}
_NOT_NAMES |= LEXICON | set(WEEKDAYS)

_EMAIL = re.compile(r"\b[\w.+'-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(
    r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"]*[^\s<>\".,;:)]"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|io|us|info|health)(?:/[^\s<>\"]*[^\s<>\".,;:)])?\b",
    re.I,
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]*:){3})[0-9A-Fa-f:]{4,39}(?![\w:])")
_PHONE = re.compile(
    r"(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b|\b\d{3}[.-]\d{4}\b|\b\d{10}\b"
    r"|(?i:\b(?:ext\.?|extension|pager|beeper)\s*#?\s*(?:\d{3}[.-])?\d{2,6}\b|\bx\d{3,6}\b)"
)
_SSN = re.compile(r"\b\d{3}[ -]\d{2}[ -]\d{4}\b")
_LABELLED_ID = re.compile(
    r"(?i:\b(?:mrn|mr\s?#|mr number|medical\s+record(?:\s+(?:number|no\.?|#))?|record\s*(?:number|no\.|#)|acct|account(?:\s+(?:number|no\.?))?|"
    r"ssn|social security(?:\s+(?:number|no\.?))?|member(?:\s+id)?|subscriber(?:\s+id)?|policy(?:\s+(?:number|no\.?))?|"
    r"health\s*plan(?:\s+(?:id|number|no\.?))?|insurance(?:\s+(?:id|number|no\.?))?|medicaid|medicare|"
    r"licen[cs]e(?:\s+(?:number|no\.?|plate))?|dea|npi|serial(?:\s+(?:number|no\.?))?|s/n|device(?:\s+(?:id|serial))?|"
    r"lot|vin|plate|accession(?:\s+(?:number|no\.?))?|encounter|visit|case|certificate|badge|id|identifier)"
    r"(?![A-Za-z]))"
    r"\s*(?:#|:|no\.?|number)?\s*:?\s*(?P<value>(?=[A-Za-z0-9./-]*\d)[A-Za-z0-9](?:[A-Za-z0-9./-]*[A-Za-z0-9])?)"
)
_LONG_NUMBER = re.compile(r"(?<![\d-])(?!\d{4}-\d{2}-\d{2}(?!\d))\d(?:[-/]?\d){4,}(?!\d)")  # shifted ISO dates excepted
_CODE = re.compile(r"\b(?=[\d-]*[A-Za-z])(?=[A-Za-z-]*\d)[A-Za-z0-9][A-Za-z0-9-]{4,}[A-Za-z0-9]\b")
_UNIT = re.compile(r"^\d+(?:mg|mcg|g|kg|ml|hz|khz|uv|mv|ms|sec|s|min|hrs?|bpm|mm|cm|st|nd|rd|th)$", re.I)
_MIXED = re.compile(r"(?=[A-Za-z]*\d[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{5,}")
_STREET = re.compile(
    r"\b\d{1,6}\s+(?:[A-Z][a-z]+\.?\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|"
    r"Way|Place|Pl|Terrace|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Pike|Trail|Square|Sq)\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*\w+)?|\bP\.?\s?O\.?\s+Box\s+\d+",
)
_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|"
    "PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|"
    "Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|"
    "Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|"
    "New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|"
    "South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming"
)
_PLACE = re.compile(
    r"\b(?:[A-Z][a-zA-Z'.-]+\s+){0,2}[A-Z][a-zA-Z'.-]+,\s*(?:" + _STATES + r")\b(?:\s+\d{5}(?:-\d{4})?)?"
    r"|\b(?:[A-Z][a-zA-Z'.-]+\s+){1,4}(?:Hospital|Medical Center|Health System|Health Center|Clinic|Nursing Home|"
    r"Rehabilitation Center|Rehab|County|Township|Parish|Borough|Village|Heights)\b",
)
_PLACE_CUE = re.compile(
    r"(?i:\b(?:lives|living|resides|residing|resident|moved|relocated|transferred|born|grew up|visiting|"
    r"travel(?:l)?ed|home)\s+(?:in|at|from|to|of|near))\s+(?P<place>(?:the\s+)?(?:[A-Z][a-zA-Z'.-]+\s?){1,4})"
)
_LABELLED = re.compile(
    r"^(\s*(?:patient name|name|patient|mrn|mr#|mr number|medical record number|record number|dob|date of birth|"
    r"birth date|address|phone|telephone|fax|e-?mail|referring physician|physician|attending|resident|fellow|"
    r"tech(?:nologist|nician)?|eeg tech(?:nologist)?|ssn|social security number|account|acct|accession|"
    r"insurance|health plan|policy|member id|license|licence|device|serial(?: number)?|ip|ip address|url|website|"
    r"location|facility|hospital|city|county|zip|room|bed|guardian|contact|emergency contact|next of kin|cc|pcp)"
    r"\s*#?\s*:).*$",
    re.I | re.M,
)
_AGE = re.compile(
    r"\b(?P<n>\d{2,3})(?=\s*-?\s*(?:years?|yrs?|y)\s*-?\s*(?:old|/o|\.o\.|o\b)|\s*yo\b|\s+years? of age)"
    r"|(?i:\bage[d:]?\s*)(?P<m>\d{2,3})\b",
    re.I,
)
_AGE_WORDS = re.compile(
    r"\b(?:ninety|one hundred(?: and)?)(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?"
    r"(?=[- ]years?[- ]old|\s+years? of age)",
    re.I,
)
_WEEKDAY = re.compile(r"\b(?:" + "|".join(WEEKDAYS) + r")s?\b", re.I)
_HOLIDAY = re.compile(
    r"\b(?:Christmas(?: Eve| Day)?|Thanksgiving|New Year'?s(?: Eve| Day)?|Easter|Halloween|Independence Day|"
    r"Labor Day|Memorial Day|Valentine'?s Day|Fourth of July)\b",
    re.I,
)
_YEAR = re.compile(r"(?<![\d-])(?:19|20)\d{2}(?![\d-])")


def names_in(text: str) -> set[str]:
    """Name words that cues in `text` point at (titles, labels, relatives, credentials), for removal everywhere."""
    found = set()
    for pattern in _CUES:
        for match in pattern.finditer(text):
            for word in re.split(r"[\s,]+", match.group("name")):
                word = word.strip(".,")
                if len(word.replace(".", "")) >= 2 and word.lower().rstrip(".") not in _NOT_NAMES:
                    found.add(word)
    return found


def deidentify_text(text: str, ids: Identifiers, days: int) -> str:
    """Text with HIPAA Safe Harbor's identifiers replaced ([NAME], [ID], [PHONE], [ADDRESS], [LOCATION], [EMAIL],
    [URL], [IP], [DATE], [REDACTED]), full dates shifted back `days` days and written as ISO dates.

    Known identifiers of the report (`ids`) and names that cues point at are removed wherever they occur; patterns
    catch the other kinds (labelled lines and values, phone and fax numbers, e-mail, URLs, IP addresses, social
    security and other long numbers and codes, street addresses, places smaller than a state). Dates lose every
    element but the year: a date without a year is completed from the report when it can be, else removed; a
    month and year keeps the year. Ages over 89, and years that reveal them, are aggregated.
    """
    names = names_in(text)
    out = _AGE.sub(_cap_age_text, text)
    out = _AGE_WORDS.sub("90+", out)
    out = _LABELLED.sub(lambda m: f"{m.group(1)} [REDACTED]", out)
    for form in sorted(set(ids.mrn_forms) | ({ids.mrn} if ids.mrn else set()), key=len, reverse=True):
        out = re.sub(rf"(?<!\d){re.escape(form)}(?!\d)", "[ID]", out)
    for address in ids.addresses:
        out = out.replace(address, "[ADDRESS]")
    out = _EMAIL.sub("[EMAIL]", out)
    out = _URL.sub("[URL]", out)
    out = _IPV4.sub("[IP]", out)
    out = _IPV6.sub("[IP]", out)
    out = _STREET.sub("[ADDRESS]", out)
    out = _SSN.sub("[ID]", out)
    out = _PHONE.sub("[PHONE]", out)
    out = _LABELLED_ID.sub(lambda m: m.group(0)[: m.start("value") - m.start()] + "[ID]", out)
    out = _dates(out, days)
    out = _LONG_NUMBER.sub("[ID]", out)
    out = _CODE.sub(_code, out)
    out = _PLACE_CUE.sub(lambda m: m.group(0)[: m.start("place") - m.start()] + "[LOCATION] ", out)
    out = _PLACE.sub(_place, out)
    for pattern in _CUES:
        out = pattern.sub(_scrub_name, out)
    known = {p for n in (*ids.names, *ids.physicians) for p in re.split(r"[\s,]+", n) if len(p) >= 2}
    known = {p for p in known if p.lower().strip(".") not in _NOT_NAMES}
    for part in sorted(known, key=len, reverse=True):
        out = re.sub(rf"(?<![A-Za-z\[]){re.escape(part)}(?![A-Za-z\]])", "[NAME]", out, flags=re.I)
    for part in sorted(names, key=len, reverse=True):
        for form in {part, part.upper(), part.capitalize()}:
            out = re.sub(rf"(?<![A-Za-z\[]){re.escape(form)}(?![A-Za-z\]])", "[NAME]", out)
    return out


def _code(match: re.Match) -> str:
    """A letters-and-digits code (`A1234567`, `XJ-2291-K`) as [ID]; units (`1000mg`) and montages (`FP1-F7`) stay."""
    token = match.group(0)
    digits = sum(c.isdigit() for c in token)
    if _UNIT.match(token) or not (digits >= 4 or any(_MIXED.fullmatch(p) for p in token.split("-"))):
        return token
    return "[ID]"


def _cap_age_text(match: re.Match) -> str:
    number = match.group("n") or match.group("m")
    return match.group(0).replace(number, "90+") if int(number) >= AGE_CAP else match.group(0)


def _scrub_name(match: re.Match) -> str:
    words = [w.strip(".,").lower() for w in match.group("name").split()]
    if all(w in _NOT_NAMES for w in words):
        return match.group(0)
    return match.group(0)[: match.start("name") - match.start()] + "[NAME]"


def _place(match: re.Match) -> str:
    words = match.group(0).split()
    return match.group(0) if all(w.lower().strip(".,") in _NOT_NAMES or w == "[NAME]" for w in words) else "[LOCATION]"


def _dates(text: str, days: int) -> str:
    """Full dates shifted, a month and year reduced to the year, other dates, weekdays and holidays removed;
    dates and years 90 or more years before the report's latest year removed (they reveal an age over 89)."""
    mentions = date_mentions(text)
    years = [m.date.year if m.date else m.year for m in mentions] + [int(y) for y in _YEAR.findall(text)]
    oldest = max((y for y in years if y), default=0) - AGE_CAP
    pieces, last = [], 0
    for m in mentions:
        between = text[last : m.start]
        pieces.append(" to " if last and between.strip() in ("-", "–") else between)  # 2007-01-01 to 2007-01-02
        if m.date and m.date.year > oldest:
            pieces.append(shift(m.date, days).isoformat())
        elif m.year and m.year > oldest:
            pieces.append(str(m.year))
        else:
            pieces.append("[DATE]")
        last = m.end
    pieces.append(text[last:])
    out = "".join(pieces)
    out = _YEAR.sub(lambda y: "[DATE]" if int(y.group(0)) <= oldest else y.group(0), out)
    out = _WEEKDAY.sub("[DATE]", out)
    return _HOLIDAY.sub("[DATE]", out)


def safe_file_id(name: str, key: bytes, *, identifiers: tuple[str, ...] = ()) -> str:
    """`name` when it carries none of `identifiers` (names, record numbers, dates), else a keyed hash of it.

    Record numbers match as digit runs (leading zeros and separators ignored); names match case-insensitively.
    """
    lower = name.lower()
    digits = [d.lstrip("0") for d in re.findall(r"\d+", name.replace("-", ""))]
    for ident in identifiers:
        ident_digits = re.sub(r"\D", "", ident).lstrip("0")
        if ident_digits and len(ident_digits) >= 5 and any(ident_digits in d for d in digits):
            return "h_" + keyed_hash(key, "file", name)
        if not ident_digits and len(ident) >= 3 and re.search(rf"(?<![a-z]){re.escape(ident.lower())}(?![a-z])", lower):
            return "h_" + keyed_hash(key, "file", name)
    if date_mentions(name.replace("_", " ")) or _NAME_DATE.search(name):
        return "h_" + keyed_hash(key, "file", name)
    return name


_NAME_DATE = re.compile(
    r"(?<!\d)(19|20)\d{2}[-_.]?[01]\d[-_.]?[0-3]\d(?!\d)|(?<!\d)[0-3]?\d[-_.][0-3]?\d[-_.](19|20)\d{2}(?!\d)"
)
