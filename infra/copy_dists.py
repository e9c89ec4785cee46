"""Copy installed distributions, with those they require, from this interpreter's venv into another venv.

    .venv/bin/python infra/copy_dists.py DEST_VENV NAME...

NAME `all` copies every distribution but the project (`pipelines`, installed editable; its requirements are copied).
Requirements that are not installed are left out (BigDL's: it is installed without them). `make package` builds the
packed venv with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "pipelines"


def closure(names: list[str]) -> list[metadata.Distribution]:
    """The installed distributions NAMES and, recursively, those they require (extras left out)."""
    installed = {canonicalize_name(dist.metadata["Name"]): dist for dist in metadata.distributions()}
    if names == ["all"]:
        names = [name for name in installed if name != PROJECT]
    missing = [name for name in names if canonicalize_name(name) not in installed]
    if missing:
        raise SystemExit(f"copy_dists.py: not installed: {' '.join(missing)}")
    found: dict[str, metadata.Distribution] = {}
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found or name not in installed:
            continue
        found[name] = installed[name]
        for line in found[name].requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    found.pop(PROJECT, None)
    return list(found.values())


def copy(dists: list[metadata.Distribution], dest: Path) -> None:
    for dist in dists:
        for file in dist.files or []:
            source = Path(dist.locate_file(file))
            if not source.exists():
                continue
            target = dest / os.path.relpath(source, sys.prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    dists = closure(args.names)
    copy(dists, args.dest)
    print(" ".join(sorted(dist.metadata["Name"] for dist in dists)))


if __name__ == "__main__":
    main()
