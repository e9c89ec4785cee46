"""Calls into BigDL's JVM side, with Java failures turned into one-paragraph Python errors.

BigDL's Python wrapper logs every Java failure with its whole stack trace before re-raising it; here that
logger is silenced for the duration of a call and the exception is replaced by a `TFImportError` that keeps
only the messages of the Java exception and its causes (the full chain stays on `__cause__`'s `java_exception`
for debugging, never in the message).

Two BigDL 2.4 behaviours that break graphs loaded from TensorFlow, and the workarounds used everywhere here:
- `ModelBroadcast.broadcast` (inside `predict`, `evaluate` and `DistriOptimizer`) empties the value of every
  `Const` node of the *driver's* model and never puts it back, so a second distributed call fails
  ("strides should be a 1D tensor, but got 0D tensor"). `distributed()` snapshots the Const values
  before such a call and restores them after it.
  A driver-side `forward` before later prediction is safe under this scheme too (a `Const` node's output
  *is* its value tensor, so restoring the value restores the output); a `forward` before *training* is not
  (the executors' copies lose their constants), so `transfer` never runs one on the model it trains.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

from pipelines.context import JAVA_STACK as STACK_OPTION
from pipelines.tfimport.errors import TFImportError, UnsupportedOpsError

T = TypeVar("T")
# Thread stack that BigDL's Java serialisation of a 96-step unrolled LSTM graph (~1,500 nodes) needs; the
# JVM default (1 MB) overflows. Measured: 16m is enough for T=96, H=32.
_BIGDL_ERROR_LOGGER = "bigdl.dllib.utils.log4Error"
_FAILS_AT = re.compile(r"fails\s+at node (?P<node>\S+?)\.?\s+Operation type is (?P<op>\S+)", re.S)


@contextmanager
def quiet_bigdl() -> Iterator[None]:
    logger = logging.getLogger(_BIGDL_ERROR_LOGGER)
    before = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(before)


_STACK_LINE = re.compile(r"^\s*(at\s|\.\.\.\s*\d+\s+more|Caused by:|Driver stacktrace:)")


def _without_stack(message: str, limit: int = 400) -> str:
    """A Java message on one line, without the stack traces Spark embeds in task failures."""
    lines = []
    for line in message.splitlines():
        if _STACK_LINE.match(line):
            if line.lstrip().startswith(("Caused by:", "Driver stacktrace:")):
                break
            continue
        if line.strip():
            lines.append(line.strip())
    text = " ".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def java_messages(exc: BaseException, limit: int = 6) -> list[str]:
    """Messages of a Py4JJavaError's Java exception and its causes (class name: first lines), no stack."""
    java = getattr(exc, "java_exception", None)
    out: list[str] = []
    seen = 0
    while java is not None and seen < limit:
        seen += 1
        try:
            cls = java.getClass().getSimpleName()
            message = java.getMessage()
        except Exception:  # noqa: BLE001 - the gateway may be gone
            break
        text = _without_stack(str(message or ""))
        if text and not any(text in m for m in out):
            out.append(f"{cls}: {text}")
        elif not text:
            out.append(cls)
        nxt = java.getCause()
        if nxt is None or nxt.equals(java):
            break
        java = nxt
    if not out:
        first = str(exc).strip().splitlines()
        out.append(first[0] if first else type(exc).__name__)
    return out


def translate(exc: BaseException, what: str) -> TFImportError:
    """A TFImportError for a failure of `what`, from a Py4JJavaError (or any exception)."""
    messages = java_messages(exc)
    joined = " | ".join(messages)
    if "StackOverflowError" in joined:
        return TFImportError(
            f"{what}: the JVM ran out of thread stack (StackOverflowError) serialising a deep graph (an unrolled "
            f"RNN over many steps): start Spark with {STACK_OPTION} in spark.driver.extraJavaOptions and "
            "spark.executor.extraJavaOptions"
        )
    match = _FAILS_AT.search(joined)
    if match and "ClassNotFoundException" in joined:
        return UnsupportedOpsError({match["op"]: [match["node"]]})
    if match:
        return TFImportError(
            f"{what}: BigDL cannot convert node {match['node']} (op {match['op']}): "
            + " | ".join(m for m in messages if "Cannot convert" not in m)
        )
    return TFImportError(f"{what}: {joined}")


def call(what: str, fn: Callable[..., T], *args) -> T:
    """Run a BigDL call; a Java failure becomes a TFImportError naming `what`."""
    from py4j.protocol import Py4JError

    with quiet_bigdl():
        try:
            return fn(*args)
        except (Py4JError, RuntimeError) as e:
            raise translate(e, what) from e


@contextmanager
def distributed(model) -> Iterator[None]:
    """Keep the Const values of `model` (a BigDL Layer) across a call that broadcasts it."""
    consts = model.value.findModules("Const")
    saved = [(consts.apply(i), consts.apply(i).value().shallowClone()) for i in range(consts.size())]
    try:
        yield
    finally:
        for module, value in saved:
            module.value().set(value)


def forward(model, batch: np.ndarray) -> np.ndarray:
    """`model`'s output for a driver-side batch, in inference mode (the model is left in it).

    Do not train a TF-loaded model after this (see the module docstring); predicting is fine.
    """

    def run():
        model.evaluate()
        return model.forward(np.ascontiguousarray(batch, dtype=np.float32))

    return np.asarray(call("running the imported model", run))


def load_tf(pb_path: str, inputs: list[str], outputs: list[str], bin_path: str | None = None):
    """BigDL's `loadTF` on local files; returns a `bigdl.dllib.nn.layer.Model`."""
    from bigdl.dllib.nn.layer import Model
    from bigdl.dllib.utils.common import callBigDlFunc

    jmodel = call(
        f"loading {pb_path} into BigDL",
        callBigDlFunc,
        "float",
        "loadTF",
        pb_path,
        inputs,
        outputs,
        "little_endian",
        bin_path,
        True,  # generated backward: imported models can be fine-tuned
    )
    return Model.of(jmodel)


def save_tensor_dictionary(tensors: Mapping[str, np.ndarray], local_path: str) -> None:
    """Write `tensors` as BigDL's `.bin`: a Java-serialised HashMap<String, JTensor> (saveTensorDictionary)."""
    from bigdl.dllib.utils.common import JTensor, callBigDlFunc

    jtensors = {
        name: JTensor.from_ndarray(np.ascontiguousarray(value, dtype=np.float32)) for name, value in tensors.items()
    }
    call(f"writing {local_path}", callBigDlFunc, "float", "saveTensorDictionary", jtensors, local_path)


def load_tensor_dictionary(local_path: str, source: str | None = None) -> dict[str, np.ndarray]:
    """Read a BigDL `.bin` into numpy arrays; errors name `source` (the file the local copy was made from).
    Java deserialisation: only for files from trusted places."""
    shown = source or local_path
    from bigdl.dllib.utils.common import _get_gateway

    gateway = _get_gateway()
    jvm = gateway.jvm

    def read():
        any_ref = getattr(jvm.scala.reflect, "ClassTag$").__getattr__("MODULE$").AnyRef()
        obj = jvm.com.intel.analytics.bigdl.dllib.utils.File.load(local_path, any_ref)
        if not obj.getClass().getName().endswith("HashMap"):
            raise TFImportError(f"{shown}: a {obj.getClass().getName()}, not a BigDL variable dictionary")
        out = {}
        for entry in obj.entrySet().toArray():
            name, jt = entry.getKey(), entry.getValue()
            if jt is None or not jt.getClass().getName().endswith("JTensor"):
                raise TFImportError(f"{shown}: entry {name} is not a JTensor")
            shape = [int(d) for d in jt.shape()]
            storage = np.frombuffer(_floats_to_bytes(jvm, jt.storage()), dtype=">f4").astype(np.float32)
            out[str(name)] = storage.reshape(shape) if shape else storage.reshape(())
        return out

    try:
        return call(f"reading the variable file {shown}", read)
    except TFImportError as e:
        raise TFImportError(f"{e} (is it a BigDL .bin written by saveTensorDictionary?)") from e.__cause__


def _floats_to_bytes(jvm, jfloats) -> bytes:
    """A Java float[] as big-endian bytes, in one gateway round trip."""
    buffer = jvm.java.nio.ByteBuffer.allocate(4 * len(jfloats))
    buffer.asFloatBuffer().put(jfloats)
    return bytes(buffer.array())


def thread_stack_bytes(spark) -> int | None:
    """The driver JVM's -Xss setting in bytes (None when not set: the JVM default, 1 MB on Linux x64)."""
    args = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
    size = None
    for arg in list(args):
        match = re.fullmatch(r"-Xss(\d+)([kKmMgG]?)", str(arg))
        if match:
            size = int(match[1]) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match[2].lower()]
    return size


def require_deep_graph_stack(spark, what: str) -> None:
    """Fail early, before any work, when the JVM cannot serialise a deep graph (see STACK_OPTION)."""
    needed = int(STACK_OPTION.removeprefix("-Xss").removesuffix("m")) * 2**20
    size = thread_stack_bytes(spark)
    if size is None or size < needed:
        raise TFImportError(
            f"{what} makes a deep graph (an unrolled RNN), which BigDL serialises recursively: start Spark with "
            f"{STACK_OPTION} in spark.driver.extraJavaOptions and spark.executor.extraJavaOptions "
            f"(this JVM has {'the default stack' if size is None else f'-Xss{size // 2**20}m'})"
        )
