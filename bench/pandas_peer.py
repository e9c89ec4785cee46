"""The telemetry chain (CSV -> validation with quarantine -> resampling -> windows -> Parquet) in one process with
pandas, NumPy and pyarrow: the peer of `bench.ingest_vs_pandas`.

The same rules as `pipelines.telemetry.ingest`, `resample` and `windows`, vectorised. Differences that do not
change any count: duplicates with the very same timestamp are told apart by file and line (Spark: file and
raw text); devices are split by a CRC32 of (seed, device) instead of Spark's xxhash64 (same split sizes, other
devices); windows are written per split in chunks, so memory holds the readings but never all windows.
"""

from __future__ import annotations

import csv
import glob
import os
import zlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import IngestConfig, WindowsConfig
from pipelines.telemetry.ingest import _NUMERIC_RE, _TIMESTAMP_RE, REASONS, sensor_bounds
from pipelines.telemetry.schema import RAW_COLUMNS, SENSORS

_MAX_FIELDS = 24  # more fields than that on one line is not expected in the benchmark's input
_CHUNK = 20_000  # windows built and written at a time


def read_files(readings: str) -> list[str]:
    """CSV files under `readings` (at any depth), as Spark lists them: *.csv*, no hidden files, sorted."""
    found = glob.glob(os.path.join(readings, "**", "*.csv*"), recursive=True)
    return sorted(f for f in found if not any(p.startswith((".", "_")) for p in f[len(readings) :].split(os.sep)))


def classify_file(path: str, config: IngestConfig, known: set[str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid readings with parsed values, quarantined rows with their reason) of one CSV file."""
    df = pd.read_csv(
        path,
        header=None,
        skiprows=1,
        names=list(range(_MAX_FIELDS)),
        dtype="string[pyarrow]",
        keep_default_na=False,
        na_values=[],
        skip_blank_lines=True,
        compression="infer",
    )
    lines = pd.read_csv(
        path,
        sep="\x1f",
        header=None,
        skiprows=1,
        names=["line"],
        dtype="string[pyarrow]",
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        na_values=[],
        skip_blank_lines=True,
        compression="infer",
    )["line"]
    n_fields = lines.str.count(",").to_numpy() + 1  # the generator never quotes fields
    df = df.iloc[:, : len(RAW_COLUMNS)]
    df.columns = RAW_COLUMNS
    text = {c: df[c].str.strip(" ") for c in RAW_COLUMNS}
    is_header = np.logical_and.reduce([(text[c] == c).fillna(False).to_numpy(bool) for c in RAW_COLUMNS])
    malformed = (n_fields != len(RAW_COLUMNS)) | is_header

    def empty(c: str) -> np.ndarray:
        return (text[c].isna() | (text[c] == "")).fillna(True).to_numpy(bool)

    ts_text = text["timestamp"].where(text["timestamp"].str.fullmatch(_TIMESTAMP_RE).fillna(False))
    ts = pd.to_datetime(ts_text.astype(object), format="%Y-%m-%d %H:%M:%S", errors="coerce")
    status = np.full(len(df), 9, dtype=np.int8)
    values = {}
    for c in SENSORS:
        v = pd.to_numeric(text[c].astype(object), errors="coerce").to_numpy(np.float64)
        values[c] = v
        low, high = sensor_bounds(c, config)
        oob = (v < low) | (v > high)
        numeric = text[c].str.fullmatch(_NUMERIC_RE).fillna(False).to_numpy(bool)
        check = np.select([empty(c), ~numeric, ~np.isfinite(v), oob], [1, 2, 3, 4], 9)
        status = np.minimum(status, check)
    device = text["device_id"].fillna("").to_numpy(object)
    # A hash lookup: np.isin on object arrays compares every pair (9 s for 191k rows and 3,580 devices).
    unknown = ~pd.Series(device).isin(known).to_numpy() if known is not None else np.zeros(len(df), bool)
    reason = np.select(
        [
            malformed,
            empty("device_id") | empty("timestamp"),
            ts.isna().to_numpy(),
            status == 1,
            status == 2,
            status == 3,
            status == 4,
            unknown,
        ],
        [
            "malformed_line",
            "missing_field",
            "bad_timestamp",
            "missing_value",
            "non_numeric",
            "not_finite",
            "out_of_bounds",
            "unknown_device",
        ],
        "",
    )
    ok = reason == ""
    model = text["model"].fillna("").to_numpy(object)
    valid = pd.DataFrame(
        {
            "device_id": device[ok],
            "model": np.where(model[ok] == "", None, model[ok]),
            "timestamp": ts[ok].to_numpy(),
            **{c: values[c][ok] for c in SENSORS},
        }
    )
    valid["_line"] = np.flatnonzero(ok)
    bad = df[~ok].astype(object).assign(reason=reason[~ok], source_file=path)
    return valid, bad


def ingest(readings: str, devices_csv: str, out: str, config: IngestConfig) -> dict[str, Any]:
    """Read, validate, quarantine, resample and write like `pipelines.telemetry.ingest.ingest`; the counts."""
    known = set(pd.read_csv(devices_csv, dtype=str)["device_id"].str.strip(" ").dropna()) - {""}
    valid_parts, bad_parts = [], []
    for i, path in enumerate(read_files(readings)):
        valid, bad = classify_file(path, config, known)
        valid_parts.append(valid.assign(_file=i))
        bad_parts.append(bad)
    valid = pd.concat(valid_parts, ignore_index=True)
    n_read = len(valid) + sum(len(b) for b in bad_parts)

    step = config.interval_minutes * 60
    sec = valid["timestamp"].to_numpy("datetime64[s]").astype(np.int64)
    valid["_slot"] = np.floor((sec + step // 2) / step).astype(np.int64) * step
    valid["_off"] = np.abs(sec - valid["_slot"].to_numpy())
    valid = valid.sort_values(["device_id", "_slot", "_off", "timestamp", "_file", "_line"], kind="stable")
    dup = valid.duplicated(["device_id", "_slot"]).to_numpy()
    duplicates = valid[dup]
    clean = valid[~dup]
    bad_parts.append(pd.DataFrame({"reason": ["duplicate"] * len(duplicates)}))
    quarantine = pd.concat(bad_parts, ignore_index=True)
    os.makedirs(out, exist_ok=True)
    quarantine.astype({"reason": str}).to_parquet(os.path.join(out, "quarantine.parquet"), index=False)

    resampled = fill_gaps(clean, step=step, max_fill=config.max_fill_gap_readings)
    resampled.to_parquet(os.path.join(out, "clean.parquet"), index=False)
    by_reason = {r: 0 for r in REASONS} | quarantine["reason"].value_counts().to_dict()
    filled = int(resampled["filled"].sum())
    return {
        "read": n_read,
        "clean": len(resampled) - filled,
        "quarantined": int(sum(by_reason.values())),
        "quarantined_by_reason": {k: int(v) for k, v in by_reason.items()},
        "resampled_rows": len(resampled),
        "filled_rows": filled,
        "segments": int(resampled[["device_id", "segment"]].drop_duplicates().shape[0]),
        "devices": int(resampled["device_id"].nunique()),
    }


def fill_gaps(clean: pd.DataFrame, *, step: int, max_fill: int) -> pd.DataFrame:
    """One row per device and grid point of each segment (`resample.fill_gaps`), from readings sorted by
    device and slot with one reading per slot."""
    device = clean["device_id"].to_numpy(object)
    slot = clean["_slot"].to_numpy(np.int64)
    first = np.r_[True, device[1:] != device[:-1]]
    last = np.r_[device[1:] != device[:-1], True]
    missing_before = np.where(first, 0, np.diff(slot, prepend=slot[0]) // step - 1)
    missing_after = np.where(last, 0, np.diff(slot, append=slot[-1]) // step - 1)
    new_segment = (missing_before > max_fill).astype(np.int64)
    starts = np.flatnonzero(first)
    cum = np.cumsum(new_segment)
    segment = cum - np.repeat(cum[starts] - new_segment[starts], np.diff(np.r_[starts, len(device)]))
    fill = np.where((missing_after >= 1) & (missing_after <= max_fill), missing_after, 0)
    repeat = fill + 1
    index = np.repeat(np.arange(len(clean)), repeat)
    k = np.arange(len(index)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    out = clean.iloc[index][["device_id", "model", *SENSORS]].reset_index(drop=True)
    out.insert(2, "timestamp", pd.to_datetime(slot[index] + k * step, unit="s"))
    out["filled"] = k > 0
    out["segment"] = segment[index].astype(np.int32)
    return out


def assign_splits(devices: np.ndarray, failing: set[str], config: WindowsConfig) -> dict[str, str]:
    """Stratified device split like `windows.assign_splits`, ordered by a CRC32 of (seed, device)."""
    splits = {}
    for stratum in (True, False):
        members = sorted(
            (zlib.crc32(f"{config.split_seed}:{d}".encode()), d) for d in devices if (d in failing) == stratum
        )
        n = len(members)
        for i, (_, d) in enumerate(members):
            u = (i + 0.5) / n
            splits[d] = (
                "test"
                if u < config.test_fraction
                else "val"
                if u < config.test_fraction + config.val_fraction
                else "train"
            )
    return splits


def build_windows(
    clean_parquet: str, failures_csv: str, out: str, config: WindowsConfig, interval_minutes: int
) -> dict:
    """Split, normalise on the training split, window, label and write like `windows.build_window_dataset`
    and `sources.write_windows`; {split: {windows, positives, devices}}."""
    readings = pd.read_parquet(clean_parquet, columns=["device_id", "timestamp", "segment", *config.features])
    failures = pd.read_csv(failures_csv, dtype=str)
    failures["failure_time"] = pd.to_datetime(failures["failure_time"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    first_failure = failures.dropna().groupby("device_id")["failure_time"].min()
    devices = readings["device_id"].unique()
    split_of = assign_splits(devices, set(first_failure.index), config)
    split = readings["device_id"].map(split_of).to_numpy(object)
    x = readings[config.features].to_numpy(np.float64)
    train = x[split == "train"]
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    x = ((x - mean) / std).astype(np.float32)

    readings = readings.reset_index(drop=True)
    order = np.lexsort(
        (readings["timestamp"].to_numpy(), readings["segment"].to_numpy(), readings["device_id"].to_numpy())
    )
    device = readings["device_id"].to_numpy(object)[order]
    segment = readings["segment"].to_numpy()[order]
    times = readings["timestamp"].to_numpy("datetime64[ns]")[order]
    x, split = x[order], split[order]
    group_start = np.r_[True, (device[1:] != device[:-1]) | (segment[1:] != segment[:-1])]
    position = np.arange(len(device)) - np.maximum.accumulate(np.where(group_start, np.arange(len(device)), 0))
    step_ns = interval_minutes * config.stride * 60 * 10**9
    ends = np.flatnonzero((position >= config.length - 1) & (times.astype(np.int64) % step_ns == 0))
    bad_rows = np.cumsum(~np.isfinite(x).all(axis=1))
    bad_in_window = bad_rows[ends] - np.where(
        ends - config.length >= 0, bad_rows[np.maximum(ends - config.length, 0)], 0
    )
    ends = ends[bad_in_window == 0]

    horizon = np.timedelta64(pd.Timedelta(days=config.horizon_days).value, "ns")
    until = times.max()
    failure = pd.Series(device[ends]).map(first_failure).to_numpy("datetime64[ns]")
    end_time = times[ends]
    known = ~np.isnat(failure)
    keep = known | (end_time + horizon <= until)
    ends, failure, end_time, known = ends[keep], failure[keep], end_time[keep], known[keep]
    label = (known & (end_time < failure) & (failure <= end_time + horizon)).astype(np.int32)

    counts: dict[str, dict[str, int]] = {}
    offsets = np.arange(-config.length + 1, 1)
    width = config.length * len(config.features)
    for name in ("train", "val", "test"):
        mine = split[ends] == name
        folder = os.path.join(out, "windows", f"split={name}")
        os.makedirs(folder, exist_ok=True)
        with pq.ParquetWriter(os.path.join(folder, "part-0.parquet"), _WINDOW_SCHEMA) as writer:
            chosen = np.flatnonzero(mine)
            for start in range(0, len(chosen), _CHUNK):
                pick = chosen[start : start + _CHUNK]
                block = x[ends[pick][:, None] + offsets].reshape(len(pick), width)
                features = pa.ListArray.from_arrays(
                    np.arange(0, len(pick) * width + 1, width, dtype=np.int32), block.reshape(-1)
                )
                writer.write_table(
                    pa.table(
                        {
                            "device_id": device[ends[pick]].astype(str),
                            "window_end": end_time[pick].astype("datetime64[us]"),
                            "features": features,
                            "label": label[pick],
                        },
                        schema=_WINDOW_SCHEMA,
                    )
                )
        counts[name] = {
            "windows": int(mine.sum()),
            "positives": int(label[mine].sum()),
            "devices": int(len(set(device[ends[mine]]))),
        }
    return counts


_WINDOW_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("window_end", pa.timestamp("us")),
        ("features", pa.list_(pa.float32())),
        ("label", pa.int32()),
    ]
)
