"""Pairing reports with their EDF recordings: blocking, agreement features, classifiers, assignment.

1. Facts: what each report states (record number, name, birth date, sex, age, study dates, tokens of its file
   name) and what each header holds (patient code, name, sex, birth date or age, start, admin code, file name).
2. Blocking: a pair is a candidate when it shares a key: the record number, a code token (subject code,
   accession number), a day within the report's dates +- `date_window_days`, or (for a report without
   dates) the birth year and sex.
3. Features: agreement of the two sides, each in [-1, 1] (see `FEATURES`).
4. Classifiers: a BigDL multilayer perceptron trained with the project's `BarrierOptimizer` on `Sample`s built on
   the executors, and a Spark ML logistic regression on the same features for comparison.
5. Assignment: each file goes to its most probable report when that is above the threshold and clearly ahead
   of the runner-up; a report keeps the files of one session (files chained within `max_session_gap_hours`).
   Everything left over is unpaired with a reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta

import numpy as np
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.config import EegPairingConfig
from pipelines.eeg.dates import one_edit
from pipelines.eeg.deid import normalize_name
from pipelines.eeg.extract import extract_findings, extract_identifiers
from pipelines.eeg.schema import FEATURE_ROWS, FILE_FACTS, REPORT_FACTS

log = logging.getLogger(__name__)

FEATURES = (
    "mrn_equal",  # record numbers equal
    "mrn_near",  # one edit apart (a typo)
    "mrn_conflict",  # both known and different
    "token_shared",  # a code token (subject code, accession number) in both file names / headers
    "session_match",  # the same subject_session token (TUH naming)
    "session_conflict",  # the same subject, another session
    "name_similarity",  # Jaccard of the name tokens (0 when unknown)
    "name_known",
    "sex_agreement",  # +1 agree, -1 disagree, 0 unknown
    "birth_agreement",  # +1 / -1 / 0 (the year only when the header hides the day, as TUH does)
    "age_difference",  # |age in report - age in header| / 10, capped at 1
    "age_known",
    "date_in_range",  # the file starts within the report's study dates
    "date_gap",  # days outside that range / 10, capped at 1
    "date_known",
)

_CODE_PART = re.compile(r"^[A-Za-z]{0,4}(\d{4,})$")
_SESSION = re.compile(r"(\d{4,})_s(\d{1,4})(?!\d)")


def name_tokens(file_name: str) -> tuple[list[str], list[str]]:
    """(code tokens, subject_session tokens) of a file name: `00314187_s001_t000.edf` -> (["314187"], ["314187_s1"])."""
    stem = file_name.rsplit(".", 1)[0]
    codes = []
    for part in re.split(r"[_\-. ]+", stem):
        match = _CODE_PART.match(part)
        if match:
            codes.append(match.group(1).lstrip("0") or "0")
    sessions = [f"{m.group(1).lstrip('0')}_s{int(m.group(2))}" for m in _SESSION.finditer(stem)]
    return sorted(set(codes)), sorted(set(sessions))


def _digits(code: str | None) -> str | None:
    if not code:
        return None
    digits = re.sub(r"\D", "", code).lstrip("0")
    return digits if len(digits) >= 5 else None


def report_fact(report_id: str, text: str, window_days: int, wide: bool = False) -> tuple:
    """One `REPORT_FACTS` row. `wide` adds the birth-year-and-sex key to every report (training: more hard negatives)."""
    ids = extract_identifiers(text)
    found = extract_findings(text)
    tokens, sessions = name_tokens(report_id)
    dates = sorted(date.fromisoformat(d) for d in found.study_dates)
    first, last = (dates[0], dates[-1]) if dates else (None, None)
    if first and last and (last - first).days > 14:  # not one study: keep the first date only
        last = first
    keys = [f"tok:{t}" for t in tokens]
    if ids.mrn:
        keys.append(f"mrn:{ids.mrn}")
    if first and last:
        day = first - timedelta(days=window_days)
        while day <= last + timedelta(days=window_days):
            keys.append(f"day:{day.isoformat()}")
            day += timedelta(days=1)
    if ids.birthdate and found.sex and (wide or not first):
        keys.append(f"born:{ids.birthdate.year}:{found.sex}")  # no date to block on: birth year and sex
    name = normalize_name(" ".join(ids.names)) or None
    return (
        report_id,
        ids.mrn,
        name,
        ids.birthdate,
        found.sex,
        found.age,
        first,
        last,
        tokens,
        sessions,
        sorted(set(keys)),
    )


def report_facts(reports: DataFrame, *, window_days: int, wide: bool = False) -> DataFrame:
    def run(rows: Iterable) -> Iterator[tuple]:
        for row in rows:
            yield report_fact(row["report_id"], row["text"], window_days, wide)

    return reports.sparkSession.createDataFrame(
        reports.select("report_id", "text").rdd.mapPartitions(run), REPORT_FACTS
    )


def file_fact(row) -> tuple:
    """One `FILE_FACTS` row from a `HEADER_SCHEMA` row."""
    tokens, sessions = name_tokens(row["file_name"])
    code = _digits(row["patient_code"])
    admin = _digits(row["admin_code"])
    # A code that is also in the file name is the archive's subject code (TUH), not a record number.
    f_mrn = code if code and code not in tokens else None
    all_tokens = sorted({*tokens, *(t for t in (code, admin) if t)})
    start: datetime = row["start"]
    birth = row["patient_birthdate"]
    year_only = int(bool(birth) and birth.month == 1 and birth.day == 1 and row["patient_age"] is not None)
    age = row["patient_age"]
    if age is None and birth and not year_only:
        age = float(start.year - birth.year - ((start.month, start.day) < (birth.month, birth.day)))
    keys = [f"tok:{t}" for t in all_tokens] + [f"day:{start.date().isoformat()}"]
    if birth and row["patient_sex"]:
        keys.append(f"born:{birth.year}:{row['patient_sex']}")
    if f_mrn:
        keys.append(f"mrn:{f_mrn}")
    name = normalize_name(row["patient_name"]) if row["patient_name"] else None
    return (
        row["file_name"],
        start,
        f_mrn,
        name or None,
        birth,
        year_only,
        row["patient_sex"],
        age,
        all_tokens,
        sessions,
        sorted(set(keys)),
    )


def file_facts(headers: DataFrame) -> DataFrame:
    return headers.sparkSession.createDataFrame(headers.rdd.map(file_fact), FILE_FACTS)


def candidates(reports: DataFrame, files: DataFrame) -> DataFrame:
    """Distinct (report, file) pairs sharing a blocking key, with both sides' facts."""
    r_keys = reports.select("report_id", F.explode("r_keys").alias("key"))
    f_keys = files.select("edf_file", F.explode("f_keys").alias("key"))
    pairs = r_keys.join(f_keys, "key").select("report_id", "edf_file").distinct()
    return pairs.join(reports.drop("r_keys"), "report_id").join(files.drop("f_keys"), "edf_file")


def _agreement(a, b) -> float:
    if a is None or b is None:
        return 0.0
    return 1.0 if a == b else -1.0


def pair_features(row) -> list[float]:
    """The `FEATURES` vector of one candidate row (report facts + file facts)."""
    r_mrn, f_mrn = row["r_mrn"], row["f_mrn"]
    both = bool(r_mrn and f_mrn)
    equal = both and r_mrn == f_mrn
    near = both and not equal and one_edit(r_mrn, f_mrn)
    r_tokens, f_tokens = set(row["r_tokens"]), set(row["f_tokens"])
    r_sessions, f_sessions = set(row["r_sessions"]), set(row["f_sessions"])
    session_match = bool(r_sessions & f_sessions)
    subjects = {s.split("_s")[0] for s in r_sessions} & {s.split("_s")[0] for s in f_sessions}
    session_conflict = bool(subjects) and not session_match
    r_name, f_name = row["r_name"], row["f_name"]
    name_known = bool(r_name and f_name)
    similarity = 0.0
    if name_known:
        a, b = set(r_name.split()), set(f_name.split())
        similarity = len(a & b) / len(a | b)
    r_birth, f_birth = row["r_birthdate"], row["f_birthdate"]
    if r_birth is None or f_birth is None:
        birth = 0.0
    elif row["f_birth_year_only"]:
        birth = 1.0 if r_birth.year == f_birth.year else -1.0
    else:
        birth = 1.0 if r_birth == f_birth else -1.0
    r_age, f_age = row["r_age"], row["f_age"]
    age_known = r_age is not None and f_age is not None
    age_difference = min(abs(r_age - f_age), 10.0) / 10.0 if age_known else 0.0
    first, last = row["r_first"], row["r_last"]
    day = row["start"].date()
    date_known = first is not None
    in_range = date_known and first <= day <= last
    gap = 0.0
    if date_known and not in_range:
        gap = min(min(abs((day - first).days), abs((day - last).days)), 10) / 10.0
    return [
        float(equal),
        float(near),
        float(both and not equal and not near),
        float(bool(r_tokens & f_tokens)),
        float(session_match),
        float(session_conflict),
        similarity,
        float(name_known),
        _agreement(row["r_sex"], row["f_sex"]),
        birth,
        age_difference,
        float(age_known),
        float(in_range),
        gap,
        float(date_known),
    ]


def featurize(cands: DataFrame) -> DataFrame:
    """`report_id, edf_file, start, features` for every candidate pair (computed on the executors)."""

    def run(rows: Iterable) -> Iterator[tuple]:
        for row in rows:
            yield (row["report_id"], row["edf_file"], row["start"], pair_features(row))

    return cands.sparkSession.createDataFrame(cands.rdd.mapPartitions(run), FEATURE_ROWS)


def label(features: DataFrame, links: DataFrame) -> DataFrame:
    """Adds `label` (1 for a true link) from `links` (`report_id, edf_file`)."""
    truth = links.select("report_id", "edf_file").distinct().withColumn("label", F.lit(1))
    return features.join(truth, ["report_id", "edf_file"], "left").fillna({"label": 0})


# Feature positions of each piece of evidence; zeros mean "unknown" for every one of them.
EVIDENCE_GROUPS = {
    "mrn": (0, 1, 2),
    "tokens": (3, 4, 5),
    "name": (6, 7),
    "sex": (8,),
    "birth": (9,),
    "age": (10, 11),
    "date": (12, 13, 14),
}


def augment(labelled: DataFrame, *, copies: int, mask_probability: float = 0.35, seed: int = 0) -> DataFrame:
    """Each labelled pair plus `copies` variants with whole pieces of evidence made unknown.

    Reports and headers leave out fields at random; the variants teach the classifier what the remaining
    evidence is worth when a field is missing (a rare case in any one archive). Deterministic per partition.
    """
    schema = labelled.select("report_id", "edf_file", "features", "label").schema

    def run(index: int, rows: Iterable) -> Iterator[tuple]:
        rng = np.random.default_rng([seed, index])
        for row in rows:
            yield (row["report_id"], row["edf_file"], list(row["features"]), row["label"])
            for _ in range(copies):
                features = list(row["features"])
                for positions in EVIDENCE_GROUPS.values():
                    if rng.random() < mask_probability:
                        for i in positions:
                            features[i] = 0.0
                yield (row["report_id"], row["edf_file"], features, row["label"])

    rows = labelled.select("report_id", "edf_file", "features", "label").rdd.mapPartitionsWithIndex(run)
    return labelled.sparkSession.createDataFrame(rows, schema)


def read_links(spark: SparkSession, uri: str) -> DataFrame:
    return spark.read.csv(uri, header=True, schema="report_id string, edf_file string")


# ---------------------------------------------------------------------------------------------------------------
# Classifiers


def build_mlp(n_features: int, hidden: int):
    """Linear -> ReLU -> Linear -> LogSoftMax: log-probabilities of (not a link, link)."""
    from bigdl.dllib.nn.layer import Linear, LogSoftMax, ReLU, Sequential

    model = Sequential()
    model.add(Linear(n_features, hidden).set_name("pair_hidden"))
    model.add(ReLU())
    model.add(Linear(hidden, 2).set_name("pair_out"))
    model.add(LogSoftMax())
    return model


def train_bigdl(spark: SparkSession, labelled: DataFrame, config: EegPairingConfig):
    """The MLP trained as a `BigDLClassifier` (the project's training loop) on the pairs; returns the trained module.
    The data order follows BigDL's seeded generator, so that a run repeats itself."""
    from pipelines.models.stages import BigDLClassifier

    rows = labelled.select("features", "label")
    positives, total = rows.agg(F.sum("label"), F.count(F.lit(1))).collect()[0]
    # Weight the classes so that links and non-links count alike in the loss.
    weights = [total / max(2 * (total - positives), 1), total / max(2 * positives, 1)]
    log.info("training the pairing MLP on %d pairs (%d links), %d epochs", total, positives, config.epochs)
    classifier = BigDLClassifier(
        build_mlp(len(FEATURES), config.hidden_size),
        featureShape=[len(FEATURES)],
        classWeights=weights,
        learningRate=config.learning_rate,
        epochs=config.epochs,
        batchSize=config.batch_size,
    )
    return classifier.fit(rows).module


def predict_bigdl(model, features: DataFrame, *, batch_size: int = 256) -> DataFrame:
    """`report_id, edf_file, start, probability` from the MLP."""
    from pipelines.models.stages import BigDLModel

    stage = BigDLModel(model, featureShape=[len(FEATURES)], batchSize=batch_size, scoreCol="probability")
    return _scored(stage.transform(features.select("report_id", "edf_file", "start", "features")))


def _scored(frame: DataFrame) -> DataFrame:
    """`report_id, edf_file, start, probability, specificity`: specificity counts the evidence that ties a
    report to this very recording rather than to the patient (the file's date within the report's dates, the
    same subject_session token); it settles near-ties in `assign`."""
    specificity = (
        F.col("features")[FEATURES.index("date_in_range")] + F.col("features")[FEATURES.index("session_match")]
    )
    return frame.select("report_id", "edf_file", "start", "probability", specificity.cast("int").alias("specificity"))


def train_logreg(labelled: DataFrame):
    """Spark ML logistic regression on the same features (class-weighted like the MLP)."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import array_to_vector

    data = labelled.select(
        array_to_vector(F.col("features")).alias("vector"), F.col("label").cast("double").alias("label")
    )
    positives, total = data.agg(F.sum("label"), F.count(F.lit(1))).collect()[0]
    data = data.withColumn(
        "weight",
        F.when(F.col("label") == 1, total / max(2 * positives, 1)).otherwise(total / max(2 * (total - positives), 1)),
    )
    return LogisticRegression(
        featuresCol="vector", labelCol="label", weightCol="weight", maxIter=50, regParam=1e-4
    ).fit(data.cache())


def predict_logreg(model, features: DataFrame) -> DataFrame:
    from pyspark.ml.functions import array_to_vector, vector_to_array

    data = features.select(
        "report_id", "edf_file", "start", "features", array_to_vector(F.col("features")).alias("vector")
    )
    return _scored(
        model.setFeaturesCol("vector")
        .transform(data)
        .select(
            "report_id", "edf_file", "start", "features", vector_to_array(F.col("probability"))[1].alias("probability")
        )
    )


# ---------------------------------------------------------------------------------------------------------------
# Assignment


def session_cluster(files: Sequence[tuple[str, datetime, float]], max_gap_hours: float) -> tuple[list[str], list[str]]:
    """(kept, dropped) file names: the chain of files (consecutive starts within `max_gap_hours`) with the
    highest total probability; ties go to the earliest chain."""
    ordered = sorted(files, key=lambda f: (f[1], f[0]))
    chains: list[list[tuple[str, datetime, float]]] = []
    for f in ordered:
        if chains and (f[1] - chains[-1][-1][1]).total_seconds() <= max_gap_hours * 3600:
            chains[-1].append(f)
        else:
            chains.append([f])
    best = max(range(len(chains)), key=lambda i: (sum(f[2] for f in chains[i]), -i))
    kept = [f[0] for f in chains[best]]
    dropped = [f[0] for i, chain in enumerate(chains) if i != best for f in chain]
    return kept, dropped


def assign(
    scored: DataFrame, reports: DataFrame, files: DataFrame, config: EegPairingConfig
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(pairs, unpaired_reports, unpaired_files) from scored candidates.

    `reports` has `report_id`, `files` has `edf_file` (all parsed ones, candidates or not). Reasons: `no_candidate`,
    `below_threshold`, `ambiguous` (two equally specific reports score within `ambiguity_margin` for a file), `other_session`
    (a file of its report's other session), `files_taken` (a report whose candidate files went to other reports).
    """
    spark = scored.sparkSession
    threshold, margin = config.threshold, config.ambiguity_margin
    # Per file: the contenders are the reports within `margin` of the best probability (if that clears the
    # threshold). The most specific contender wins; two equally specific contenders make the file ambiguous.
    per_file = Window.partitionBy("edf_file")
    ranked = scored.withColumn("top", F.max("probability").over(per_file))
    contenders = ranked.where((F.col("top") >= threshold) & (F.col("probability") >= F.col("top") - margin))
    order = Window.partitionBy("edf_file").orderBy(
        F.col("specificity").desc(), F.col("probability").desc(), "report_id"
    )
    contenders = contenders.withColumn("rank", F.row_number().over(order)).withColumn(
        "next_specificity", F.lead("specificity").over(order)
    )
    winners = contenders.where("rank = 1").withColumn(
        "decision",
        F.when(
            F.col("next_specificity").isNotNull() & (F.col("next_specificity") >= F.col("specificity")), "ambiguous"
        ).otherwise("accepted"),
    )
    losers = (
        ranked.where(F.col("top") < threshold)
        .withColumn(
            "rank",
            F.row_number().over(Window.partitionBy("edf_file").orderBy(F.col("probability").desc(), "report_id")),
        )
        .where("rank = 1")
        .withColumn("decision", F.lit("below_threshold"))
    )
    columns = ["report_id", "edf_file", "start", "probability", "decision"]
    best = winners.select(*columns).unionByName(losers.select(*columns)).cache()
    accepted = best.where("decision = 'accepted'").select("report_id", "edf_file", "start", "probability")
    max_gap = config.max_session_gap_hours

    def choose(item):
        report_id, group = item
        kept, dropped = session_cluster([(f, s, p) for f, s, p in group], max_gap)
        probs = {f: p for f, _, p in group}
        for f in kept:
            yield (report_id, f, probs[f], "paired")
        for f in dropped:
            yield (report_id, f, probs[f], "other_session")

    chosen = spark.createDataFrame(
        accepted.rdd.map(lambda r: (r["report_id"], (r["edf_file"], r["start"], r["probability"])))
        .groupByKey()
        .flatMap(choose),
        "report_id string, edf_file string, probability double, outcome string",
    ).cache()
    pairs = chosen.where("outcome = 'paired'").select("report_id", "edf_file", "probability")

    file_best = best.select("edf_file", F.col("probability").alias("best_probability"), "decision")
    unpaired_files = (
        files.select("edf_file")
        .join(pairs.select("edf_file"), "edf_file", "left_anti")
        .join(file_best, "edf_file", "left")
        .join(
            chosen.where("outcome = 'other_session'").select("edf_file", F.lit(1).alias("dropped")), "edf_file", "left"
        )
        .select(
            "edf_file",
            F.when(F.col("best_probability").isNull(), "no_candidate")
            .when(F.col("dropped") == 1, "other_session")
            .otherwise(F.col("decision"))
            .alias("reason"),
            "best_probability",
        )
    )
    report_best = scored.groupBy("report_id").agg(F.max("probability").alias("best_probability"))
    ambiguous = best.where("decision = 'ambiguous'").select("edf_file")
    tied = contenders.join(ambiguous, "edf_file").select("report_id").distinct().withColumn("tied", F.lit(1))
    unpaired_reports = (
        reports.select("report_id")
        .join(pairs.select("report_id").distinct(), "report_id", "left_anti")
        .join(report_best, "report_id", "left")
        .join(tied, "report_id", "left")
        .select(
            "report_id",
            F.when(F.col("best_probability").isNull(), "no_candidate")
            .when(F.col("best_probability") < threshold, "below_threshold")
            .when(F.col("tied") == 1, "ambiguous")
            .otherwise("files_taken")
            .alias("reason"),
            "best_probability",
        )
    )
    return pairs, unpaired_reports, unpaired_files


# ---------------------------------------------------------------------------------------------------------------
# Whole steps, shared by the jobs


class Prepared:
    """What both pairing jobs start from: the reads (with their counts), the facts and the featurized candidates."""

    def __init__(self, reports, headers, report_facts_, file_facts_, features):
        self.reports, self.headers = reports, headers
        self.report_facts, self.file_facts, self.features = report_facts_, file_facts_, features

    def unpersist(self) -> None:
        for frame in (self.report_facts, self.file_facts, self.features):
            frame.unpersist()
        self.reports.unpersist()
        self.headers.unpersist()


def prepare(
    spark: SparkSession,
    reports_uri: str,
    edf_uri: str,
    config: EegPairingConfig,
    *,
    wide: bool = False,
    via: str = "driver",
) -> Prepared:
    """Read reports and EDF headers, derive both sides' facts, block and featurize (all cached)."""
    from pipelines.eeg import sources

    reports = sources.read_reports(spark, reports_uri)
    headers = sources.read_edf_headers(spark, edf_uri, via=via)
    rf = report_facts(reports.rows, window_days=config.date_window_days, wide=wide).cache()
    ff = file_facts(headers.rows).cache()
    features = featurize(candidates(rf, ff)).cache()
    log.info(
        "pairing candidates: %d reports x %d files -> %d candidate pairs",
        reports.parsed,
        headers.parsed,
        features.count(),
    )
    return Prepared(reports, headers, rf, ff, features)


def pairable_links(links: DataFrame, prepared: Prepared) -> DataFrame:
    """The true links whose report and file were both read (the ones a pairing can find)."""
    return (
        links.join(prepared.report_facts.select("report_id"), "report_id")
        .join(prepared.file_facts.select("edf_file"), "edf_file")
        .select("report_id", "edf_file")
        .distinct()
    )


def pairing_metrics(pairs: DataFrame, links: DataFrame, prepared: Prepared) -> dict:
    """Precision and recall of `pairs` against the pairable true links, and the blocking's recall."""
    from pipelines.eeg import evaluate

    truth = [(r["report_id"], r["edf_file"]) for r in pairable_links(links, prepared).collect()]
    predicted = [(r["report_id"], r["edf_file"]) for r in pairs.select("report_id", "edf_file").collect()]
    blocked = {(r["report_id"], r["edf_file"]) for r in prepared.features.select("report_id", "edf_file").collect()}
    metrics = evaluate.pairing_metrics(predicted, truth)
    metrics["blocking_recall"] = round(len(blocked & set(truth)) / len(truth), 4) if truth else None
    metrics["links"] = len(truth)
    return metrics


def fit_models(
    spark: SparkSession, labelled: DataFrame, config: EegPairingConfig, *, augment_copies: int = 3, seed: int = 7
):
    """(BigDL MLP, Spark ML logistic regression), both trained on the same augmented pairs."""
    from bigdl.dllib.utils.common import RNG

    # Sorted first: the augmented copies and the training order then depend on the seed alone.
    data = augment(labelled.orderBy("report_id", "edf_file"), copies=augment_copies, seed=seed).cache()
    RNG().set_seed(seed)
    mlp = train_bigdl(spark, data, config)
    logreg = train_logreg(data)
    data.unpersist()
    return mlp, logreg


MODEL_FILE = "bigdl.model"
LOGREG_DIR = "logreg"


def save_models(uri: str, mlp, logreg) -> None:
    mlp.saveModel(f"{uri}/{MODEL_FILE}", over_write=True)
    logreg.write().overwrite().save(f"{uri}/{LOGREG_DIR}")


def load_scorer(uri: str, kind: str):
    """A function features -> scored frame, from the models saved under `uri` (trusted locations only:
    BigDL's format is Java serialisation)."""
    if kind == "bigdl":
        from bigdl.dllib.nn.layer import Model

        model = Model.loadModel(f"{uri}/{MODEL_FILE}")
        return lambda features: predict_bigdl(model, features)
    if kind == "logreg":
        from pyspark.ml.classification import LogisticRegressionModel

        model = LogisticRegressionModel.load(f"{uri}/{LOGREG_DIR}")
        return lambda features: predict_logreg(model, features)
    raise ValueError(f"eeg.pairing.model must be 'bigdl' or 'logreg', not {kind!r}")


def safe_ids(prepared: Prepared, key: bytes) -> tuple[DataFrame, DataFrame]:
    """(report_id -> safe report id, edf_file -> safe file id): a name that carries an identifier of its own
    side or of any candidate on the other side (names, record numbers) or a date is replaced by a keyed hash."""
    from pipelines.eeg.deid import safe_file_id

    def idents(name_col: str, mrn_col: str):
        parts = F.split(F.coalesce(F.col(name_col), F.lit("")), " ")
        return F.filter(F.concat(parts, F.array(F.coalesce(F.col(mrn_col), F.lit("")))), lambda x: F.length(x) > 0)

    r_own = prepared.report_facts.select("report_id", idents("r_name", "r_mrn").alias("idents"))
    f_own = prepared.file_facts.select("edf_file", idents("f_name", "f_mrn").alias("idents"))
    pairs = prepared.features.select("report_id", "edf_file")
    r_all = r_own.unionByName(pairs.join(f_own, "edf_file").select("report_id", "idents"))
    f_all = f_own.unionByName(pairs.join(r_own, "report_id").select("edf_file", "idents"))

    def guard(id_col: str, frame: DataFrame) -> DataFrame:
        grouped = frame.groupBy(id_col).agg(F.array_distinct(F.flatten(F.collect_list("idents"))).alias("idents"))

        def run(rows: Iterable) -> Iterator[tuple]:
            for row in rows:
                yield (row[id_col], safe_file_id(row[id_col], key, identifiers=tuple(row["idents"])))

        return frame.sparkSession.createDataFrame(grouped.rdd.mapPartitions(run), f"{id_col} string, safe_id string")

    return guard("report_id", r_all), guard("edf_file", f_all)
