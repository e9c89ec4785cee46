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
from datetime import date, timedelta
from pathlib import Path

from pipelines import PROJECT_ROOT
from pipelines.config import ConfigError, EegDeidConfig
from pipelines.eeg.extract import DATE_PATTERNS, Identifiers, find_dates

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


def shift(d: date, days: int) -> date:
    return d - timedelta(days=days)


def cap_age(age: int | None) -> tuple[int | None, bool]:
    if age is None:
        return None, False
    return (AGE_CAP, True) if age >= AGE_CAP else (age, False)


_PHONE = re.compile(r"\(?\b\d{3}\)?[ .-]?\d{3}[ .-]\d{4}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_LONG_NUMBER = re.compile(r"\b(?!\d{4}-\d{2}-\d{2}\b)\d[\d-]{5,}\d\b")  # ISO dates (already shifted) excepted
_STREET = re.compile(
    r"\b\d{1,6} (?:[A-Z][a-z]+ ){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl)"
    r"\b\.?(?:,? (?:Apt\.? ?\w+|Suite \w+))?(?:, [A-Z][a-z]+(?: [A-Z][a-z]+)?)?(?:,? [A-Z]{2})?(?: \d{5})?"
)
_TITLE = re.compile(r"\b(Dr|Mr|Mrs|Ms|Miss|Prof)\.? [A-Z][a-zA-Z'-]+(?:[ -][A-Z][a-zA-Z'-]+)?")
_RELATION = re.compile(
    r"\b(mother|father|wife|husband|daughter|son|sister|brother|grandmother|grandfather|guardian|partner|spouse)"
    r"(,)? [A-Z][a-zA-Z'-]+(?: [A-Z][a-zA-Z'-]+)?"
)
_SIGNED = re.compile(r"\b(signed by|dictated by|read by|reviewed by|attending:?)\s+[^,\n]*", re.I)
_LABELLED = re.compile(
    r"^(\s*(?:patient name|name|patient|mrn|mr#|mr number|medical record number|record number|dob|date of birth|"
    r"birth date|address|phone|telephone|referring physician|physician|ssn|account|accession)\s*:).*$",
    re.I | re.M,
)
_AGE = re.compile(r"\b(\d{2,3})(?=[- ]year[- ]old\b| y/o\b| yo\b| years? of age\b)", re.I)


def deidentify_text(text: str, ids: Identifiers, days: int) -> str:
    """Text with identifiers replaced by [NAME], [ID], [PHONE], [ADDRESS], [EMAIL], [REDACTED] and dates shifted.

    Known identifiers of the report (`ids`) are removed wherever they occur; patterns catch the usual others
    (labelled lines, titles and relations followed by names, signatures, phone numbers, long digit runs,
    street addresses, e-mail addresses). Dates move back by `days` and are written as ISO dates.
    """
    out = _LABELLED.sub(lambda m: f"{m.group(1)} [REDACTED]", text)
    for form in sorted(set(ids.mrn_forms) | ({ids.mrn} if ids.mrn else set()), key=len, reverse=True):
        out = re.sub(rf"(?<!\d){re.escape(form)}(?!\d)", "[ID]", out)
    for address in ids.addresses:
        out = out.replace(address, "[ADDRESS]")
    out = _STREET.sub("[ADDRESS]", out)
    out = _EMAIL.sub("[EMAIL]", out)
    out = _PHONE.sub("[PHONE]", out)
    out = _shift_dates(out, days)
    out = _LONG_NUMBER.sub("[ID]", out)
    out = _SIGNED.sub(lambda m: f"{m.group(1)} [NAME]", out)
    out = _TITLE.sub(lambda m: f"{m.group(1)}. [NAME]" if m.group(1) in ("Dr", "Prof") else "[NAME]", out)
    out = _RELATION.sub(lambda m: f"{m.group(1)}{m.group(2) or ''} [NAME]", out)
    names = {p for n in (*ids.names, *ids.physicians) for p in re.split(r"[\s,]+", n) if len(p) >= 2}
    for part in sorted(names, key=len, reverse=True):
        out = re.sub(rf"\b{re.escape(part)}\b", "[NAME]", out, flags=re.I)
    out = _AGE.sub(lambda m: "90+" if int(m.group(1)) >= AGE_CAP else m.group(1), out)
    return out


def _shift_dates(text: str, days: int) -> str:
    pieces, last = [], 0
    for start, end, d in find_dates(text):
        pieces.append(text[last:start])
        pieces.append(shift(d, days).isoformat())
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


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
    if any(p.search(name.replace("_", " ")) for p in DATE_PATTERNS) or _NAME_DATE.search(name):
        return "h_" + keyed_hash(key, "file", name)
    return name


_NAME_DATE = re.compile(
    r"(?<!\d)(19|20)\d{2}[-_.]?[01]\d[-_.]?[0-3]\d(?!\d)|(?<!\d)[0-3]?\d[-_.][0-3]?\d[-_.](19|20)\d{2}(?!\d)"
)
