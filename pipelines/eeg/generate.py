"""A deterministic synthetic EEG archive: EDF/EDF+ recordings and TUH-style free-text reports, stored apart.

Patients have one or more sessions (a few have several, some only days apart); a session has a report and one
or more recordings (long-term monitoring covers several days, one file per day). Headers are filled the ways
real archives fill them (EDF+ patient fields, TUH's subject code with `Age:NN`, free text, anonymised `X X X X`),
and file names follow different schemes. The mess is deliberate: missing sections and fields, typos, reports
without recordings and recordings without reports, tolerable header oddities, and a few broken files and reports
that the readers must quarantine. The truth (links, the findings each report states, the fate of each file) is
written beside the archive under `truth/`.

Everything derives from (seed, patient index); the driver holds only the plans, the executors render the bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta

import numpy as np
from pyspark.sql import SparkSession

from pipelines.config import ConfigError, EegGenerateConfig
from pipelines.eeg import edf
from pipelines.eeg.vocabulary import LOCATIONS, MEDICATIONS, SEIZURE_TYPES
from pipelines.io import fs

log = logging.getLogger(__name__)

FIRST_NAMES = {
    "F": (
        "Jane",
        "Maria",
        "Linda",
        "Susan",
        "Karen",
        "Nancy",
        "Lisa",
        "Betty",
        "Helen",
        "Sandra",
        "Donna",
        "Carol",
        "Ruth",
        "Sharon",
        "Michelle",
        "Laura",
        "Sarah",
        "Kimberly",
        "Deborah",
        "Jessica",
        "Shirley",
        "Cynthia",
        "Angela",
        "Melissa",
        "Brenda",
        "Amy",
        "Anna",
        "Rebecca",
        "Virginia",
        "Kathleen",
    ),
    "M": (
        "James",
        "John",
        "Robert",
        "Michael",
        "William",
        "David",
        "Richard",
        "Joseph",
        "Thomas",
        "Charles",
        "Christopher",
        "Daniel",
        "Matthew",
        "Anthony",
        "Mark",
        "Donald",
        "Steven",
        "Paul",
        "Andrew",
        "Joshua",
        "Kenneth",
        "Kevin",
        "Brian",
        "George",
        "Edward",
        "Ronald",
        "Timothy",
        "Jason",
        "Jeffrey",
        "Ryan",
    ),
}
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Kowalski",
    "Okafor",
    "Lindqvist",
)
STREETS = ("Oak Street", "Maple Avenue", "Cedar Lane", "Pine Road", "Elm Drive", "Walnut Street", "Chestnut Avenue")
CITIES = ("Springfield", "Riverton", "Fairview", "Georgetown", "Lakeside", "Ashland", "Milford")
HISTORIES = (
    "new onset seizures",
    "a history of epilepsy",
    "recurrent syncope",
    "altered mental status",
    "chronic headaches",
    "staring spells",
    "a first generalized convulsion",
    "encephalopathy after cardiac arrest",
    "episodes of confusion",
    "possible seizures at night",
    "a remote head injury and spells",
)
ELECTRODES = (
    "FP1",
    "FP2",
    "F3",
    "F4",
    "C3",
    "C4",
    "P3",
    "P4",
    "O1",
    "O2",
    "F7",
    "F8",
    "T3",
    "T4",
    "T5",
    "T6",
    "A1",
    "A2",
    "FZ",
    "CZ",
    "PZ",
)
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

HEADER_STYLES = ("edfplus", "tuh", "legacy", "anonymized")
NAMING_SCHEMES = ("tuh", "accession", "opaque")
LABEL_SCHEMES = ("ref", "le", "plain", "dotted")
ODDITIES = ("n_records_unknown", "header_bytes_mismatch", "date_separator", "nul_padding", "data_truncated")
BROKEN_EDF = (edf.TRUNCATED_HEADER, edf.CORRUPT_HEADER, edf.IMPOSSIBLE_VALUE, edf.EMPTY_FILE, edf.NOT_EDF)
BROKEN_REPORTS = ("not_utf8", "empty_report")


@dataclass(frozen=True)
class FilePlan:
    name: str
    start: datetime
    header_style: str
    label_scheme: str
    sample_rate: int
    oddity: str | None = None
    broken: str | None = None


@dataclass(frozen=True)
class Findings:
    abnormal: bool
    epileptiform: tuple[str, ...] = ()
    epileptiform_location: str | None = None
    slowing: str | None = None  # "focal" or "generalized"
    slowing_location: str | None = None
    seizure_count: int = 0
    seizure_type: str | None = None
    pushbuttons: int = 0
    medications: tuple[str, ...] = ()
    heart_rate: int = 72


@dataclass(frozen=True)
class SessionPlan:
    number: int
    study_type: str  # routine | ltm | video
    start: datetime
    days: int  # calendar days covered
    duration_minutes: int
    accession: str
    scheme: str
    findings: Findings
    files: tuple[FilePlan, ...]
    report_name: str | None  # None: a recording without a report
    report_broken: str | None = None


@dataclass(frozen=True)
class PatientPlan:
    index: int
    mrn: str
    subject: str
    first: str
    last: str
    sex: str
    birthdate: date
    phone: str
    address: str
    physician: str
    sessions: tuple[SessionPlan, ...]


def validate(config: EegGenerateConfig) -> None:
    checks = [
        (config.patients >= 1, "eeg.generate.patients must be at least 1"),
        (config.years > 0, "eeg.generate.years must be positive"),
        (config.edf_seconds >= 1, "eeg.generate.edf_seconds must be at least 1"),
        (
            bool(config.sample_rates) and all(r > 0 for r in config.sample_rates),
            "eeg.generate.sample_rates must be positive",
        ),
        (config.broken_edf_files >= 0 and config.broken_reports >= 0, "eeg.generate broken counts must be >= 0"),
    ]
    for name in (
        "multi_session_fraction",
        "ltm_fraction",
        "reports_without_files",
        "files_without_reports",
        "anonymized_header_fraction",
        "missing_field_rate",
        "typo_rate",
    ):
        checks.append((0.0 <= getattr(config, name) <= 1.0, f"eeg.generate.{name} must be in [0, 1]"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    _start(config)


def _start(config: EegGenerateConfig) -> datetime:
    try:
        return datetime.strptime(str(config.start), "%Y-%m-%d")
    except ValueError:
        raise ConfigError(f"eeg.generate.start must be YYYY-MM-DD, got {config.start!r}") from None


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _choice(rng: np.random.Generator, items, p=None):
    return items[int(rng.choice(len(items), p=p))]


def _opaque(seed: int, *parts: object) -> str:
    return hashlib.sha256(("|".join(map(str, (seed, *parts)))).encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------------------------
# Plans


def plan_patient(index: int, config: EegGenerateConfig) -> PatientPlan:
    """Identity, sessions, findings and files of one patient, from (seed, index) only."""
    r = _rng(config.seed, index, 1)
    start = _start(config)
    sex = "F" if r.random() < 0.5 else "M"
    first = _choice(r, FIRST_NAMES[sex])
    last = _choice(r, LAST_NAMES)
    mrn = f"{(index * 15485863 + config.seed * 999983 + 1234567) % 90_000_000 + 10_000_000}"
    subject = f"{(index * 7919 + config.seed * 104729) % 10**8:08d}"
    u = r.random()
    age_years = int(r.integers(2, 18)) if u < 0.15 else int(r.integers(90, 96)) if u > 0.97 else int(r.integers(18, 90))
    first_day = start + timedelta(days=float(r.uniform(0, 365.25 * config.years)))
    birthdate = (first_day - timedelta(days=365.25 * age_years + float(r.uniform(1, 360)))).date()
    phone = f"({r.integers(201, 990)}) 555-{r.integers(0, 10000):04d}"
    address = f"{r.integers(10, 9999)} {_choice(r, STREETS)}, {_choice(r, CITIES)}"
    physician = f"Dr. {_choice(r, FIRST_NAMES[_choice(r, ('F', 'M'))])} {_choice(r, LAST_NAMES)}"
    scheme = _choice(r, NAMING_SCHEMES, p=[0.5, 0.3, 0.2])
    header_style = _choice(
        r,
        HEADER_STYLES,
        p=[
            0.4 * (1 - config.anonymized_header_fraction),
            0.4 * (1 - config.anonymized_header_fraction),
            0.2 * (1 - config.anonymized_header_fraction),
            config.anonymized_header_fraction,
        ],
    )
    label_scheme = _choice(r, LABEL_SCHEMES, p=[0.55, 0.2, 0.15, 0.1])
    n_sessions = 1
    if r.random() < config.multi_session_fraction:
        n_sessions = int(r.integers(2, 4))
    sessions: list[SessionPlan] = []
    day = first_day.replace(hour=0, minute=0, second=0, microsecond=0)
    for number in range(1, n_sessions + 1):
        if number > 1:
            previous = sessions[-1]
            gap = int(r.integers(2, 6)) if r.random() < 0.5 else int(r.integers(10, 200))
            day = (previous.start + timedelta(days=previous.days - 1 + gap)).replace(hour=0, minute=0, second=0)
        sessions.append(_plan_session(r, config, index, number, day, subject, scheme, header_style, label_scheme))
    return PatientPlan(index, mrn, subject, first, last, sex, birthdate, phone, address, physician, tuple(sessions))


def _plan_session(r, config, index, number, day, subject, scheme, header_style, label_scheme) -> SessionPlan:
    study_type = "routine"
    if r.random() < config.ltm_fraction:
        study_type = "video" if r.random() < 0.5 else "ltm"
    if study_type == "routine":
        start = day + timedelta(hours=float(r.uniform(7.5, 16.5)))
        days, duration = 1, int(r.integers(18, 45))
    else:
        start = day + timedelta(hours=float(r.uniform(8.0, 15.0)))
        days = int(r.integers(2, 5))
        duration = (days - 1) * 1440 + int(r.integers(-300, 300))
    start = start.replace(microsecond=0)
    findings = _plan_findings(r, study_type)
    accession = f"{(index * 37 + number * 100003 + config.seed * 7) % 900000 + 100000}"
    rate = int(_choice(r, list(config.sample_rates)))
    starts = [start]
    if study_type == "routine":
        if r.random() < 0.25:
            starts.append(start + timedelta(minutes=duration // 2, seconds=int(r.integers(5, 50))))
    else:
        for k in range(1, days):
            starts.append(day + timedelta(days=k, seconds=int(r.integers(1, 900))))
    files = []
    for k, s in enumerate(starts):
        files.append(
            FilePlan(
                _file_name(config.seed, scheme, subject, number, accession, k, index),
                s,
                header_style,
                label_scheme,
                rate,
            )
        )
    report_name: str | None = _report_name(config.seed, scheme, subject, number, accession, index)
    u = r.random()
    if u < config.reports_without_files:
        files = []
    elif u < config.reports_without_files + config.files_without_reports:
        report_name = None
    files = [replace(f, oddity=_choice(r, ODDITIES)) if r.random() < 0.12 else f for f in files]
    return SessionPlan(
        number, study_type, start, days, duration, accession, scheme, findings, tuple(files), report_name
    )


def _file_name(seed, scheme, subject, session, accession, k, index) -> str:
    if scheme == "tuh":
        return f"{subject}_s{session:03d}_t{k:03d}.edf"
    if scheme == "accession":
        return f"EEG{accession}_{k + 1}.EDF" if index % 3 == 0 else f"EEG{accession}_{k + 1}.edf"
    return f"rec_{_opaque(seed, 'edf', index, session, k)}.edf"


def _report_name(seed, scheme, subject, session, accession, index) -> str:
    if scheme == "tuh":
        return f"{subject}_s{session:03d}.txt"
    if scheme == "accession":
        return f"report_{accession}.txt"
    return f"doc_{_opaque(seed, 'report', index, session)}.txt"


def _plan_findings(r, study_type: str) -> Findings:
    abnormal = r.random() < (0.55 if study_type == "routine" else 0.75)
    epileptiform: tuple[str, ...] = ()
    epi_location = slowing = slowing_location = seizure_type = None
    seizure_count = 0
    if abnormal:
        kind = r.random()
        if kind < 0.45:
            epileptiform = (_choice(r, ("spikes", "sharp_waves", "spike_and_wave"), p=[0.4, 0.45, 0.15]),)
            if r.random() < 0.2:
                epileptiform = tuple(sorted({*epileptiform, "sharp_waves", "spikes"}))
            epi_location = _choice(r, LOCATIONS) if "spike_and_wave" not in epileptiform else None
        if kind > 0.3 or not epileptiform:
            slowing = "focal" if r.random() < 0.55 else "generalized"
            slowing_location = _choice(r, LOCATIONS) if slowing == "focal" else None
        p_seizure = 0.15 if study_type == "routine" else 0.55
        if r.random() < p_seizure:
            seizure_count = 1 if study_type == "routine" else int(r.integers(1, 6))
            seizure_type = _choice(r, SEIZURE_TYPES, p=[0.4, 0.2, 0.1, 0.25, 0.05])
    pushbuttons = int(r.integers(0, 3)) if study_type != "routine" and r.random() < 0.5 else 0
    meds = ()
    if r.random() < 0.75:
        n = int(r.integers(1, 4))
        meds = tuple(sorted(set(_choice(r, list(MEDICATIONS)) for _ in range(n))))
    return Findings(
        abnormal,
        epileptiform,
        epi_location,
        slowing,
        slowing_location,
        seizure_count,
        seizure_type,
        pushbuttons,
        meds,
        int(r.integers(55, 110)),
    )


def archive_plan(config: EegGenerateConfig) -> list[PatientPlan]:
    """Every patient's plan, with the broken files and reports of the whole archive chosen."""
    validate(config)
    plans = [plan_patient(i, config) for i in range(config.patients)]
    r = _rng(config.seed, 10**6)
    files = [
        (p, s, k)
        for p in range(len(plans))
        for s in range(len(plans[p].sessions))
        for k in range(len(plans[p].sessions[s].files))
    ]
    reports = [
        (p, s) for p in range(len(plans)) for s in range(len(plans[p].sessions)) if plans[p].sessions[s].report_name
    ]
    broken_files = {}
    for n, i in enumerate(r.permutation(len(files))[: config.broken_edf_files]):
        broken_files[files[i]] = BROKEN_EDF[n % len(BROKEN_EDF)]
    broken_reports = {}
    for n, i in enumerate(r.permutation(len(reports))[: config.broken_reports]):
        broken_reports[reports[i]] = BROKEN_REPORTS[n % len(BROKEN_REPORTS)]
    out = []
    for p, plan in enumerate(plans):
        sessions = []
        for s, session in enumerate(plan.sessions):
            session_files = tuple(
                replace(f, broken=broken_files.get((p, s, k)), oddity=None if (p, s, k) in broken_files else f.oddity)
                for k, f in enumerate(session.files)
            )
            sessions.append(replace(session, files=session_files, report_broken=broken_reports.get((p, s))))
        out.append(replace(plan, sessions=tuple(sessions)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# EDF files


def _labels(scheme: str) -> list[str]:
    if scheme == "ref":
        return [f"EEG {e}-REF" for e in ELECTRODES] + ["EEG EKG1-REF", "PHOTIC-REF"]
    if scheme == "le":
        return [f"EEG {e}-LE" for e in ELECTRODES] + ["EEG EKG-LE"]
    if scheme == "plain":
        return [e.capitalize() if len(e) == 2 else e[0] + e[1:].lower() for e in ELECTRODES] + ["ECG"]
    return [(e.capitalize() + "..")[:4] if len(e) == 2 else e.capitalize() + "." for e in ELECTRODES]


def _patient_field(plan: PatientPlan, style: str, age: int, r: np.random.Generator) -> str:
    birth = edf.edfplus_date(plan.birthdate)
    if style == "edfplus":
        mrn = plan.mrn
        if r.random() < 0.02:  # a typo in the record number
            mrn = mrn[:-2] + mrn[-1] + mrn[-2]
        return f"{mrn} {plan.sex} {birth} {plan.last}_{plan.first}"
    if style == "tuh":
        return f"{plan.subject} {plan.sex} 01-JAN-{plan.birthdate.year} {plan.subject} Age:{age}"
    if style == "legacy":
        if r.random() < 0.5:
            return f"{plan.last.upper()}, {plan.first.upper()} {plan.mrn}"
        return f"{plan.first} {plan.last} MRN {plan.mrn} {'female' if plan.sex == 'F' else 'male'}"
    return "X X X X" if r.random() < 0.5 else f"X {plan.sex} X X"


def _recording_field(session: SessionPlan, style: str, start: datetime) -> str:
    if style in ("edfplus", "tuh"):
        return f"Startdate {edf.edfplus_date(start.date())} EEG{session.accession} X XLTEK"
    if style == "legacy":
        return f"EEG{session.accession} Nicolet"
    return f"Startdate {edf.edfplus_date(start.date())} X X X"


def render_edf(plan: PatientPlan, session: SessionPlan, k: int, config: EegGenerateConfig) -> bytes:
    """The bytes of file `k` of `session`, broken or odd as planned."""
    f = session.files[k]
    r = _rng(config.seed, plan.index, 100 + session.number, k)
    age = _age(plan.birthdate, f.start.date())
    labels = _labels(f.label_scheme)
    fs_ = f.sample_rate
    n = fs_ * config.edf_seconds
    t = np.arange(n) / fs_
    signals = []
    for label in labels:
        posterior = 1.0 + 1.5 * any(x in label.upper() for x in ("O1", "O2", "P3", "P4", "PZ"))
        uv = (
            20 * posterior * np.sin(2 * np.pi * float(r.uniform(8.5, 11.5)) * t + float(r.uniform(0, 6.3)))
            + 10 * np.sin(2 * np.pi * float(r.uniform(4, 7)) * t + float(r.uniform(0, 6.3)))
            + r.normal(0, 8, n)
        )
        sig = edf.SignalHeader(label, "AgAgCl electrode", "uV", -3276.8, 3276.7, -32768, 32767, "HP:0.1Hz LP:70Hz", fs_)
        signals.append((sig, np.round(uv * 10).astype(np.int16)))
    data = edf.build_edf(
        patient=_patient_field(plan, f.header_style, age, r),
        recording=_recording_field(session, f.header_style, f.start),
        start=f.start,
        record_duration=1.0,
        signals=signals,
        edf_plus=f.header_style == "edfplus",
    )
    return _damage(data, f)


def _patch(data: bytes, offset: int, text: bytes, width: int) -> bytes:
    return data[:offset] + text.ljust(width, b" ")[:width] + data[offset + width :]


def _damage(data: bytes, f: FilePlan) -> bytes:
    if f.broken == edf.TRUNCATED_HEADER:
        return data[:300]
    if f.broken == edf.CORRUPT_HEADER:
        return _patch(data, 236, b"many", 8)
    if f.broken == edf.IMPOSSIBLE_VALUE:
        return _patch(data, 168, b"31.02." + data[174:176], 8)
    if f.broken == edf.EMPTY_FILE:
        return b""
    if f.broken == edf.NOT_EDF:
        return b"<html><body>Export failed</body></html>\n" + data[:100]
    if f.oddity == "n_records_unknown":
        return _patch(data, 236, b"-1", 8)
    if f.oddity == "header_bytes_mismatch":
        return _patch(data, 184, b"256", 8)
    if f.oddity == "date_separator":
        return _patch(data, 168, data[168:170] + b"/" + data[171:173] + b"/" + data[174:176], 8)
    if f.oddity == "nul_padding":
        return data[:236] + data[236:244].rstrip(b" ").ljust(8, b"\x00") + data[244:]
    if f.oddity == "data_truncated":
        return data[:-37]
    return data


def _age(birthdate: date, on: date) -> int:
    return on.year - birthdate.year - ((on.month, on.day) < (birthdate.month, birthdate.day))


# ---------------------------------------------------------------------------------------------------------------
# Reports


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _prose_date(d: date, r: np.random.Generator) -> str:
    """`d` written one of the ways clinicians write a full date."""
    month = MONTH_NAMES[d.month - 1]
    forms = (
        f"{month} {d.day}, {d.year}",
        f"{d.month}/{d.day}/{d.year}",
        f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.day:02d}-{month[:3]}-{d.year}",
        f"{d.month}/{d.day}/{d.year % 100:02d}",
        f"{d.month}-{d.day}-{d.year % 100:02d}",
        d.isoformat(),
        f"{month[:3]}. {_ordinal(d.day)}, {d.year}",
        f"{d.day} {month} {d.year}",
        f"{WEEKDAY_NAMES[d.weekday()]}, {month} {d.day}, {d.year}",
        f"{d.day}.{d.month}.{d.year}",
    )
    return forms[int(r.choice(len(forms), p=[0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.08, 0.06, 0.06, 0.06, 0.06]))]


def _heading(header: str, r: np.random.Generator) -> tuple[str, str]:
    """(heading, separator) as reports write them: `HEADER: `, doubled inner spaces, ` - `, ` :`, alone on its line,
    or in capitals running straight into the text."""
    u = r.random()
    if u < 0.55:
        return header, ": "
    if u < 0.67:
        return header, ":  "
    if u < 0.77:
        return header.replace(" ", "  "), ":  "
    if u < 0.83:
        return header, " - "
    if u < 0.88:
        return header, " : "
    if u < 0.94:
        return header, ":\n"
    return (header, " ") if header.isupper() else (header, ": ")


def _sex_word(sex: str, age: int, r) -> str:
    if age < 18:
        return "girl" if sex == "F" else "boy"
    return _choice(r, ("woman", "female", "lady")) if sex == "F" else _choice(r, ("man", "male", "gentleman"))


def _count_text(n: int, r) -> str:
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
    return words[n] if r.random() < 0.6 else str(n)


def _typos(text: str, rate: float, r: np.random.Generator) -> str:
    if rate <= 0:
        return text
    out = []
    for token in text.split(" "):
        core = token.strip(".,:;()")
        if len(core) >= 6 and core.isalpha() and r.random() < rate:
            i = int(r.integers(1, len(core) - 2))
            mangled = core[:i] + core[i + 1] + core[i] + core[i + 2 :]
            token = token.replace(core, mangled, 1)
        out.append(token)
    return " ".join(out)


def render_report(plan: PatientPlan, session: SessionPlan, config: EegGenerateConfig) -> tuple[str, dict]:
    """The report text of `session` and the truth of what it states."""
    r = _rng(config.seed, plan.index, 200 + session.number)
    miss = config.missing_field_rate
    f = session.findings
    study_day = session.start.date()
    last_day = study_day + timedelta(days=session.days - 1)
    age = _age(plan.birthdate, study_day)
    truth: dict = {
        "report_id": session.report_name,
        "patient": plan.index,
        "session": session.number,
        "study_type": session.study_type,
        "abnormal": f.abnormal,
        "seizure_present": f.seizure_count > 0,
    }
    lines: list[str] = []

    # Identifying header block (removed by de-identification).
    stated_dates: set[str] = set()
    if r.random() > miss:
        name = f"{plan.last.upper()}, {plan.first.upper()}" if r.random() < 0.5 else f"{plan.first} {plan.last}"
        lines.append(f"Patient Name: {name}")
    if r.random() > miss:
        mrn = plan.mrn if r.random() < 0.7 else f"{plan.mrn[:2]}-{plan.mrn[2:5]}-{plan.mrn[5:]}"
        lines.append(f"{_choice(r, ('MRN', 'MR#', 'Medical Record Number'))}: {mrn}")
    if r.random() > miss:
        lines.append(f"DOB: {plan.birthdate.month:02d}/{plan.birthdate.day:02d}/{plan.birthdate.year}")
    if r.random() > miss:
        if session.days > 1:
            lines.append(f"Dates of Study: {_prose_date(study_day, r)} to {_prose_date(last_day, r)}")
            stated_dates |= {study_day.isoformat(), last_day.isoformat()}
        else:
            lines.append(f"Date of Study: {_prose_date(study_day, r)}")
            stated_dates.add(study_day.isoformat())
    if r.random() < 0.5:
        lines.append(f"Referring Physician: {plan.physician}   Phone: {plan.phone}")
    if r.random() < 0.25:
        lines.append(f"Address: {plan.address}")
    lines.append("")

    sections: list[str] = []

    def section(canonical: str | tuple[str, ...], header: str, body: str) -> None:
        sections.extend((canonical,) if isinstance(canonical, str) else canonical)
        if config.typo_rate and r.random() < config.typo_rate * 3:
            header = _typos(header, 1.0, r)
        header, separator = _heading(header, r)
        lines.append(f"{header}{separator}{_typos(body, config.typo_rate, r)}")
        lines.append("")

    # CLINICAL HISTORY
    age_stated = sex_stated = False
    if r.random() > miss:
        sex_word = _sex_word(plan.sex, age, r)
        handed = _choice(r, ("right-handed ", "left-handed ", "", ""))
        if age >= 90 and r.random() < 0.5:
            opener = f"This is a {age}-year-old {handed}{sex_word}"
        elif r.random() < 0.2:
            title = "Ms." if plan.sex == "F" else "Mr."
            opener = f"{title} {plan.last} is a {age} year old {handed}{sex_word}"
        elif r.random() < 0.12:
            opener = f"{age} y/o {handed}{sex_word}"
        else:
            article = "an" if str(age)[0] == "8" or age in (11, 18) else "a"
            opener = f"This is {article} {age}-year-old {handed}{sex_word}"
        age_stated = sex_stated = True
        body = f"{opener} with {_choice(r, HISTORIES)}."
        if r.random() < 0.3:
            body += " Seizure free since the last admission." if r.random() < 0.5 else " Family history of seizures."
        if r.random() < 0.1:
            section(("reason_for_study", "clinical_history"), "REASON FOR STUDY/CLINICAL HISTORY", body)
        else:
            header = _choice(r, ("CLINICAL HISTORY", "Clinical History", "HISTORY"), p=[0.7, 0.2, 0.1])
            section("clinical_history", header, body)

    # MEDICATIONS
    meds_stated: list[str] = []
    if r.random() > miss:
        if f.medications:
            names = []
            for med in f.medications:
                brands = MEDICATIONS[med]
                shown = _choice(r, brands) if brands and r.random() < 0.6 else med.capitalize()
                if r.random() < 0.3:
                    shown += f" {int(r.integers(1, 20)) * 50} mg {_choice(r, ('BID', 'TID', 'daily'))}"
                names.append(shown)
            body = ", ".join(names) + "."
            meds_stated = list(f.medications)
        else:
            body = _choice(r, ("None.", "None reported.", "No antiepileptic medications."))
        section("medications", _choice(r, ("MEDICATIONS", "MEDS"), p=[0.85, 0.15]), body)
    if "reason_for_study" not in sections and r.random() < 0.2:
        reason = _choice(r, ("Seizures.", "Spells.", "Rule out seizures.", "Altered mental status.", "Syncope."))
        section("reason_for_study", "REASON FOR STUDY", reason)

    # INTRODUCTION
    duration_stated = None
    intro_type = {
        "routine": ("Routine EEG", "A routine digital EEG", "Routine awake and drowsy EEG"),
        "ltm": ("Continuous EEG monitoring", "Long-term EEG monitoring", "Prolonged continuous EEG"),
        "video": (
            "Video EEG monitoring in the Epilepsy Monitoring Unit",
            "Long-term video-EEG monitoring",
            "Continuous video EEG",
        ),
    }[session.study_type]
    type_stated = False
    if r.random() > miss:
        body = f"{_choice(r, intro_type)} was performed using the standard 10-20 system of electrode placement"
        body += " with one channel of EKG." if r.random() < 0.6 else "."
        type_stated = True
        if r.random() > miss:
            if session.study_type == "routine":
                body += f" This is a {session.duration_minutes} minute recording."
                duration_stated = session.duration_minutes
            else:
                body += (
                    f" The study lasted {session.days - 1} days."
                    if session.days > 2
                    else " The study lasted about 24 hours."
                )
                duration_stated = (session.days - 1) * 1440
        if not stated_dates and r.random() < 0.6:
            if session.days > 1:
                body += f" The recording began on {_prose_date(study_day, r)} and ended on {_prose_date(last_day, r)}."
                stated_dates |= {study_day.isoformat(), last_day.isoformat()}
            else:
                body += f" The recording was obtained on {_prose_date(study_day, r)}."
                stated_dates.add(study_day.isoformat())
        section("introduction", "INTRODUCTION", body)
    if r.random() < 0.1:
        problems = ("None.", "Intermittent electrode artifact.", "Muscle artifact at times obscures the record.")
        section("technical_difficulties", "TECHNICAL DIFFICULTIES", _choice(r, problems))

    # DESCRIPTION OF THE RECORD
    events: list[dict] = []
    desc = []
    if f.slowing == "generalized":
        desc.append(
            f"The background is diffusely slow, with {_choice(r, ('5', '6', '5-6', '6-7'))} Hz theta activity"
            " and no clear posterior dominant rhythm."
        )
    else:
        desc.append(
            f"The background is well organized with a posterior dominant rhythm of {int(r.integers(8, 12))} Hz"
            " that attenuates with eye opening."
        )
    if f.slowing == "focal":
        desc.append(
            f"There is {_choice(r, ('intermittent', 'continuous', 'occasional'))} focal "
            f"{_choice(r, ('delta', 'theta', 'polymorphic delta'))} slowing over the {f.slowing_location} region."
        )
    for kind in f.epileptiform:
        where = f" in the {f.epileptiform_location} region" if f.epileptiform_location else ""
        if kind == "spikes":
            desc.append(f"{_choice(r, ('Frequent', 'Occasional', 'Rare'))} spikes are seen{where}.")
        elif kind == "sharp_waves":
            desc.append(f"{_choice(r, ('Frequent', 'Occasional', 'Rare'))} sharp waves are noted{where}.")
        else:
            desc.append("Generalized 3 Hz spike-and-wave discharges are recorded.")
    if not f.epileptiform and r.random() < 0.6:
        desc.append(
            _choice(
                r,
                (
                    "No epileptiform discharges are seen.",
                    "There are no epileptiform abnormalities.",
                    "No spikes or sharp waves are present.",
                ),
            )
        )
    clock = session.start
    timed: list[tuple[datetime, str]] = []  # events: when, what
    if f.seizure_count:
        seizure_kind = f.seizure_type or ""
        u_phrase = r.random()
        if u_phrase < 0.12 and f.seizure_count > 1:
            desc.append(f"Multiple {seizure_kind} seizures were identified.")
            truth_count, truth_types = None, [seizure_kind]
        elif u_phrase < 0.22:
            pronoun = "her" if plan.sex == "F" else "his"
            desc.append(
                f"The patient had {_count_text(f.seizure_count, r)} of {pronoun} typical events, with ictal"
                " rhythmic activity on the EEG."
            )
            truth_count, truth_types = f.seizure_count, []
        elif r.random() < 0.5 or session.study_type == "routine":
            n_text = (
                "A single"
                if f.seizure_count == 1 and r.random() < 0.5
                else _count_text(f.seizure_count, r).capitalize()
            )
            noun = "seizure" if f.seizure_count == 1 else "seizures"
            verb = "was" if f.seizure_count == 1 else "were"
            desc.append(f"{n_text} {seizure_kind} {noun} {verb} recorded.")
            truth_count, truth_types = f.seizure_count, [seizure_kind]
        else:
            desc.append(
                f"{_count_text(f.seizure_count, r).capitalize()} typical events were captured, each with a"
                f" clear electrographic correlate consistent with {seizure_kind} seizures."
            )
            truth_count, truth_types = f.seizure_count, [seizure_kind]
        for _ in range(min(f.seizure_count, 2) if truth_types else 0):
            clock = clock + timedelta(minutes=int(r.integers(3, max(4, min(session.duration_minutes, 900)))))
            hhmm = f"{clock:%H:%M}"
            timed.append(
                (clock, f"the patient had a {seizure_kind} seizure lasting {int(r.integers(20, 120))} seconds.")
            )
            events.append({"time": hhmm, "kind": "seizure"})
    else:
        truth_count, truth_types = 0, []
        if r.random() < 0.6:
            desc.append(
                _choice(
                    r,
                    (
                        "No seizures were recorded.",
                        "There were no electrographic seizures.",
                        "No clinical or electrographic seizures occurred.",
                        "The patient's typical events were captured without an EEG correlate.",
                    ),
                )
            )
    for _ in range(f.pushbuttons):
        clock = clock + timedelta(minutes=int(r.integers(5, 600)))
        hhmm = f"{clock:%H:%M}"
        timed.append((clock, "the patient pushed the event button for a typical spell; there was no EEG change."))
        events.append({"time": hhmm, "kind": "pushbutton"})
    by_day = session.days > 1 and r.random() < 0.6  # long-term monitoring written day by day
    if not by_day:
        desc.extend(f"At {when:%H:%M}, {what}" for when, what in timed)
    if r.random() < 0.5:
        desc.append("Photic stimulation produces a symmetric driving response.")
    if r.random() < 0.4:
        desc.append("Stage II sleep is recorded with symmetric spindles.")
    description_header = _choice(r, ("DESCRIPTION OF THE RECORD", "DESCRIPTION"), p=[0.8, 0.2])
    monitoring_days: list[str] = []
    if by_day:
        events_header = r.random() < 0.4
        for k in range(session.days - 1):
            day_start, day_end = study_day + timedelta(days=k), study_day + timedelta(days=k + 1)
            lines.append(f"Long-Term Monitoring, {_prose_date(day_start, r)} to {_prose_date(day_end, r)}")
            monitoring_days.append(f"{day_start.isoformat()}/{day_end.isoformat()}")
            stated_dates |= {day_start.isoformat(), day_end.isoformat()}
            section("description", description_header, " ".join(desc) if k == 0 else "The background is unchanged.")
            lines.pop()
            today = [(w, t) for w, t in timed if min(max((w.date() - study_day).days, 0), session.days - 2) == k]
            if today and events_header:
                lines.append("EVENTS:")
                sections.append("events")
            lines.extend(f"EVENT TIME {when:%H:%M}: {what[0].upper()}{what[1:]}" for when, what in today)
            lines.append("")
        sections[:] = list(dict.fromkeys(sections))
    else:
        section("description", description_header, " ".join(desc))
    if "description" in sections and r.random() < 0.2:
        if f.epileptiform and f.epileptiform_location:
            kinds = " and ".join(k.replace("_", " ") for k in f.epileptiform)
            section(
                "abnormal_discharges",
                "ABNORMAL DISCHARGES",
                f"{kinds.capitalize()} in the {f.epileptiform_location} region.",
            )
        elif not f.seizure_count:
            section("seizures", "SEIZURES", _choice(r, ("None.", "No seizures were recorded.")))

    # HR
    hr_stated = None
    if r.random() > miss * 2:
        section("hr", "HR", f"{f.heart_rate} bpm.")
        hr_stated = f.heart_rate

    # IMPRESSION
    impression = None
    impression_header = impression_body = ""
    if r.random() > miss:
        impression = "abnormal" if f.abnormal else "normal"
        if f.abnormal:
            reasons = []
            if f.epileptiform:
                reasons.append(
                    f"{' and '.join(k.replace('_', ' ') for k in f.epileptiform)}"
                    f"{' in the ' + f.epileptiform_location + ' region' if f.epileptiform_location else ''}"
                )
            if f.slowing:
                reasons.append(f"{f.slowing} slowing" + (f" ({f.slowing_location})" if f.slowing_location else ""))
            if f.seizure_count:
                reasons.append(f"{f.seizure_type} seizures")
            style = r.random()
            if style < 0.5:
                body = "Abnormal EEG due to: " + " ".join(f"{i + 1}. {x.capitalize()}." for i, x in enumerate(reasons))
            elif style < 0.75:
                body = f"This EEG is abnormal because of {', '.join(reasons)}."
            elif style < 0.85:
                body = f"This record is remarkable for {', '.join(reasons)}."
            elif style < 0.9 and f.slowing == "generalized":
                body = f"This EEG is consistent with a {_choice(r, ('mild', 'moderate', 'severe'))} diffuse encephalopathy."
            else:
                body = f"{_choice(r, ('Mildly', 'Moderately'))} abnormal study with {', '.join(reasons)}."
            if f.seizure_count and f"{f.seizure_type} seizures" in body.lower():
                truth_types = [f.seizure_type or ""]
        else:
            body = _choice(
                r,
                (
                    "Normal EEG.",
                    "This is a normal EEG in wakefulness and sleep.",
                    "Normal awake and drowsy EEG.",
                    "No abnormalities were seen in this recording.",
                    "Within normal limits.",
                    "Normal EEG for age.",
                    "Unremarkable awake and asleep EEG.",
                ),
            )
        impression_header = _choice(r, ("IMPRESSION", "Impression", "INTERPRETATION"), p=[0.75, 0.15, 0.1])
        impression_body = body

    # CLINICAL CORRELATION
    correlation_body = None
    if r.random() > miss:
        if f.seizure_count:
            body = "The recorded seizures support a diagnosis of epilepsy."
        elif f.epileptiform:
            body = "The epileptiform discharges indicate an increased risk of seizures."
        elif f.abnormal:
            body = "The findings suggest a nonspecific cerebral dysfunction. No seizures were seen."
        else:
            body = "A normal EEG does not exclude a diagnosis of epilepsy."
        correlation_body = body
    if impression and correlation_body and r.random() < 0.15:
        section(
            ("impression", "clinical_correlation"),
            "IMPRESSION/CLINICAL CORRELATION",
            f"{impression_body} {correlation_body}",
        )
    else:
        if impression:
            section("impression", impression_header, impression_body)
        if correlation_body:
            section("clinical_correlation", "CLINICAL CORRELATION", correlation_body)

    if r.random() < 0.5:
        lines.append(f"Electronically signed by {plan.physician}, {_prose_date(last_day + timedelta(days=1), r)}")
    text = "\n".join(lines).rstrip() + "\n"

    truth.update(
        sections=sections,
        age=age if age_stated else None,
        sex=plan.sex if sex_stated else None,
        study_dates=sorted(stated_dates),
        study_type_stated=session.study_type if type_stated else None,
        duration_minutes=duration_stated,
        impression=impression,
        epileptiform=sorted(f.epileptiform),
        slowing=f.slowing,
        seizure_count=truth_count,
        seizure_types=truth_types,
        events=events,
        monitoring_days=monitoring_days,
        medications=meds_stated,
        heart_rate=hr_stated,
    )
    return text, truth


# ---------------------------------------------------------------------------------------------------------------
# Writing the archive


def _render_patient(plan: PatientPlan, config: EegGenerateConfig) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of every file of one patient, and one JSON line of truth per report."""
    for session in plan.sessions:
        folder = {"tuh": f"edf/tuh/{plan.subject[-3:]}/{plan.subject}", "accession": "edf/exports"}.get(
            session.scheme, "edf"
        )
        for k, f in enumerate(session.files):
            yield f"{folder}/{f.name}", render_edf(plan, session, k, config)
        if session.report_name:
            text, truth = render_report(plan, session, config)
            if session.report_broken == "not_utf8":
                # Saved by an old editor in Windows-1252: "µV" is then not UTF-8.
                raw = (text + "Sensitivity 7 \u00b5V/mm.\n").encode("cp1252", "replace")
            elif session.report_broken == "empty_report":
                raw = b""
            else:
                raw = text.encode("utf-8")
            truth["files"] = [f.name for f in session.files]
            truth["fate"] = session.report_broken or "ok"
            yield f"reports/{session.report_name}", raw
            yield "truth/reports.jsonl", (json.dumps(truth, sort_keys=True) + "\n").encode()


def links(plans: Iterable[PatientPlan]) -> list[tuple[str, str]]:
    """(report file, EDF file) of every true link: a report and a recording of the same session."""
    return [(s.report_name, f.name) for p in plans for s in p.sessions if s.report_name for f in s.files]


def files_table(plans: Iterable[PatientPlan]) -> list[dict]:
    return [
        {
            "edf_file": f.name,
            "patient": p.index,
            "session": s.number,
            "start": f.start.isoformat(sep=" "),
            "header_style": f.header_style,
            "oddity": f.oddity or "",
            "fate": f.broken or "ok",
            "report_id": s.report_name or "",
        }
        for p in plans
        for s in p.sessions
        for f in s.files
    ]


def generate_archive(
    spark: SparkSession, config: EegGenerateConfig, out_uri: str, *, num_partitions: int | None = None
) -> dict:
    """Render the archive on the executors and commit `out_uri` atomically; return counts (no identifiers).

    Layout: `edf/*.edf`, `reports/*.txt`, `truth/links.csv`, `truth/edf_files.csv`, `truth/reports.jsonl`,
    `manifest.json`, `_SUCCESS`. Files are written by the driver through the Hadoop FileSystem, one at a time.
    """
    plans = archive_plan(config)
    sc = spark.sparkContext
    slices = max(1, min(len(plans), num_partitions or sc.defaultParallelism))
    rendered = sc.parallelize(plans, slices).flatMap(lambda p: _render_patient(p, config))
    counts = {"edf_files": 0, "reports": 0, "bytes": 0}
    truth_lines: list[bytes] = []
    jvm = fs.jvm(spark)
    with fs.atomic_output(spark, out_uri) as tmp:
        hfs, _ = fs.hadoop(spark, tmp)
        for rel, data in rendered.toLocalIterator():
            if rel == "truth/reports.jsonl":
                truth_lines.append(data)
                continue
            out = hfs.create(jvm.org.apache.hadoop.fs.Path(f"{tmp}/{rel}"), True)
            try:
                if data:
                    out.write(bytearray(data))
            finally:
                out.close()
            counts["edf_files" if rel.startswith("edf/") else "reports"] += 1
            counts["bytes"] += len(data)
        truth_lines.sort()
        fs.write_text(spark, f"{tmp}/truth/reports.jsonl", b"".join(truth_lines).decode())
        link_rows = links(plans)
        fs.write_text(
            spark, f"{tmp}/truth/links.csv", "report_id,edf_file\n" + "".join(f"{a},{b}\n" for a, b in link_rows)
        )
        table = files_table(plans)
        columns = list(table[0]) if table else ["edf_file"]
        fs.write_text(
            spark,
            f"{tmp}/truth/edf_files.csv",
            ",".join(columns) + "\n" + "".join(",".join(str(row[c]) for c in columns) + "\n" for row in table),
        )
        summary = {
            "patients": len(plans),
            "sessions": sum(len(p.sessions) for p in plans),
            "edf_files": counts["edf_files"],
            "reports": counts["reports"],
            "links": len(link_rows),
            "broken_edf_files": sum(1 for row in table if row["fate"] != "ok"),
            "broken_reports": sum(1 for p in plans for s in p.sessions if s.report_broken),
            "reports_without_files": sum(1 for p in plans for s in p.sessions if s.report_name and not s.files),
            "files_without_reports": sum(len(s.files) for p in plans for s in p.sessions if not s.report_name),
            "bytes": counts["bytes"],
            "seed": config.seed,
            "config": asdict(config),
        }
        fs.write_json(spark, f"{tmp}/manifest.json", summary)
    log.info(
        "archive: %d patients, %d sessions, %d EDF files, %d reports, %d links",
        summary["patients"],
        summary["sessions"],
        summary["edf_files"],
        summary["reports"],
        summary["links"],
    )
    return summary
