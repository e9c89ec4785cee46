"""Shared vocabulary of the EEG domain: canonical section names, medications, locations, seizure types.

The generator writes with it and the extractor reads with it, so both agree on the canonical values; what the
extractor has to cope with is the variety of surface forms, typos and omissions, not a different vocabulary.
"""

from __future__ import annotations

SECTIONS = (
    "clinical_history",
    "medications",
    "reason_for_study",
    "introduction",
    "technical_difficulties",
    "description",
    "abnormal_discharges",
    "seizures",
    "events",
    "hr",
    "impression",
    "clinical_correlation",
)

# Surface forms of section headings seen in reports (upper-cased, single-spaced, without the colon). Combined
# headings (`IMPRESSION/CLINICAL CORRELATION`) are read part by part.
SECTION_HEADERS: dict[str, tuple[str, ...]] = {
    "clinical_history": ("CLINICAL HISTORY", "HISTORY", "CLINICAL INFORMATION", "BRIEF CLINICAL HISTORY"),
    "medications": ("MEDICATIONS", "MEDS", "CURRENT MEDICATIONS", "MEDICATION"),
    "reason_for_study": (
        "REASON FOR STUDY",
        "REASON FOR THE STUDY",
        "REASON FOR EEG",
        "REASON FOR REFERRAL",
        "INDICATION",
    ),
    "introduction": ("INTRODUCTION", "TECHNIQUE"),
    "technical_difficulties": ("TECHNICAL DIFFICULTIES", "TECHNICAL PROBLEMS", "TECHNICAL ISSUES"),
    "description": (
        "DESCRIPTION OF THE RECORD",
        "DESCRIPTION",
        "DESCRIPTION OF RECORD",
        "DESCRIPTION OF THE RECORDING",
        "FINDINGS",
    ),
    "abnormal_discharges": ("ABNORMAL DISCHARGES", "EPILEPTIFORM DISCHARGES", "EPILEPTIFORM ACTIVITY"),
    "seizures": ("SEIZURES", "SEIZURE", "ELECTROGRAPHIC SEIZURES"),
    "events": ("EVENTS", "CLINICAL EVENTS", "PUSHBUTTON EVENTS", "PUSH BUTTON EVENTS"),
    "hr": ("HR", "HEART RATE", "EKG", "ECG"),
    "impression": ("IMPRESSION", "IMPRESSIONS", "INTERPRETATION", "CONCLUSION", "CONCLUSIONS"),
    "clinical_correlation": ("CLINICAL CORRELATION", "CORRELATION", "COMMENT", "COMMENTS"),
}

# generic name -> brand names used in reports
MEDICATIONS: dict[str, tuple[str, ...]] = {
    "levetiracetam": ("Keppra",),
    "phenytoin": ("Dilantin",),
    "valproate": ("Depakote", "valproic acid"),
    "lamotrigine": ("Lamictal",),
    "carbamazepine": ("Tegretol",),
    "topiramate": ("Topamax",),
    "lorazepam": ("Ativan",),
    "lacosamide": ("Vimpat",),
    "oxcarbazepine": ("Trileptal",),
    "phenobarbital": (),
    "zonisamide": ("Zonegran",),
    "clonazepam": ("Klonopin",),
}

LOCATIONS = (
    "left temporal",
    "right temporal",
    "left frontal",
    "right frontal",
    "left central",
    "right central",
    "left parietal",
    "right parietal",
    "left occipital",
    "right occipital",
    "bifrontal",
    "left hemisphere",
    "right hemisphere",
)

SEIZURE_TYPES = ("focal", "generalized tonic-clonic", "absence", "electrographic", "myoclonic")
EPILEPTIFORM_TYPES = ("spikes", "sharp_waves", "spike_and_wave")
STUDY_TYPES = ("routine", "ltm", "video")
SLOWING_TYPES = ("focal", "generalized")
EVENT_KINDS = ("pushbutton", "seizure", "event")

NUMBER_WORDS = {
    "one": 1,
    "single": 1,
    "a": 1,
    "an": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
