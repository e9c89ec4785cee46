"""Lenient EDF/EDF+ headers, signals on demand, and an EDF writer. Pure: bytes in, values out.

Strict readers refuse files that real archives are full of: numbers with decimal commas or NUL padding, a
header-size field that disagrees with the signal count, `-1` data records, truncated data, date separators
other than dots, labels like `Fc5.`, data sections mangled by a text-mode copy. `parse_header` accepts what it
can interpret unambiguously and lists each thing it tolerated (short codes, never field values, so the list is
safe to log and to store); what it cannot interpret raises `EdfHeaderError` with a reason for the quarantine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

BLOCK = 256
MAX_SIGNALS = 4096
ANNOTATIONS_LABEL = "EDF Annotations"
REPLACEMENT = b"\xef\xbf\xbd"  # U+FFFD in UTF-8: what a text-mode copy leaves for a byte it could not decode

HEADER_FIELDS: tuple[tuple[str, int], ...] = (
    ("version", 8),
    ("patient", 80),
    ("recording", 80),
    ("startdate", 8),
    ("starttime", 8),
    ("header_bytes", 8),
    ("reserved", 44),
    ("n_records", 8),
    ("record_duration", 8),
    ("n_signals", 4),
)
SIGNAL_FIELDS: tuple[tuple[str, int], ...] = (
    ("label", 16),
    ("transducer", 80),
    ("physical_dimension", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefilter", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
)

# Quarantine reasons.
EMPTY_FILE = "empty_file"
TRUNCATED_HEADER = "truncated_header"
NOT_EDF = "not_edf"
CORRUPT_HEADER = "corrupt_header"
IMPOSSIBLE_VALUE = "impossible_value"
REASONS = (EMPTY_FILE, TRUNCATED_HEADER, NOT_EDF, CORRUPT_HEADER, IMPOSSIBLE_VALUE)

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class EdfHeaderError(ValueError):
    """A header that cannot be interpreted. `reason` is one of `REASONS`; `detail` names the field, not its value."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SignalHeader:
    label: str
    transducer: str
    physical_dimension: str
    physical_min: float
    physical_max: float
    digital_min: int
    digital_max: int
    prefilter: str
    samples_per_record: int

    @property
    def is_annotation(self) -> bool:
        return self.label.strip() == ANNOTATIONS_LABEL

    @property
    def gain(self) -> float:
        return (self.physical_max - self.physical_min) / (self.digital_max - self.digital_min)


@dataclass(frozen=True)
class PatientId:
    """The patient field, parsed. Every part may be missing (None)."""

    code: str | None = None
    sex: str | None = None  # "M" or "F"
    birthdate: date | None = None
    name: str | None = None
    age: float | None = None


@dataclass(frozen=True)
class EdfHeader:
    version: str
    patient_field: str
    recording_field: str
    start: datetime
    header_bytes: int
    edf_plus: str | None  # "C", "D" or None for plain EDF
    n_records: int  # as usable: from the header, or from the file size when the header says -1
    record_duration: float
    signals: tuple[SignalHeader, ...]
    patient: PatientId
    equipment: str | None = None
    admin_code: str | None = None  # the recording field's hospital administration code (an accession number)
    file_size: int | None = None
    records_in_file: int | None = None  # whole records present in the file (None: size unknown)
    text_mode_corruption: bool = False
    tolerated: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_signals(self) -> int:
        return len(self.signals)

    @property
    def record_bytes(self) -> int:
        return 2 * sum(s.samples_per_record for s in self.signals)

    @property
    def duration_s(self) -> float:
        return self.n_records * self.record_duration

    @property
    def data_signals(self) -> list[SignalHeader]:
        return [s for s in self.signals if not s.is_annotation]

    def sample_rate(self, signal: SignalHeader) -> float:
        return signal.samples_per_record / self.record_duration if self.record_duration > 0 else 0.0


# ---------------------------------------------------------------------------------------------------------------
# Header parsing


def header_length(prefix: bytes) -> int:
    """Bytes of the whole header, from the first 256 bytes (256 x (signals + 1)); raises for a bad prefix."""
    if not prefix:
        raise EdfHeaderError(EMPTY_FILE, "the file is empty")
    _check_version(prefix[:8].decode("latin-1"), [])  # a file that is not EDF at all says so, however short
    if len(prefix) < BLOCK:
        raise EdfHeaderError(TRUNCATED_HEADER, f"{len(prefix)} bytes, fewer than the fixed 256-byte header")
    ns = _int(prefix[252:256].decode("latin-1"), "number of signals", [])
    if not 1 <= ns <= MAX_SIGNALS:
        raise EdfHeaderError(IMPOSSIBLE_VALUE, f"number of signals must be 1..{MAX_SIGNALS}")
    return BLOCK * (ns + 1)


def parse_header(data: bytes, *, file_size: int | None = None) -> EdfHeader:
    """Parse an EDF/EDF+ header from the first bytes of a file (more bytes are used as a probe of the data).

    `file_size` (the whole file's, when known) lets the reader check the data section's length and derive
    the number of records when the header says -1.
    """
    tolerated: list[str] = []
    length = header_length(data[:BLOCK])
    if len(data) < length:
        raise EdfHeaderError(TRUNCATED_HEADER, f"{len(data)} bytes, fewer than the {length} the signal count needs")
    if any(b >= 0x80 for b in data[:length]):
        tolerated.append("non_ascii_header_text")
    fixed = _split(data[:BLOCK], HEADER_FIELDS)
    version = _check_version(fixed["version"], tolerated)
    ns = _int(fixed["n_signals"], "number of signals", tolerated)
    header_bytes = _int_or_none(fixed["header_bytes"], tolerated)
    if header_bytes != length:
        tolerated.append("header_bytes_mismatch")

    reserved = fixed["reserved"].strip()
    edf_plus = None
    if reserved.startswith("EDF+"):
        edf_plus = reserved[4:5] if reserved[4:5] in ("C", "D") else "C"
        if reserved[4:5] not in ("C", "D"):
            tolerated.append("edfplus_type_unknown")

    signals = _parse_signals(data[BLOCK:length], ns, tolerated)
    record_duration = _float(fixed["record_duration"], "duration of a data record", tolerated)
    if not np.isfinite(record_duration) or record_duration < 0:
        raise EdfHeaderError(IMPOSSIBLE_VALUE, "duration of a data record is negative or not finite")
    if record_duration == 0 and any(not s.is_annotation for s in signals):
        raise EdfHeaderError(IMPOSSIBLE_VALUE, "duration of a data record is 0 for a file with signals")
    if edf_plus and not any(s.is_annotation for s in signals):
        tolerated.append("edfplus_without_annotations")
    if any(_nonstandard_label(s.label) for s in signals):
        tolerated.append("nonstandard_labels")

    record_bytes = 2 * sum(s.samples_per_record for s in signals)
    n_records = _int(fixed["n_records"], "number of data records", tolerated)
    if n_records < -1:
        raise EdfHeaderError(IMPOSSIBLE_VALUE, "number of data records is below -1")
    probe = data[length:]
    text_mode = REPLACEMENT in probe
    records_in_file = None
    if file_size is not None:
        available = file_size - length
        records_in_file = max(available, 0) // record_bytes
        if text_mode:
            tolerated.append("text_mode_corruption")
        if n_records == -1:
            if text_mode:
                raise EdfHeaderError(CORRUPT_HEADER, "number of data records is -1 and the data section is mangled")
            n_records = records_in_file
            tolerated.append("n_records_unknown")
        elif not text_mode and available < n_records * record_bytes:
            tolerated.append("data_truncated")
        elif not text_mode and available > n_records * record_bytes:
            tolerated.append("trailing_bytes")
        if text_mode:
            records_in_file = None  # only known after repairing the data section
    elif n_records == -1:
        raise EdfHeaderError(CORRUPT_HEADER, "number of data records is -1 and the file size is unknown")

    patient_field = fixed["patient"].strip()
    recording_field = fixed["recording"].strip()
    start = _start(fixed["startdate"], fixed["starttime"], recording_field, tolerated)
    patient = parse_patient(patient_field, strict=edf_plus is not None, tolerated=tolerated)
    return EdfHeader(
        version=version,
        patient_field=patient_field,
        recording_field=recording_field,
        start=start,
        header_bytes=length,
        edf_plus=edf_plus,
        n_records=n_records,
        record_duration=record_duration,
        signals=tuple(signals),
        patient=patient,
        equipment=_equipment(recording_field),
        admin_code=_admin_code(recording_field),
        file_size=file_size,
        records_in_file=records_in_file,
        text_mode_corruption=text_mode,
        tolerated=tuple(dict.fromkeys(tolerated)),
    )


def _split(block: bytes, fields: Sequence[tuple[str, int]]) -> dict[str, str]:
    out, at = {}, 0
    for name, width in fields:
        out[name] = block[at : at + width].decode("latin-1")
        at += width
    return out


def _check_version(raw: str, tolerated: list[str]) -> str:
    value = raw.replace("\x00", " ").strip()
    if not value or not value.isdigit():
        raise EdfHeaderError(NOT_EDF, "version field is not an EDF version")
    if value != "0":
        tolerated.append("version_nonstandard")
    return value


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _float(raw: str, name: str, tolerated: list[str]) -> float:
    text = raw
    if "\x00" in text:
        tolerated.append("nul_padding")
        text = text.replace("\x00", " ")
    text = text.strip()
    if "," in text and "." not in text:
        tolerated.append("decimal_comma")
        text = text.replace(",", ".")
    if not text:
        raise EdfHeaderError(CORRUPT_HEADER, f"{name} is blank")
    try:
        return float(text)
    except ValueError:
        pass
    match = _NUMBER.match(text)
    if not match:
        raise EdfHeaderError(CORRUPT_HEADER, f"{name} is not a number")
    tolerated.append("numeric_trailing_garbage")
    return float(match.group(0))


def _int(raw: str, name: str, tolerated: list[str]) -> int:
    value = _float(raw, name, tolerated)
    if not np.isfinite(value) or value != int(value):
        raise EdfHeaderError(CORRUPT_HEADER, f"{name} is not a whole number")
    if "." in raw:
        tolerated.append("integer_with_decimals")
    return int(value)


def _int_or_none(raw: str, tolerated: list[str]) -> int | None:
    try:
        return _int(raw, "header bytes", tolerated)
    except EdfHeaderError:
        return None


def _parse_signals(block: bytes, ns: int, tolerated: list[str]) -> list[SignalHeader]:
    columns: dict[str, list[str]] = {}
    at = 0
    for name, width in SIGNAL_FIELDS:
        columns[name] = [block[at + i * width : at + (i + 1) * width].decode("latin-1") for i in range(ns)]
        at += width * ns
    signals = []
    for i in range(ns):
        where = f"signal {i + 1}"
        label = columns["label"][i].replace("\x00", " ").strip()
        pmin = _float(columns["physical_min"][i], f"{where} physical minimum", tolerated)
        pmax = _float(columns["physical_max"][i], f"{where} physical maximum", tolerated)
        dmin = _int(columns["digital_min"][i], f"{where} digital minimum", tolerated)
        dmax = _int(columns["digital_max"][i], f"{where} digital maximum", tolerated)
        spr = _int(columns["samples_per_record"][i], f"{where} samples per record", tolerated)
        if spr <= 0:
            raise EdfHeaderError(IMPOSSIBLE_VALUE, f"{where} samples per record is not positive")
        if not (-32768 <= dmin < dmax <= 32767):
            raise EdfHeaderError(IMPOSSIBLE_VALUE, f"{where} digital range is empty, inverted or beyond 16 bits")
        if not (np.isfinite(pmin) and np.isfinite(pmax)) or pmin == pmax:
            raise EdfHeaderError(IMPOSSIBLE_VALUE, f"{where} physical range is empty or not finite")
        if pmin > pmax and label != ANNOTATIONS_LABEL:
            tolerated.append("inverted_physical_range")
        signals.append(
            SignalHeader(
                label=label,
                transducer=columns["transducer"][i].strip(),
                physical_dimension=columns["physical_dimension"][i].strip(),
                physical_min=pmin,
                physical_max=pmax,
                digital_min=dmin,
                digital_max=dmax,
                prefilter=columns["prefilter"][i].strip(),
                samples_per_record=spr,
            )
        )
    return signals


def _two_digit_year(yy: int) -> int:
    return 1900 + yy if yy >= 85 else 2000 + yy  # the EDF spec's clipping date: 1985..2084


def _start(raw_date: str, raw_time: str, recording: str, tolerated: list[str]) -> datetime:
    date_text = raw_date.replace("\x00", " ").strip()
    time_text = raw_time.replace("\x00", " ").strip()
    parts = re.split(r"[.\-/: ]", date_text)
    if date_text.count(".") != 2:
        tolerated.append("date_separator")
    plus = _recording_startdate(recording)
    if len(parts) != 3:
        if plus is None:
            raise EdfHeaderError(CORRUPT_HEADER, "start date is not dd.mm.yy")
        tolerated.append("start_date_from_recording_field")
        day, month, year = plus.day, plus.month, plus.year
    else:
        try:
            day, month = int(parts[0]), int(parts[1])
            yy = parts[2]
        except ValueError:
            raise EdfHeaderError(CORRUPT_HEADER, "start date is not dd.mm.yy") from None
        if yy.lower() == "yy" and plus is not None:
            year = plus.year
        elif yy.isdigit() and len(yy) == 2:
            year = _two_digit_year(int(yy))
        elif yy.isdigit() and len(yy) == 4:
            tolerated.append("four_digit_year")
            year = int(yy)
        else:
            raise EdfHeaderError(CORRUPT_HEADER, "start date year is not yy")
        if plus is not None:
            if (plus.day, plus.month, plus.year % 100) != (day, month, year % 100):
                tolerated.append("startdate_disagrees_with_recording_field")
            else:
                year = plus.year
    tparts = re.split(r"[.:\-/ ]", time_text)
    if time_text.count(".") != 2:
        tolerated.append("time_separator")
    if len(tparts) != 3 or not all(p.isdigit() for p in tparts):
        raise EdfHeaderError(CORRUPT_HEADER, "start time is not hh.mm.ss")
    hour, minute, second = (int(p) for p in tparts)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise EdfHeaderError(IMPOSSIBLE_VALUE, "start date or time does not exist") from None


_PLUS_DATE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")


def _edfplus_date(token: str) -> date | None:
    match = _PLUS_DATE.match(token)
    if not match or match.group(2).upper() not in MONTHS:
        return None
    try:
        return date(int(match.group(3)), MONTHS.index(match.group(2).upper()) + 1, int(match.group(1)))
    except ValueError:
        return None


def _recording_startdate(recording: str) -> date | None:
    tokens = recording.split()
    if len(tokens) >= 2 and tokens[0].lower() == "startdate":
        return _edfplus_date(tokens[1])
    return None


def _equipment(recording: str) -> str | None:
    tokens = recording.split()
    if len(tokens) >= 5 and tokens[0].lower() == "startdate":
        return None if tokens[4] == "X" else tokens[4]
    return None


def _admin_code(recording: str) -> str | None:
    """EDF+: `Startdate d code technician equipment`; otherwise the first token with digits, if any."""
    tokens = recording.split()
    if len(tokens) >= 3 and tokens[0].lower() == "startdate":
        return None if tokens[2] == "X" else tokens[2]
    return next((t for t in tokens if any(c.isdigit() for c in t)), None)


_AGE = re.compile(r"^age[:=]?(\d{1,3}(?:\.\d+)?)$", re.I)
_OTHER_DATES = (
    (re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$"), ("d", "m", "y")),
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"), ("m", "d", "y")),
)


def parse_patient(text: str, *, strict: bool = False, tolerated: list[str] | None = None) -> PatientId:
    """The patient field: EDF+ `code sex birthdate name [more]` (X = unknown), or free text as archives write it.

    Plain EDF files often use the EDF+ layout too (TUH writes `00000258 M 01-JAN-1954 00000258 Age:52`);
    otherwise the sex, a birth date, an `Age:NN` token and a code with digits are picked out of the text.
    """
    tolerated = tolerated if tolerated is not None else []
    tokens = text.split()
    if not tokens:
        return PatientId()
    age = None
    for token in tokens:
        match = _AGE.match(token)
        if match:
            age = float(match.group(1))
    if len(tokens) >= 4 and tokens[1].upper() in ("M", "F", "X") and (tokens[2] == "X" or _edfplus_date(tokens[2])):
        code = None if tokens[0] == "X" else tokens[0]
        sex = None if tokens[1].upper() == "X" else tokens[1].upper()
        birth = None if tokens[2] == "X" else _edfplus_date(tokens[2])
        name = None if tokens[3] == "X" else tokens[3].replace("_", " ")
        return PatientId(code=code, sex=sex, birthdate=birth, name=name, age=age)
    tolerated.append("patient_field_not_edfplus" if strict else "patient_field_free_text")
    sex = birth = code = None
    words = []
    for token in tokens:
        upper = token.upper().strip(",;:")
        if upper in _PATIENT_LABELS:
            continue
        if upper in ("M", "MALE") and sex is None:
            sex = "M"
        elif upper in ("F", "FEMALE") and sex is None:
            sex = "F"
        elif _AGE.match(token):
            continue
        elif _edfplus_date(upper) or _other_date(upper):
            birth = birth or _edfplus_date(upper) or _other_date(upper)
        elif any(c.isdigit() for c in token) and code is None:
            code = token.strip(",;")
        elif token.isalpha() or "^" in token or "," in token:
            words.append(token.replace("^", " ").strip(","))
    name = " ".join(words) or None
    return PatientId(code=code, sex=sex, birthdate=birth, name=name, age=age)


_PATIENT_LABELS = {"MRN", "MR", "MR#", "ID", "NAME", "PATIENT", "DOB", "SEX", "PT"}


def _other_date(token: str) -> date | None:
    for pattern, order in _OTHER_DATES:
        match = pattern.match(token)
        if match:
            parts = dict(zip(order, (int(g) for g in match.groups())))
            try:
                return date(parts["y"], parts["m"], parts["d"])
            except ValueError:
                return None
    return None


_LABEL_PREFIXES = ("EEG ", "EEG-", "ECG ", "EKG ", "EMG ", "EOG ", "RESP ", "POL ")


def normalize_label(label: str) -> str:
    """A bare electrode name in upper case: `EEG FP1-REF` -> `FP1`, `Fc5.` -> `FC5`, `EEG T3-LE` -> `T3`."""
    text = label.strip().upper()
    for prefix in _LABEL_PREFIXES:
        if text.startswith(prefix) and prefix.strip() == "EEG":
            text = text[len(prefix) :]
            break
    text = text.rstrip(".").strip()
    text = re.sub(r"-(REF|LE|AR|AVG|A1|A2|M1|M2)$", "", text)
    return text


def _nonstandard_label(label: str) -> bool:
    return label.endswith(".") or label != label.strip()


# ---------------------------------------------------------------------------------------------------------------
# Signals


def repair_text_mode(data: bytes) -> tuple[bytes, np.ndarray]:
    """Undo a text-mode copy of a data section as far as it can be undone.

    Such a copy decoded the bytes as UTF-8 (each undecodable byte became U+FFFD) and wrote them back with
    Windows line ends (each CR or LF became CR LF). Returns the data with one placeholder byte per lost byte
    and a boolean mask of the bytes whose value is unknown (the replaced ones and the CR-or-LF ones).
    """
    pieces = data.split(REPLACEMENT)
    out = bytearray()
    unknown_at: list[int] = []
    for i, piece in enumerate(pieces):
        if b"\r\n" in piece:
            for j, part in enumerate(piece.split(b"\r\n")):
                if j:
                    unknown_at.append(len(out))
                    out += b"\n"
                out += part
        else:
            out += piece
        if i < len(pieces) - 1:
            unknown_at.append(len(out))
            out += b"\x00"
    mask = np.zeros(len(out), dtype=bool)
    mask[np.asarray(unknown_at, dtype=np.int64)] = True
    return bytes(out), mask


def decode_records(
    header: EdfHeader,
    data: bytes,
    *,
    channels: Iterable[str] | None = None,
    unknown: np.ndarray | None = None,
    physical: bool = True,
) -> dict[str, np.ndarray]:
    """Signals from whole data records (`data` starts at a record boundary), keyed by label.

    `channels` picks labels (default: every signal but annotations); `unknown` marks bytes whose value was lost
    (see `repair_text_mode`): samples touching them are NaN. Physical values unless `physical=False`.
    """
    record_bytes = header.record_bytes
    n = len(data) // record_bytes
    if n == 0:
        return {s.label: np.empty(0, dtype=np.float64) for s in _pick(header, channels)}
    raw = np.frombuffer(data[: n * record_bytes], dtype="<i2").reshape(n, record_bytes // 2)
    lost = None
    if unknown is not None:
        bad = unknown[: n * record_bytes].reshape(n, record_bytes // 2, 2).any(axis=2)
        lost = bad
    offsets = np.cumsum([0] + [s.samples_per_record for s in header.signals])
    picked = {id(s) for s in _pick(header, channels)}
    out = {}
    for i, signal in enumerate(header.signals):
        if id(signal) not in picked:
            continue
        block = raw[:, offsets[i] : offsets[i + 1]].astype(np.float64)
        if physical:
            block = (block - signal.digital_min) * signal.gain + signal.physical_min
        if lost is not None:
            block[lost[:, offsets[i] : offsets[i + 1]]] = np.nan
        out[signal.label] = block.reshape(-1)
    return out


def _pick(header: EdfHeader, channels: Iterable[str] | None) -> list[SignalHeader]:
    if channels is None:
        return header.data_signals
    wanted = list(channels)
    by_label = {s.label: s for s in header.signals}
    by_norm = {normalize_label(s.label): s for s in header.signals}
    picked = []
    for name in wanted:
        signal = by_label.get(name) or by_norm.get(normalize_label(name))
        if signal is None:
            raise KeyError(f"no signal {name!r} in the file")
        picked.append(signal)
    return picked


def annotation_records(header: EdfHeader, data: bytes) -> list[tuple[float, float | None, str]]:
    """(onset s, duration s or None, text) of every annotation in whole records of `data`; time-keeping ones skipped."""
    index = next((i for i, s in enumerate(header.signals) if s.is_annotation), None)
    if index is None:
        return []
    record_bytes = header.record_bytes
    start = 2 * sum(s.samples_per_record for s in header.signals[:index])
    width = 2 * header.signals[index].samples_per_record
    out = []
    for r in range(len(data) // record_bytes):
        chunk = data[r * record_bytes + start : r * record_bytes + start + width]
        out.extend(parse_tal(chunk, skip_timekeeping=True))
    return out


def parse_tal(chunk: bytes, *, skip_timekeeping: bool = False) -> list[tuple[float, float | None, str]]:
    """Time-stamped annotation lists: `+onset[\\x15duration]\\x14text\\x14...\\x14\\x00`."""
    out = []
    for tal in chunk.split(b"\x00"):
        if not tal or tal[:1] not in (b"+", b"-"):
            continue
        parts = tal.split(b"\x14")
        timing = parts[0].split(b"\x15")
        try:
            onset = float(timing[0])
            duration = float(timing[1]) if len(timing) > 1 and timing[1] else None
        except ValueError:
            continue
        texts = [p.decode("utf-8", "replace") for p in parts[1:] if p]
        if not texts and skip_timekeeping:
            continue
        for text in texts:
            out.append((onset, duration, text))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Writing


def edfplus_date(d: date) -> str:
    return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year}"


def _field(value: str | float, width: int) -> bytes:
    text = value if isinstance(value, str) else _number_text(value, width)
    raw = text.encode("latin-1", "replace")[:width]
    return raw.ljust(width, b" ")


def _number_text(value: float, width: int) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = repr(float(value))
    if text.endswith(".0"):
        text = text[:-2]
    return text[:width]


def build_edf(
    *,
    patient: str,
    recording: str,
    start: datetime,
    record_duration: float,
    signals: Sequence[tuple[SignalHeader, np.ndarray]],
    edf_plus: bool = False,
    annotations: Sequence[tuple[float, float | None, str]] = (),
    annotation_bytes: int = 120,
) -> bytes:
    """A complete EDF (or EDF+C with time-keeping annotations) file from digital int16 signals.

    Each signal's samples must fill a whole number of records of `samples_per_record`.
    """
    n_records = None
    for sig, values in signals:
        if len(values) % sig.samples_per_record:
            raise ValueError(f"signal {sig.label!r}: {len(values)} samples is not a whole number of records")
        records = len(values) // sig.samples_per_record
        if n_records not in (None, records):
            raise ValueError("signals span different numbers of records")
        n_records = records
    n_records = n_records or 0
    all_signals = [s for s, _ in signals]
    if edf_plus:
        all_signals.append(SignalHeader(ANNOTATIONS_LABEL, "", "", -1.0, 1.0, -32768, 32767, "", annotation_bytes // 2))
    ns = len(all_signals)
    head = b"".join(
        [
            _field("0", 8),
            _field(patient, 80),
            _field(recording, 80),
            _field(f"{start:%d.%m.}{start.year % 100:02d}", 8),
            _field(f"{start:%H.%M.%S}", 8),
            _field(BLOCK * (ns + 1), 8),
            _field("EDF+C" if edf_plus else "", 44),
            _field(n_records, 8),
            _field(record_duration, 8),
            _field(ns, 4),
        ]
    )
    columns = [
        [_field(s.label, 16) for s in all_signals],
        [_field(s.transducer, 80) for s in all_signals],
        [_field(s.physical_dimension, 8) for s in all_signals],
        [_field(s.physical_min, 8) for s in all_signals],
        [_field(s.physical_max, 8) for s in all_signals],
        [_field(s.digital_min, 8) for s in all_signals],
        [_field(s.digital_max, 8) for s in all_signals],
        [_field(s.prefilter, 80) for s in all_signals],
        [_field(s.samples_per_record, 8) for s in all_signals],
        [_field("", 32) for _ in all_signals],
    ]
    head += b"".join(b"".join(col) for col in columns)
    by_record: dict[int, list[tuple[float, float | None, str]]] = {}
    for onset, duration, text in annotations:
        r = min(int(onset // record_duration), max(n_records - 1, 0))
        by_record.setdefault(r, []).append((onset, duration, text))
    body = bytearray()
    for r in range(n_records):
        for sig, values in signals:
            chunk = np.asarray(values[r * sig.samples_per_record : (r + 1) * sig.samples_per_record])
            body += np.clip(chunk, sig.digital_min, sig.digital_max).astype("<i2").tobytes()
        if edf_plus:
            tal = f"+{_number_text(r * record_duration, 20)}\x14\x14\x00".encode()
            for onset, duration, text in by_record.get(r, []):
                timing = f"+{_number_text(onset, 20)}" + (f"\x15{_number_text(duration, 20)}" if duration else "")
                tal += f"{timing}\x14{text}\x14\x00".encode()
            if len(tal) > annotation_bytes:
                raise ValueError(f"annotations of record {r} need more than {annotation_bytes} bytes")
            body += tal.ljust(annotation_bytes, b"\x00")
    return head + bytes(body)
