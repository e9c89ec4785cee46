"""Spark-native failure prediction and clinical-data pipelines on BigDL."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"
