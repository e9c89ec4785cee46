"""The Backblaze adapter on small hand-made daily files whose columns differ (the real files: test_backblaze_chain)."""

import dataclasses
import gzip
import math
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pipelines.config import BackblazeConfig, PipelineConfig, WindowsConfig, defaults
from pipelines.telemetry import backblaze as bb
from pipelines.telemetry import windows as generic_windows

CONFIG = defaults(BackblazeConfig, attributes=[5, 9, 187, 194], max_fill_gap_days=1)

# An older header without smart_187; a newer one with smart_187 added and a new smart_999 column moving smart_194.
OLD = "date,serial_number,model,capacity_bytes,failure,smart_5_normalized,smart_5_raw,smart_9_raw,smart_194_raw"
NEW = (
    "date,serial_number,model,capacity_bytes,failure,smart_5_raw,smart_9_raw,smart_187_raw,smart_999_raw,smart_194_raw"
)
DAY1 = [  # plain CSV, old header
    OLD,
    "2021-01-01,A,M1,4000,0,100,0,1000,30",
    "2021-01-01,B,M1,4000,0,100,2,1100,31",  # vanishes after day 1 without failing
    "2021-01-01,C,M2,-1,0,100,,1200,29",  # smart_5 not reported; capacity -1 is informational
    "2021-01-01,D,M2,4000,1,100,7,900,40",  # fails on day 1
    "2021-01-01,E,M1,4000,0,100,0,800,28",  # misses day 2 (filled), back on day 3
    "2021-01-01,F,M1,4000,0",  # malformed: too few fields
    "",
    "2021-01-01,,M1,4000,0,100,0,1,30",  # missing serial number
    OLD,  # header repeated inside the file
]
DAY2 = [  # gzipped, new header
    NEW,
    "2021-01-02,A,M1,4000,0,0,1024,0,x,30",
    "2021-01-02,C,M2,4000,0,,1224,5,x,30",
    "2021-01-02,D,M2,4000,0,9,924,0,x,41",  # after its failure
    "2021-01-02,G,M3,4000,0,0,10,0,x,33",  # duplicate of the next line, which has the failure flag
    "2021-01-02,G,M3,4000,1,0,10,0,x,33",
    "2021/01/02,H,M3,4000,0,0,10,0,x,33",  # bad date
    "2021-01-02,H,M3,4000,2,0,10,0,x,33",  # bad failure flag
    "2021-01-02,H,M3,4000,0,1e,10,0,x,33",  # non-numeric
    "2021-01-02,H,M3,4000,0,-3,10,0,x,33",  # negative
]
DAY3 = [  # plain, new header, smart_5 empty in the whole file
    NEW,
    "2021-01-03,A,M1,4000,0,,1048,0,,31",
    "2021-01-03,C,M2,4000,0,,1248,6,,30",
    "2021-01-03,E,M1,4000,0,,848,1,,29",
]
NO_SERIAL = ["date,serial,failure", "2021-01-03,Z,0"]  # a file without serial_number: quarantined whole


def write_files(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "2021-01-01.csv").write_text("\n".join(DAY1) + "\n")
    with gzip.open(root / "2021-01-02.csv.gz", "wt") as f:
        f.write("\n".join(DAY2) + "\n")
    (root / "nested").mkdir()
    (root / "nested" / "2021-01-03.csv").write_text("\n".join(DAY3) + "\n")
    (root / "other.csv").write_text("\n".join(NO_SERIAL) + "\n")
    (root / "README.txt").write_text("not data")
    return root


def test_files_with_different_columns_are_read_by_their_own_header(spark, tmp_path):
    root = write_files(tmp_path / "raw")
    out = str(tmp_path / "ingest")
    counts = bb.ingest_backblaze(spark, str(root), out, CONFIG)

    assert counts["header_variants"] == 2  # of the files read
    assert counts["files"]["listed"] == 4 and counts["files"]["read"] == 3
    assert counts["files"]["quarantined"] == counts["files"]["quarantined_by_reason"]["schema_mismatch"] == 1
    assert counts["read"] == 8 + 9 + 3 == counts["clean"] + counts["quarantined"]
    assert {k: v for k, v in counts["quarantined_by_reason"].items() if v} == {
        "malformed_line": 2,
        "missing_field": 1,
        "bad_date": 1,
        "bad_failure": 1,
        "non_numeric": 1,
        "out_of_bounds": 1,
        "duplicate": 1,
        "after_failure": 1,
    }
    attributes = counts["attributes"]
    # Of the files read (other.csv is quarantined whole).
    assert attributes["smart_187_raw"]["files_absent"] == 1 and attributes["smart_187_raw"]["files_empty"] == 0
    assert attributes["smart_5_raw"]["files_absent"] == 0 and attributes["smart_5_raw"]["files_empty"] == 1  # day 3
    assert attributes["smart_5_normalized"]["files_absent"] == 2  # only day 1 has it
    assert counts["feature_plan"] == {
        "raw": [5, 9, 187, 194],
        "normalized": [5],
        "missing": [5, 187],
        "change": [5, 187],
    }
    assert counts["devices"] == 6 and counts["failed_devices"] == 2
    assert counts["disappeared_devices"] == 1  # B; D and G failed
    assert counts["filled_rows"] == 1 and counts["clean"] == 11

    failures = (tmp_path / "ingest" / "failures.csv").read_text().splitlines()
    assert failures == ["device_id,failure_time", "D,2021-01-02 00:00:00", "G,2021-01-03 00:00:00"]
    quarantine = spark.read.parquet(f"{out}/quarantine")
    dup = quarantine.where("reason = 'duplicate'").first()
    assert dup["serial_number"] == "G" and dup["failure"] == "0"  # the failure flag is the record kept
    assert quarantine.where("reason = 'malformed_line'").where(F.col("raw_line") == OLD).count() == 1

    clean = {(r["device_id"], r["timestamp"].day): r for r in spark.read.parquet(f"{out}/clean").collect()}
    a3 = clean[("A", 3)]
    assert a3["smart_5_raw"] is None and a3["smart_5"] == pytest.approx(math.log1p(0.0))  # carried forward
    assert a3["smart_9"] == pytest.approx(math.log1p(1048)) and a3["smart_194"] == pytest.approx(math.log1p(31))
    assert a3["smart_5_norm"] == 100.0 and a3["age_years"] == pytest.approx(1048 / (24 * 365.25))
    assert a3["capacity_log2_tb"] == pytest.approx(math.log2(4000 / 1e12)) and a3["family_seagate"] == 0.0
    a1 = clean[("A", 1)]
    assert a1["smart_187_raw"] is None and a1["smart_187"] == 0.0 and a1["smart_187_missing"] == 1.0  # absent column
    assert a3["smart_187_missing"] == 0.0 and a3["smart_5_missing"] == 0.0
    assert clean[("C", 3)]["smart_5"] == 0.0 and clean[("C", 3)]["smart_5_missing"] == 1.0  # never reported
    assert clean[("C", 1)]["capacity_bytes"] is None and clean[("C", 1)]["capacity_log2_tb"] == 0.0
    # Change features of the counters: C's smart_187 goes 5 -> 6 on day 3; A's stays 0.
    c2, c3 = clean[("C", 2)], clean[("C", 3)]
    assert c3["smart_187_growth"] == pytest.approx(math.log1p(6) - math.log1p(5)) and c2["smart_187_growth"] == 0.0
    assert c3["smart_187_max"] == pytest.approx(math.log1p(6)) and c3["smart_187_days_unchanged"] == 0.0
    assert c2["smart_187_days_unchanged"] == bb.DAYS_UNCHANGED_CAP == a3["smart_187_days_unchanged"]
    assert clean[("E", 2)]["filled"] and clean[("E", 2)]["smart_9_raw"] == 800.0 and not clean[("E", 3)]["filled"]
    assert clean[("E", 3)]["segment"] == 0
    assert clean[("G", 2)]["timestamp"] == datetime(2021, 1, 2)


def test_sql_windows_equal_the_generic_windows_and_vanished_drives_are_censored(spark):
    rows = []
    for device, days, _fail_day in (("a", range(1, 9), None), ("b", range(1, 6), None), ("c", range(1, 7), 6)):
        for d in days:
            rows.append((device, datetime(2021, 1, d), 0, float(d), float(10 * d + len(device))))
    readings = spark.createDataFrame(rows, "device_id string, timestamp timestamp, segment int, x double, y double")
    failures = spark.createDataFrame([("c", datetime(2021, 1, 7))], "device_id string, failure_time timestamp")
    kwargs = dict(
        features=["x", "y"],
        length=3,
        stride=1,
        horizon_days=2.0,
        interval_minutes=1440,
        observed_until=datetime(2021, 1, 8),
    )
    ours = bb.make_windows(readings, failures, **kwargs)
    theirs = generic_windows.make_windows(readings, failures, **kwargs)
    key = lambda r: (r["device_id"], r["window_end"])  # noqa: E731
    got = sorted((tuple(r) for r in ours.select("device_id", "window_end", "features", "label").collect()), key=str)
    expected = sorted(
        (tuple(r) for r in theirs.select("device_id", "window_end", "features", "label").collect()), key=str
    )
    assert got == expected
    labels = {key(r): r["label"] for r in ours.collect()}
    assert labels[("c", datetime(2021, 1, 4))] == 0 and labels[("c", datetime(2021, 1, 5))] == 1
    assert labels[("c", datetime(2021, 1, 6))] == 1
    # "b" vanished after day 5 without failing: the global rule keeps windows ending by day 6, censoring only up to day 3.
    assert {k[1].day for k in labels if k[0] == "b"} == {3, 4, 5}
    censored = bb.censor_disappeared(ours, readings, failures, horizon_days=2.0)
    assert sorted(r["window_end"].day for r in censored.where("device_id = 'b'").collect()) == [3]
    assert censored.where("device_id != 'b'").count() == ours.where("device_id != 'b'").count()


def test_pipeline_config_sets_daily_windows_from_the_backblaze_section():
    features = ["smart_5", "smart_9", "smart_187", "smart_194"]
    derived = bb.pipeline_config(defaults(PipelineConfig, backblaze=CONFIG), features)
    assert derived.ingest.interval_minutes == 1440 and derived.ingest.max_fill_gap_readings == 1
    assert derived.windows == defaults(
        WindowsConfig,
        length=5,
        stride=1,
        horizon_days=3.0,
        val_fraction=0.2,
        test_fraction=0.3,
        split_seed=13,
        negatives_per_positive=0.0,
        features=["smart_5", "smart_9", "smart_187", "smart_194", "observed"],  # padded short histories' mask
    )
    assert derived.train == CONFIG.train
    whole = dataclasses.replace(CONFIG, min_history_days=5)
    assert bb.pipeline_config(defaults(PipelineConfig, backblaze=whole), features).windows.features == features
    with pytest.raises(ValueError, match="min_history_days"):
        bb.check_config(dataclasses.replace(CONFIG, min_history_days=0))
    with pytest.raises(ValueError, match="'auto' or a list"):
        bb.check_config(defaults(BackblazeConfig, attributes="all"))
    with pytest.raises(ValueError, match="min_populated"):
        bb.check_config(defaults(BackblazeConfig, min_populated=1.5))


# The layouts of Backblaze's files over the years: 2013's 40 attributes; 2015 on, more attributes (helium level,
# load and head figures) in the same shape; 2023 on, the drive's location between `failure` and the attributes.
IDS_2013 = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 15, 183, 184, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196]
IDS_2013 += [197, 198, 199, 200, 201, 223, 225, 240, 241, 242, 250, 251, 252, 254, 255]
IDS_2015 = sorted(IDS_2013 + [22, 220, 222, 224, 226])
IDS_2023 = sorted(IDS_2015 + [16, 17, 18, 23, 24, 168, 170, 173, 174, 177, 179, 181, 182, 218, 231, 232, 233, 235])
KEYS = ["date", "serial_number", "model", "capacity_bytes", "failure"]
LOCATION = ["datacenter", "cluster_id", "vault_id", "pod_id", "pod_slot_num", "is_legacy_format"]
LAYOUTS = {
    "2013-04-10": KEYS + [f"smart_{i}_{kind}" for i in IDS_2013 for kind in ("normalized", "raw")],
    "2015-06-01": KEYS + [f"smart_{i}_{kind}" for i in IDS_2015 for kind in ("normalized", "raw")],
    "2024-01-01": KEYS + LOCATION + [f"smart_{i}_{kind}" for i in IDS_2023 for kind in ("normalized", "raw")],
}


MODELS = ["ST4000DM000", "HGST HMS5C4040ALE640", "WDC WD30EFRX-68EUZN0"]


def layout_line(header: list[str], values: dict[str, str]) -> str:
    """A data line of `header`: `values` by name, 100 in every normalised column, the rest empty."""
    return ",".join(values.get(c, "100" if c.endswith("_normalized") else "") for c in header)


def test_the_layouts_of_2013_2015_and_2023_are_read_by_column_name(spark, tmp_path):
    root = tmp_path / "layouts"
    root.mkdir()
    expected = {}
    for k, (day, header) in enumerate(LAYOUTS.items()):
        lines = [",".join(header)]
        for d in range(2):
            serial = f"S{k}{d}"
            values = {"smart_5_raw": str(k * 10 + d), "smart_9_raw": str(1000 * (k + 1) + d)}
            values |= {"smart_194_raw": str(30 + k), "smart_187_raw": str(d)}
            values |= {
                "date": day,
                "serial_number": serial,
                "model": MODELS[k],
                "capacity_bytes": "4000",
                "failure": "0",
            }
            values |= {"datacenter": "sac0", "cluster_id": "1", "vault_id": "1000", "pod_id": "3", "pod_slot_num": "7"}
            values |= {"is_legacy_format": "false"}
            lines.append(layout_line(header, values))
            expected[serial] = values
        text = "\n".join(lines) + "\n"
        if day.startswith("2015"):
            with gzip.open(root / f"{day}.csv.gz", "wt") as f:
                f.write(text)
        else:
            (root / f"{day}.csv").write_text(text)
    counts = bb.ingest_backblaze(spark, str(root), str(tmp_path / "ingest"), CONFIG)
    assert counts["files"]["listed"] == counts["files"]["read"] == 3 and counts["header_variants"] == 3
    assert counts["read"] == 6 == counts["clean"] and counts["quarantined"] == 0
    clean = {r["device_id"]: r for r in spark.read.parquet(str(tmp_path / "ingest" / "clean")).collect()}
    assert set(clean) == set(expected)
    for serial, values in expected.items():
        row = clean[serial]
        assert row["model"] == values["model"] and row["timestamp"].strftime("%Y-%m-%d") == values["date"]
        for a in CONFIG.attributes:
            assert row[f"smart_{a}_raw"] == float(values[f"smart_{a}_raw"]), (serial, a)
        family = {"ST": "seagate", "HG": "hgst", "WD": "wdc"}[values["model"][:2]]
        assert [name for name in bb.FAMILIES if row[f"family_{name}"] == 1.0] == [family]
    # Found per file: every attribute a header has is read; the populated ones become features, those only some
    # files have are marked missing elsewhere.
    auto = bb.ingest_backblaze(spark, str(root), str(tmp_path / "auto"), dataclasses.replace(CONFIG, attributes="auto"))
    plan = auto["feature_plan"]
    assert plan["raw"] == [5, 9, 187, 194] and plan["normalized"] == IDS_2023
    assert plan["missing"] == sorted(set(IDS_2023) - set(IDS_2013))  # normalised columns of the later layouts
    assert auto["attributes"]["smart_231_normalized"] == {"files_absent": 2, "files_empty": 0, "reported": 0.3333}
    assert auto["attributes"]["smart_1_raw"]["reported"] == 0.0 and "smart_1" not in auto["features"]
    rows = spark.read.parquet(str(tmp_path / "auto" / "clean")).collect()
    assert {r["device_id"]: r["smart_231_missing"] for r in rows} == {s: float(s[1] != "2") for s in expected}


def test_short_histories_are_left_padded_and_masked_alike_in_training_and_in_fleet_scoring(spark):
    from pipelines.evaluation.scoring import latest_windows
    from pipelines.telemetry.schema import MASK_FEATURE

    rows = [("new", datetime(2021, 1, d), 0, float(d)) for d in (1, 2)]  # two days old when it fails on day 3
    rows += [("old", datetime(2021, 1, d), 0, 10.0 + d) for d in range(1, 6)]
    readings = spark.createDataFrame(rows, "device_id string, timestamp timestamp, segment int, x double")
    readings = readings.withColumn(MASK_FEATURE, F.lit(1.0))
    failures = spark.createDataFrame([("new", datetime(2021, 1, 3))], "device_id string, failure_time timestamp")
    features = ["x", MASK_FEATURE]
    kwargs = dict(features=features, length=3, stride=1, horizon_days=2.0, interval_minutes=1440, observed_until=None)
    padded = {
        (r["device_id"], r["window_end"].day): r
        for r in bb.make_windows(readings, failures, min_history=1, **kwargs).collect()
    }
    whole = {(r["device_id"], r["window_end"].day) for r in bb.make_windows(readings, failures, **kwargs).collect()}
    assert whole == {("old", 3), ("old", 4), ("old", 5)}  # without padding the failing drive has no window
    assert set(padded) == whole | {("new", 1), ("new", 2), ("old", 1), ("old", 2)}
    assert padded[("new", 1)]["features"] == [0, 0, 0, 0, 1, 1] and padded[("new", 1)]["label"] == 1
    assert padded[("new", 2)]["features"] == [0, 0, 1, 1, 2, 1] and padded[("new", 2)]["label"] == 1
    assert padded[("old", 4)]["features"] == [12, 1, 13, 1, 14, 1] and padded[("old", 4)]["label"] == 0
    # The fleet is scored on the same windows: the new drive padded, as in training; `min_history` 3: not scored.
    identity = {"features": features, "mean": [0.0, 0.0], "std": [1.0, 1.0]}
    scoring = readings.drop(MASK_FEATURE).withColumn("model", F.lit("M"))
    latest = {
        r["device_id"]: r
        for r in latest_windows(scoring, features=features, length=3, normalization=identity, min_history=1).collect()
    }
    assert latest["new"]["features"] == padded[("new", 2)]["features"] and latest["new"]["history_readings"] == 2
    assert latest["old"]["features"] == padded[("old", 5)]["features"] and latest["old"]["top_feature"] == "x"
    strict = latest_windows(scoring, features=features, length=3, normalization=identity, min_history=3)
    assert strict.where("device_id = 'new'").first()["features"] is None
