"""Spark-native failure prediction and clinical-data pipelines on BigDL."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _conf_dir() -> Path:
    """$PIPELINES_CONF_DIR, else the repository's conf/, else ./conf (when imported from a --py-files zip)."""
    if os.environ.get("PIPELINES_CONF_DIR"):
        return Path(os.environ["PIPELINES_CONF_DIR"])
    if (PROJECT_ROOT / "conf").is_dir():
        return PROJECT_ROOT / "conf"
    return Path.cwd() / "conf"


CONF_DIR = _conf_dir()
