"""Every job that writes, killed (SIGKILL) the moment its first temporary output appears, leaves its previous
outputs whole: the outputs a job declares (`parser.writes`) are found by its dry-run plan; each gets a previous
version (the shared fixture's, or a stand-in), and after the kill a replaced or merged output is byte for byte the
previous one, and an appended folder (checkpoints, summaries, a study's runs) still holds every previous file as it
was. Killing at the first temporary output also proves that nothing is written in place before it."""

from __future__ import annotations

import ctypes
import importlib
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines.cli import dry_run_plan, parse_job_args, run
from pipelines.config import load_config

pytestmark = pytest.mark.slow

SMALL = [
    *("--env", "ci", "--set", "generate.devices=16", "--set", "generate.days=8", "--set", "train.hidden_size=8"),
    *("--set", "evaluate.peers=[]"),
]
EEG_KEY = "interrupted-writers-test-key-0123456789"
PAIRING = ["--augment-copies", "0", "--set", "eeg.pairing.batch_size=32", "--set", "eeg.pairing.epochs=2"]
IN_CREATE, IN_MOVED_TO = 0x100, 0x80
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len, then the name


def _parser(job: str):
    module = importlib.import_module(f"jobs.{job}")
    return getattr(module, "parser", None) or module.build_parser()


def _run_in_process(job: str, *argv: str) -> None:
    assert run(importlib.import_module(f"jobs.{job}").main, _parser(job), list(argv)) == 0, f"{job} failed"


@pytest.fixture(scope="module")
def made(spark, tmp_path_factory):
    """What the jobs read, made once, in-process: a fleet ingested and windowed, a run trained for one epoch and
    evaluated, Backblaze files, two small TensorFlow models, a small EEG archive and pairing models trained on it."""
    from pipelines.config import EegGenerateConfig, defaults
    from pipelines.eeg.generate import generate_archive
    from pipelines.telemetry.sources import read_window_spec
    from pipelines.tfimport import tfmodels
    from pipelines.tfimport.export import export_session, freeze_keras
    from tests.integration.test_backblaze_adapter import write_files

    root = tmp_path_factory.mktemp("writers")
    m = SimpleNamespace(**{name: str(root / name) for name in ("fleet", "ingest", "windows", "run", "eeg", "pairing")})
    _run_in_process("generate_telemetry", "--out", m.fleet, *SMALL)
    _run_in_process("ingest_telemetry", "--input", m.fleet, "--out", m.ingest, *SMALL)
    failures = ("--failures", f"{m.fleet}/failures.csv")
    _run_in_process("build_windows", "--clean", f"{m.ingest}/clean", *failures, "--out", m.windows, *SMALL)
    _run_in_process("train_lstm", "--windows", m.windows, "--run-dir", m.run, *SMALL, "--set", "train.epochs=1")
    _run_in_process("evaluate_telemetry", "--windows", m.windows, "--run-dir", m.run, *SMALL)
    m.backblaze = str(write_files(root / "backblaze"))
    spec = read_window_spec(spark, m.windows)
    m.keras_pb = freeze_keras(
        tfmodels.keras_lstm(spec.length, spec.n_features, hidden=4, seed=1), str(root / "keras" / "model.pb")
    ).pb_uri
    graph = tfmodels.compat_v1_lstm(spec.length, spec.n_features, hidden=4, seed=2)
    try:
        pair = export_session(graph.session, str(root / "pair"), outputs=["probabilities"], spark=spark)
    finally:
        graph.close()
    m.pb, m.bin = pair.pb_uri, pair.bin_uri
    generate_archive(spark, defaults(EegGenerateConfig, patients=16, edf_seconds=1, sample_rates=[128]), m.eeg)
    _run_in_process("train_eeg_pairing", "--archive", m.eeg, "--out", m.pairing, *PAIRING)
    return m


# Every job that writes: its arguments, given what `made` holds and a place for its own outputs (a copy of the run
# folder for the jobs that write into one).
WRITERS: dict[str, Callable[[SimpleNamespace, str], list[str]]] = {
    "generate_telemetry": lambda m, out: [*SMALL, "--out", out],
    "ingest_telemetry": lambda m, out: ["--input", m.fleet, *SMALL, "--out", out],
    "ingest_backblaze": lambda m, out: ["--input", m.backblaze, "--out", out],
    "build_windows": lambda m, out: [
        *("--clean", f"{m.ingest}/clean", "--failures", f"{m.fleet}/failures.csv", "--out", out, *SMALL)
    ],
    "train_lstm": lambda m, run: ["--windows", m.windows, "--run-dir", run, *SMALL, "--set", "train.epochs=1"],
    "evaluate_telemetry": lambda m, run: ["--windows", m.windows, "--run-dir", run, *SMALL],
    "score_fleet": lambda m, run: ["--clean", f"{m.ingest}/clean", "--run-dir", run, *SMALL],
    "report": lambda m, run: ["--run-dir", run],
    "evaluate_tf": lambda m, run: ["--windows", m.windows, "--run-dir", run, "--model", m.keras_pb, *SMALL],
    "finetune_tf": lambda m, run: [
        *("--windows", m.windows, "--run-dir", run, "--model", m.pb, "--bin", m.bin, "--epochs", "1", *SMALL)
    ],
    "export_openvino": lambda m, out: ["--model", m.keras_pb, "--out", out],
    "batch_size_study": lambda m, out: [
        *("--windows", m.windows, "--out", out, *SMALL, "--set", "study.batch_sizes=[32]"),
        *("--set", "study.arms=[sgd_fixed]", "--set", "study.epochs=1", "--set", "study.base_batch_size=32"),
    ],
    "generate_eeg_archive": lambda m, out: ["--env", "ci", "--set", "eeg.generate.patients=4", "--out", out],
    "extract_eeg_reports": lambda m, out: ["--reports", f"{m.eeg}/reports", "--out", out],
    "pair_eeg": lambda m, out: [
        *("--reports", f"{m.eeg}/reports", "--edf", f"{m.eeg}/edf", "--model", m.pairing, "--out", out)
    ],
    "train_eeg_classifier": lambda m, out: [
        *("--env", "ci", "--archive", m.eeg, "--out", out, "--set", "eeg.classifier.batch_size=8")
    ],
    "train_eeg_pairing": lambda m, out: ["--archive", m.eeg, "--out", out, *PAIRING],
}
IN_RUN_FOLDER = {"train_lstm", "evaluate_telemetry", "score_fleet", "report", "evaluate_tf", "finetune_tf"}


def temporary(name: str) -> bool:
    """A folder being written by `fs.atomic_output` (`x._tmp-…`) or a file by `fs.atomic_file` (`.x.….tmp`)."""
    return "._tmp-" in name or (name.startswith(".") and name.endswith(".tmp"))


def planned_outputs(job: str, argv: list[str]) -> list[tuple[Path, str]]:
    """(path, mode) of every output the job declares, as its dry run plans them."""
    parser = _parser(job)
    args = parse_job_args(parser, argv)
    plan = dry_run_plan(parser, args, load_config(env=args.env, overrides=args.overrides), job=job)
    return [(Path(o["uri"]), o["mode"]) for o in plan["outputs"]]


def give_a_previous_version(path: Path, mode: str) -> None:
    """A stand-in for a previous run's output where the fixture left none: a file for a name with a suffix, else a
    folder with a file and `_SUCCESS` (an appended folder is only made)."""
    if path.exists():
        return
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"previous": true}\n' if path.suffix == ".json" else "the previous run's output")
    elif mode == "append":
        path.mkdir(parents=True)
    else:
        path.mkdir(parents=True)
        (path / "previous.txt").write_text("the previous run's output")
        (path / "_SUCCESS").touch()


def contents(path: Path) -> dict[str, bytes]:
    """Every file of an output (itself, for a file) and its bytes."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def kill_at_first_temporary(command: list[str], folders: set[Path], env: dict[str, str]) -> str:
    """Start `command` and SIGKILL it as soon as a temporary output is created in one of `folders` (watched with
    inotify, so even a small file's brief temporary is seen); the temporary's name."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    try:
        for folder in folders:
            assert libc.inotify_add_watch(fd, os.fsencode(folder), IN_CREATE | IN_MOVED_TO) >= 0, folder
        job = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 400
        while time.time() < deadline:
            if not select.select([fd], [], [], 0.2)[0]:
                assert job.poll() is None, f"{command[2]} ended (exit {job.returncode}) before it wrote anything"
                continue
            data, at = os.read(fd, 1 << 16), 0
            while at < len(data):
                _, _, _, size = EVENT.unpack_from(data, at)
                name = data[at + EVENT.size : at + EVENT.size + size].rstrip(b"\0").decode()
                at += EVENT.size + size
                if temporary(name):
                    job.send_signal(signal.SIGKILL)
                    job.wait(timeout=60)
                    return name
        job.kill()
        raise AssertionError(f"{command[2]} wrote no temporary output in time")
    finally:
        os.close(fd)


@pytest.mark.parametrize("job", list(WRITERS))
def test_a_job_killed_while_writing_leaves_the_previous_output_whole(made, tmp_path, job):
    place = tmp_path / "out"
    if job in IN_RUN_FOLDER:
        shutil.copytree(made.run, place)
    argv = WRITERS[job](made, str(place))
    outputs = planned_outputs(job, argv)
    assert outputs, f"{job} declares no output"
    for path, mode in outputs:
        give_a_previous_version(path, mode)
    before = {path: contents(path) for path, _ in outputs}

    env = {**os.environ, "EEG_DEID_KEY": EEG_KEY}
    killed_at = kill_at_first_temporary(
        [sys.executable, "-m", f"jobs.{job}", *argv], {path.parent for path, _ in outputs}, env
    )

    for path, mode in outputs:
        after = contents(path)
        if mode == "append":
            assert {k: after.get(k) for k in before[path]} == before[path], (path, killed_at)
        else:
            assert after == before[path], (path, killed_at)


def test_a_file_written_through_a_temporary_replaces_the_previous_one_or_leaves_it(spark, tmp_path):
    from pipelines.io import fs

    fs.write_text(spark, str(tmp_path / "policy.json"), "previous")
    with pytest.raises(RuntimeError), fs.atomic_file(spark, str(tmp_path / "policy.json")) as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("killed half-way")
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".crc")] == ["policy.json"]
    assert (tmp_path / "policy.json").read_text() == "previous"
    fs.write_text(spark, f"file://{tmp_path}/policy.json", "new")
    assert (tmp_path / "policy.json").read_text() == "new"


def _dying_commit(monkeypatch, target: Path) -> None:
    """From here on, renaming anything but the moved-aside previous version to `target` dies (as a SIGKILL would):
    a commit is killed between moving the previous `target` aside and renaming the new one into place."""
    from pipelines.io import fs

    hadoop = fs.hadoop

    class Dying:
        def __init__(self, fsys):
            self.fsys = fsys

        def __getattr__(self, name):
            return getattr(self.fsys, name)

        def rename(self, src, dst):
            if dst.getName() == target.name and not src.getName().endswith(".previous"):
                raise SystemExit("killed")
            return self.fsys.rename(src, dst)

    def dying(spark, uri):
        fsys, path = hadoop(spark, uri)
        return Dying(fsys), path

    monkeypatch.setattr(fs, "hadoop", dying)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_commit_killed_between_its_renames_leaves_the_previous_version_for_the_next_writer(
    spark, tmp_path, monkeypatch, kind
):
    from pipelines.io import fs

    target = tmp_path / "out"
    atomic = fs.atomic_file if kind == "file" else fs.atomic_output

    def write(text: str, *, fail: bool = False) -> None:
        with atomic(spark, str(target)) as tmp:
            if kind == "folder":
                Path(tmp).mkdir()
                tmp = f"{tmp}/part"
            Path(tmp).write_text(text)
            if fail:
                raise RuntimeError("failed")

    def read() -> str:
        return (target if kind == "file" else target / "part").read_text()

    write("previous")
    with monkeypatch.context() as patch:
        _dying_commit(patch, target)
        with pytest.raises(SystemExit):
            write("new")
    assert not target.exists() and (tmp_path / ".out.previous").exists()
    with pytest.raises(RuntimeError):
        write("failed", fail=True)  # the next writer puts the previous version back first
    assert read() == "previous"
    write("new")
    assert read() == "new" and [p.name for p in tmp_path.iterdir()] == ["out"]
