"""What the fault tables share: a row type, byte builders and a batch writer that breaks files the way a transfer,
a disk or a person does."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.io import probe

AS_ROOT = os.geteuid() == 0
UNREADABLE_SKIP = "root reads any file: chmod 000 does not stop it" if AS_ROOT else ""


@dataclass(frozen=True)
class Fault:
    name: str  # the file's name in the batch
    make: Callable[[str], bytes]  # a per-file id (used in device or drive ids) -> the file's bytes
    reason: str | None  # the file's quarantine reason; None: read
    rows: int = 0  # records read from the file
    bad_rows: int = 0  # of which quarantined
    skip: str = ""

    def id(self, table: list[Fault]) -> str:
        return f"{table.index(self):02d}"


def text(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def corrupt(data: bytes) -> bytes:
    """`data` with one byte in the middle flipped."""
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    return bytes(flipped)


def write_batch(folder: Path, table: list[Fault], suffix: str = ".csv") -> Path:
    """Every file of `table` in `folder`, plus a directory named like a data file (`folder<suffix>`); the files
    expected `unreadable` get mode 000."""
    folder.mkdir(parents=True)
    for fault in table:
        (folder / fault.name).write_bytes(fault.make(fault.id(table)))
    (folder / f"folder{suffix}").mkdir()  # a directory where a file is expected: walked like any folder, holds nothing
    for fault in table:
        if fault.reason == "unreadable":
            (folder / fault.name).chmod(0)
    return folder


@contextmanager
def deleted_after_listing(path: Path) -> Iterator[None]:
    """Inside this block, `path` disappears right after the input is listed by `probe.list_files`, before any file
    is read."""
    listed = probe.list_files

    def list_then_delete(*args, **kwargs):
        found = listed(*args, **kwargs)
        path.unlink()
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(probe, "list_files", list_then_delete)
        yield
