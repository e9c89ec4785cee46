"""Errors of the TensorFlow import, each with a message a user can act on (never a Java stack trace)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class TFImportError(ValueError):
    """A TensorFlow model that cannot be imported or run in BigDL; the message says why."""


class GraphFormatError(TFImportError):
    """The file is not a (complete) binary GraphDef: corrupt, truncated or of another format."""


class NodeNameError(TFImportError):
    """An input or output name that the graph does not have, or that cannot be chosen automatically."""


class UnsupportedOpsError(TFImportError):
    """Operations that BigDL's TensorFlow loader has no loader for, even after rewriting.

    `ops` maps each op type to the names of the nodes using it.
    """

    def __init__(self, ops: Mapping[str, Sequence[str]], *, hint: str = "", max_names: int = 5):
        self.ops = {op: list(names) for op, names in sorted(ops.items())}
        # The first line alone (what a job prints) names every op type, its count and a first node.
        summary = "; ".join(
            f"{op} x{len(names)} ({names[0]}{', ...' if len(names) > 1 else ''})" for op, names in self.ops.items()
        )
        lines = [
            f"BigDL cannot load {sum(len(v) for v in self.ops.values())} node(s) of "
            f"{len(self.ops)} unsupported op type(s): {summary}"
        ]
        for op, names in self.ops.items():
            shown = ", ".join(names[:max_names]) + (
                f", ... ({len(names) - max_names} more)" if len(names) > max_names else ""
            )
            lines.append(f"  {op} x{len(names)}: {shown}")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class VariableMismatchError(TFImportError):
    """A `.bin` variable file that does not match the graph's variables (missing, or of another shape)."""


class InputShapeError(TFImportError):
    """Input data whose shape differs from the graph's input placeholder."""
