"""Fault injection into the TensorFlow import (every job that loads a `.pb` and a `.bin` goes through
`import_tensorflow_model`): each row a broken model file and the one-line error it must give."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.tfimport import tfmodels
from pipelines.tfimport.errors import GraphFormatError, TFImportError, VariableMismatchError
from pipelines.tfimport.export import export_session
from pipelines.tfimport.load import import_tensorflow_model

T, F = 4, 2


@pytest.fixture(scope="module")
def models(spark, tmp_path_factory) -> Path:
    """good/model.pb + model.bin, other/model.bin (a model of another size, same variable names)."""
    root = tmp_path_factory.mktemp("tf_faults")
    for name, hidden in (("good", 3), ("other", 4)):
        model = tfmodels.compat_v1_lstm(T, F, hidden=hidden, seed=1)
        try:
            export_session(model.session, str(root / name), outputs=[model.output_name], spark=spark)
        finally:
            model.close()
    return root


def _bytes(source: str, cut: int = 0):
    def make(root: Path, target: Path) -> None:
        data = (root / source).read_bytes()
        target.write_bytes(data[: len(data) - cut])

    return make


# (row, the file to break: pb or bin, how to make it, error class, what the message says)
TABLE = [
    ("zero-length .pb", "pb", lambda root, p: p.write_bytes(b""), GraphFormatError, "the file is empty"),
    ("truncated .pb", "pb", _bytes("good/model.pb", cut=40), GraphFormatError, "truncated"),
    (
        "garbage .pb",
        "pb",
        lambda root, p: p.write_bytes(b"\x0a\xff\xff\xff\x0fnot a graph" * 20),
        GraphFormatError,
        "not a binary",
    ),
    ("folder as .pb", "pb", lambda root, p: p.mkdir(), GraphFormatError, "a folder, not a .pb file"),
    ("missing .pb", "pb", lambda root, p: None, GraphFormatError, "no such file"),
    ("zero-length .bin", "bin", lambda root, p: p.write_bytes(b""), TFImportError, "variable file"),
    (".bin of another model", "bin", _bytes("other/model.bin"), VariableMismatchError, "has shape"),
    ("folder as .bin", "bin", lambda root, p: p.mkdir(), VariableMismatchError, "a folder, not a .bin file"),
    ("missing .bin", "bin", lambda root, p: None, VariableMismatchError, "no such file"),
]


@pytest.mark.parametrize("uri_style", ["path", "file://"])
@pytest.mark.parametrize(("row", "part", "make", "error", "says"), TABLE, ids=[r[0] for r in TABLE])
def test_a_broken_model_file_gives_one_clear_error(spark, models, tmp_path, row, part, make, error, says, uri_style):
    pb, binary = tmp_path / "model.pb", tmp_path / "model.bin"
    shutil.copyfile(models / "good" / "model.pb", pb)
    shutil.copyfile(models / "good" / "model.bin", binary)
    broken = pb if part == "pb" else binary
    broken.unlink()
    make(models, broken)
    prefix = "file://" if uri_style == "file://" else ""
    with pytest.raises(error, match=says) as caught:
        import_tensorflow_model(f"{prefix}{pb}", bin_uri=f"{prefix}{binary}", spark=spark)
    message = str(caught.value)
    assert str(broken) in message.splitlines()[0]
    assert "\tat " not in message and "Py4JJavaError" not in message
