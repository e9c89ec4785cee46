"""Planted identifiers, property style: every Safe Harbor kind, in many formats, in every section of generated and
hand-written reports; none may reach any research output of a report (`curate_row`: findings, monitoring days,
de-identified text, ids) or any log. A seeded random generator draws the plants (no Spark: seconds)."""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from datetime import date, timedelta

import pytest

from pipelines.config import EegGenerateConfig, defaults
from pipelines.eeg.curate import curate_row
from pipelines.eeg.extract import walk
from pipelines.eeg.generate import archive_plan, render_report
from tests.unit.test_eeg_handwritten import handwritten

KEY = b"property-test-key-0123456789"
REPORTS = 1000
FIRST = ("Zelda", "Horatio", "Thaddeus", "Gertrude", "Ignatius", "Philippa", "Eudora", "Cornelius", "Wilhelmina")
FIRST += ("Ezekiel", "Millicent", "Ottoline", "Percival", "Rosalind", "Leopold", "Araminta", "Bartholomew")
LAST = ("Quimby", "Krumholz", "Pemberton", "Vandermeer", "Oyelaran", "Szczepanski", "Nakamura-Boyd", "O'Halloran")
LAST += ("McTavish", "Abernathy", "Featherstone", "Okonkwo", "Castellanos", "Dubois", "Achterberg", "Ravensworth")
CITIES = ("Quahogton", "Plumfield", "Brackenridge", "Eastwick", "Millbrook", "Thornbury", "Glenrothes", "Wexcombe")
STREETS = ("Wallaby", "Larkspur", "Juniper", "Honeysuckle", "Cobblestone", "Wisteria")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October")
MONTHS += ("November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _digits(r: random.Random, n: int) -> str:
    return str(r.randint(1, 9)) + "".join(str(r.randint(0, 9)) for _ in range(n - 1))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _phone(r: random.Random) -> tuple[str, str, str]:
    return str(r.randint(201, 989)), str(r.randint(200, 989)), str(r.randint(3000, 8999))  # no year-like tails


_YEARS: list[int] = []  # the years the next planted dates take, refilled per report


def _fresh_years(r: random.Random) -> None:
    """Planted dates of one report lie two years apart and before the reports' own years, so that no date shifted
    back by at most a year can equal another planted date as written."""
    _YEARS[:] = r.sample(range(1951, 2002, 2), 25)


def _day(r: random.Random) -> date:
    return date(_YEARS.pop(), 1, 1) + timedelta(days=r.randint(0, 364))


# Each format: (kind, name, function(rng) -> (sentence to plant, [strings that must not survive])).
def _formats():
    def name(r):
        return r.choice(FIRST), r.choice(LAST)

    def f(kind, label, make):
        return kind, label, make

    out = [
        f("patient_name", "title_last", lambda r: (lambda n: (f"Mrs. {n[1]} tolerated the study", [n[1]]))(name(r))),
        f("patient_name", "is_a_year_old", lambda r: (lambda n: (f"{n[0]} {n[1]} is a 40-year-old", list(n)))(name(r))),
        f(
            "patient_name",
            "patient_comma",
            lambda r: (lambda n: (f"The patient, {n[0]} {n[1]}, slept", list(n)))(name(r)),
        ),
        f("physician", "dr_last", lambda r: (lambda n: (f"Discussed with Dr. {n[1]}", [n[1]]))(name(r))),
        f("physician", "dr_full", lambda r: (lambda n: (f"Referred by Dr {n[0]} {n[1]}", list(n)))(name(r))),
        f("physician", "name_md", lambda r: (lambda n: (f"Read by {n[0][0]}. {n[1]}, MD", [n[1]]))(name(r))),
        f("physician", "caps_dr", lambda r: (lambda n: (f"cc: DR. {n[1].upper()}", [n[1]]))(name(r))),
        f(
            "physician",
            "signed_by",
            lambda r: (lambda n: (f"Electronically signed by {n[0]} {n[1]}", list(n)))(name(r)),
        ),
        f(
            "technologist",
            "tech_initials",
            lambda r: (lambda n: (f"Tech: {n[0][0]}.{n[1][0]}.", [f"{n[0][0]}.{n[1][0]}."]))(name(r)),
        ),
        f(
            "technologist",
            "technologist_name",
            lambda r: (lambda n: (f"Technologist: {n[0]} {n[1]}", list(n)))(name(r)),
        ),
        f("technologist", "reegt", lambda r: (lambda n: (f"Recorded by {n[0]} {n[1]}, R. EEG T.", list(n)))(name(r))),
        f("family", "daughter", lambda r: (lambda n: (f"Her daughter, {n[0]} {n[1]}, was present", list(n)))(name(r))),
        f("family", "mother_named", lambda r: (lambda n: (f"History from the mother, {n[0]}", [n[0]]))(name(r))),
        f(
            "family",
            "husband",
            lambda r: (lambda n: (f"The husband {n[0]} {n[1]} witnessed the event", list(n)))(name(r)),
        ),
        f(
            "place",
            "street",
            lambda r: (lambda s: (f"Lives at {r.randint(10, 999)} {s} Street, Apt 4", [s]))(r.choice(STREETS)),
        ),
        f("place", "city_state", lambda r: (lambda c: (f"Transferred from {c}, PA", [c]))(r.choice(CITIES))),
        f("place", "lives_in", lambda r: (lambda c: (f"She lives in {c} with family", [c]))(r.choice(CITIES))),
        f("place", "hospital", lambda r: (lambda c: (f"Seen first at {c} Memorial Hospital", [c]))(r.choice(CITIES))),
        f("place", "county", lambda r: (lambda c: (f"Resident of {c} County", [c]))(r.choice(CITIES))),
        f("place", "zip", lambda r: (lambda z: (f"Home zip code {z}", [z]))(_digits(r, 5))),
        f(
            "age_over_89",
            "hyphenated",
            lambda r: (lambda a: (f"Her sister is a {a}-year-old", [f"{a}-year"]))(r.randint(91, 104)),
        ),
        f("age_over_89", "y_o", lambda r: (lambda a: (f"Grandfather {a} y/o", [f"{a} y/o"]))(r.randint(91, 104))),
        f("age_over_89", "aged", lambda r: (lambda a: (f"Aged {a} at the time", [f"aged {a}"]))(r.randint(91, 104))),
        f(
            "age_over_89",
            "years_of_age",
            lambda r: (lambda a: (f"The patient is {a} years of age", [f"{a} years"]))(r.randint(91, 104)),
        ),
        f("age_over_89", "words", lambda r: ("A ninety-three-year-old neighbour called", ["ninety-three"])),
        f(
            "phone",
            "parenthesised",
            lambda r: (lambda p: (f"Call ({p[0]}) {p[1]}-{p[2]}", [f"{p[1]}-{p[2]}", "".join(p)]))(_phone(r)),
        ),
        f("phone", "dashed", lambda r: (lambda p: (f"Phone {'-'.join(p)}", ["-".join(p), "".join(p)]))(_phone(r))),
        f(
            "phone",
            "dotted",
            lambda r: (lambda p: (f"Reach her at {'.'.join(p)}", [".".join(p), "".join(p)]))(_phone(r)),
        ),
        f(
            "phone",
            "spaced_plus1",
            lambda r: (lambda p: (f"Mobile +1 {' '.join(p)}", [" ".join(p), "".join(p)]))(_phone(r)),
        ),
        f("phone", "seven_digits", lambda r: (lambda p: (f"Pager 555-{p[2]}", [f"555-{p[2]}"]))(_phone(r))),
        f("phone", "extension", lambda r: (lambda x: (f"Neurology ext. {x}", [x]))(_digits(r, 4))),
        f("fax", "fax", lambda r: (lambda p: (f"Fax results to {'-'.join(p)}", ["-".join(p), "".join(p)]))(_phone(r))),
        f(
            "email",
            "email",
            lambda r: (
                lambda n: (
                    f"E-mail {n[0].lower()}.{n[1][:3].lower()}@example.org",
                    [f"{n[0].lower()}.{n[1][:3].lower()}@", n[0]],
                )
            )(name(r)),
        ),
        f("ssn", "dashed", lambda r: (lambda s: (f"SSN {s[:3]}-{s[3:5]}-{s[5:]}", [s[5:], s]))(_digits(r, 9))),
        f(
            "ssn",
            "spaced",
            lambda r: (lambda s: (f"Social security {s[:3]} {s[3:5]} {s[5:]}", [f"{s[3:5]} {s[5:]}", s]))(
                _digits(r, 9)
            ),
        ),
        f("mrn", "mrn", lambda r: (lambda m: (f"MRN {m}", [m]))(_digits(r, 8))),
        f("mrn", "mr_hash_zeros", lambda r: (lambda m: (f"MR# 00{m}", [m]))(_digits(r, 6))),
        f(
            "mrn",
            "record_dashed",
            lambda r: (lambda m: (f"medical record number {m[:2]}-{m[2:5]}-{m[5:]}", [m[2:5] + "-" + m[5:], m]))(
                _digits(r, 8)
            ),
        ),
        f("mrn", "alphanumeric", lambda r: (lambda m: (f"record #A{m}", [m]))(_digits(r, 7))),
        f("health_plan", "medicaid", lambda r: (lambda m: (f"Medicaid ID 1EG4-TE5-MK{m}", [f"MK{m}"]))(_digits(r, 2))),
        f("health_plan", "member", lambda r: (lambda m: (f"member ID W{m}", [m]))(_digits(r, 9))),
        f("account", "account", lambda r: (lambda m: (f"account number 00{m}", [m]))(_digits(r, 8))),
        f("account", "acct_hash", lambda r: (lambda m: (f"Acct # {m[:5]}-{m[5]}", [f"{m[:5]}-{m[5]}"]))(_digits(r, 6))),
        f("licence", "drivers", lambda r: (lambda m: (f"driver's license D{m}", [m]))(_digits(r, 7))),
        f("licence", "plate", lambda r: (lambda m: (f"license plate KXR-{m}", [f"KXR-{m}"]))(_digits(r, 4))),
        f("device", "serial", lambda r: (lambda m: (f"VNS serial number XJ-{m}-K", [f"XJ-{m}"]))(_digits(r, 4))),
        f("device", "s_n", lambda r: (lambda m: (f"amplifier S/N 4C{m}B1", [f"4C{m}B1"]))(_digits(r, 4))),
        f(
            "device",
            "device_id",
            lambda r: (lambda m: (f"device ID VNS-{m[:3]}-{m[3:]}", [f"VNS-{m[:3]}-{m[3:]}"]))(_digits(r, 6)),
        ),
        f(
            "url",
            "https",
            lambda r: (lambda m: (f"Images at https://portal.example.org/pt/{m}", [f"example.org/pt/{m}", m]))(
                _digits(r, 6)
            ),
        ),
        f(
            "url",
            "www",
            lambda r: (lambda c: (f"See www.{c.lower()}family.net", [f"{c.lower()}family"]))(r.choice(CITIES)),
        ),
        f(
            "ip",
            "ipv4",
            lambda r: (lambda a: (f"Recorded on host 10.{a[0]}.{a[1]}.{a[2]}", [f"10.{a[0]}.{a[1]}.{a[2]}"]))(
                [r.randint(0, 255) for _ in range(3)]
            ),
        ),
        f(
            "ip",
            "ipv6",
            lambda r: (lambda h: (f"Uploaded from fe80::1ff:fe23:{h}:890a", [f"fe23:{h}"]))(
                f"{r.randint(4096, 65535):x}"
            ),
        ),
        f("other_number", "accession", lambda r: (lambda m: (f"accession {m}", [m]))(_digits(r, 8))),
        f("other_number", "study_id", lambda r: (lambda m: (f"study EEG{m}", [m]))(_digits(r, 6))),
        f("other_number", "vin", lambda r: (lambda m: (f"VIN 1HGCM8263{m}", [m]))(_digits(r, 8))),
    ]
    dates = [
        ("m_d_yyyy", lambda d: f"{d.month}/{d.day}/{d.year}"),
        ("m_d_yy", lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}"),
        ("m_d_yy_dash", lambda d: f"{d.month:02d}-{d.day:02d}-{d.year % 100:02d}"),
        ("d_m_yyyy_dots", lambda d: f"{d.day}.{d.month}.{d.year}"),
        ("iso", lambda d: d.isoformat()),
        ("month_d_yyyy", lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}"),
        ("mon_dth_yyyy", lambda d: f"{MONTHS[d.month - 1][:3]}. {_ordinal(d.day)}, {d.year}"),
        ("d_month_yyyy", lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}"),
        ("dd_mon_yyyy", lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3].upper()}-{d.year}"),
        ("weekday_date", lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}"),
        ("month_d_no_year", lambda d: f"{MONTHS[d.month - 1]} {d.day}"),
        ("mon_dth_no_year", lambda d: f"{MONTHS[d.month - 1][:3]}. {_ordinal(d.day)}"),
        ("the_dth", lambda d: f"the {_ordinal(d.day)}"),
        ("on_m_d", lambda d: f"{d.month}/{d.day}"),
        ("month_range", lambda d: f"{MONTHS[d.month - 1]} {min(d.day, 27)}-{min(d.day, 27) + 1}, {d.year}"),
        ("numeric_range", lambda d: f"{d.month}/{min(d.day, 27)}-{d.month}/{min(d.day, 27) + 1}/{d.year}"),
        ("month_year", lambda d: f"{MONTHS[d.month - 1]} {d.year}"),
    ]
    for label, form in dates:
        out.append(
            f("date", label, lambda r, form=form: (lambda d: (f"Last seizure on {form(d)}", [form(d)]))(_day(r)))
        )
    return out


FORMATS = _formats()
# A date element that must not survive in any form (ISO dates are the shifted ones).
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b"
DATE_ELEMENT = re.compile(
    rf"\b{_MONTH}\.?[ \t]+\d{{1,2}}(?!\d)|(?<!\d)\d{{1,2}}(?:st|nd|rd|th)?[ \t]+(?:of[ \t]+)?{_MONTH}"
    r"|\b\d{1,2}/\d{1,2}\b|\b\d{1,2}-\d{1,2}-\d{2,4}\b|\b\d{1,2}\.\d{1,2}\.\d{4}\b"
    r"|\bthe\s+\d{1,2}(?:st|nd|rd|th)\b|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.I,
)


def _base_reports() -> list[tuple[str, str]]:
    config = defaults(EegGenerateConfig, patients=120, seed=31)
    generated = [
        (s.report_name, render_report(p, s, config)[0])
        for p in archive_plan(config)
        for s in p.sessions
        if s.report_name
    ]
    return generated + [(name, text) for name, text, _ in handwritten()]


def _plant(text: str, r: random.Random, used: Counter) -> tuple[str, list[str]]:
    """`text` with one identifier planted in the preamble, in every section and after the end."""
    _fresh_years(r)
    lines = text.splitlines()
    by_section: dict[str, list[int]] = {}
    for i, (names, _, _) in enumerate(walk(text)):
        by_section.setdefault(names[0] if names else "preamble", []).append(i)
    secrets: list[str] = []
    inserts: dict[int, list[str]] = {}
    header_name = re.search(r"^Patient Name: (?:[A-Z]+, )?([A-Z][a-z]+|[A-Z]+)", text, re.M)
    for section, rows in [*by_section.items(), ("end", [len(lines)])]:
        kind, label, make = r.choice(FORMATS)
        sentence, hidden = make(r)
        if header_name and r.random() < 0.1:  # a name known from the header, written bare
            first = header_name.group(1).capitalize()
            kind, label, sentence, hidden = "patient_name", "bare_known_name", f"{first} was cooperative", [first]
        used[(kind, label)] += 1
        used[("section", section)] += 1
        secrets += hidden
        row = r.choice(rows)
        if row < len(lines) and lines[row].strip() and r.random() < 0.6:
            lines[row] = f"{lines[row]} {sentence}."
        else:
            inserts.setdefault(row, []).append(f"{sentence}.")
    for row in sorted(inserts, reverse=True):
        lines[row:row] = inserts[row]
    return "\n".join(lines) + "\n", secrets


def _leaks(output: str, secrets: list[str]) -> list[str]:
    lower, digits = output.lower(), re.sub(r"\D", "", output)
    found = []
    for secret in secrets:
        if re.search(rf"(?<![a-z0-9]){re.escape(secret.lower())}(?![a-z0-9])", lower):
            found.append(secret)
        elif secret.isdigit() and len(secret) >= 7 and secret in digits:
            found.append(secret)
    return found


def test_no_planted_identifier_reaches_an_output_or_a_log(caplog):
    caplog.set_level(logging.DEBUG)
    base = _base_reports()
    r = random.Random(20261201)
    used: Counter = Counter()
    leaks, date_elements = [], []
    for n in range(REPORTS):
        name, text = base[n % len(base)]
        planted, secrets = _plant(text, r, used)
        row = curate_row(f"report_{n}.txt", planted, KEY, 365)
        output = repr(row)
        leaks += [(name, s) for s in _leaks(output, secrets)]
        date_elements += [(name, m.group(0)) for m in DATE_ELEMENT.finditer(row[-1])]
    kinds = {k for k, _ in used if k != "section"}
    formats = [key for key in used if key[0] != "section"]
    sections = {s for k, s in used if k == "section"}
    planted = sum(used[key] for key in formats)
    print(
        f"\n{REPORTS} reports ({len(base)} bases), {planted} identifiers planted: {len(formats)} formats of {len(kinds)} kinds"
    )
    assert len(base) >= 150 and len(formats) == len(FORMATS) + 1 >= 30 and len(kinds) >= 17
    assert {"preamble", "end", "clinical_history", "description", "impression", "events", "seizures"} <= sections
    assert min(used[key] for key in formats) >= 10
    assert not leaks, leaks[:20]
    assert not date_elements, date_elements[:20]
    assert not [s for s in ("Quimby", "Pemberton", "555-") if s in caplog.text]


@pytest.mark.parametrize("kind, label, make", FORMATS, ids=[f"{k}-{x}" for k, x, _ in FORMATS])
def test_each_format_alone_is_removed(kind, label, make):
    r = random.Random(label)
    for _ in range(20):
        _fresh_years(r)
        sentence, secrets = make(r)
        text = f"CLINICAL HISTORY:  A 40-year-old woman.\n\nDESCRIPTION OF THE RECORD:  {sentence}.\n"
        assert not _leaks(repr(curate_row("r.txt", text, KEY, 365)), secrets), sentence
