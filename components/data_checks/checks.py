"""Image-aware data checks that TFDV does not do, TFDV's own anomalies, and drift across spans.

Everything here is a pure function of the run's outputs (catalog rows, summary, statistics,
schema), so the component, the report and the tests share it:

    found = catalog_checks(rows, summary, options)
    found += tfdv_anomalies(read_schema_diffs(anomalies_uri))
    drift, drifted = compare_spans(current, baseline, schema, options)
    verdict = decide(found + drifted, options.gate)
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterable

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from components.image_example_gen import spec

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)

# Check names: each is a key of CheckOptions.severities.
QUARANTINE_RATE = "quarantine_rate"
MIN_CLASS_COUNT = "min_class_count"
CLASS_IMBALANCE = "class_imbalance"
SPLIT_LEAKAGE = "split_leakage"
LABEL_NOT_IN_TRAIN = "label_not_in_train"
DRIFT = "drift"
TFDV = "tfdv"
CHECKS = (QUARANTINE_RATE, MIN_CLASS_COUNT, CLASS_IMBALANCE, SPLIT_LEAKAGE, LABEL_NOT_IN_TRAIN, DRIFT)

LINF = "linf"  # L-infinity distance between categorical distributions.
JS = "js"  # Jensen-Shannon divergence between numeric histograms.

DEFAULT_SEVERITIES = {
    QUARANTINE_RATE: ERROR,
    MIN_CLASS_COUNT: ERROR,
    CLASS_IMBALANCE: WARNING,
    SPLIT_LEAKAGE: ERROR,
    LABEL_NOT_IN_TRAIN: ERROR,
    DRIFT: ERROR,
}
DEFAULT_DRIFT_FEATURES = {
    spec.LABEL: LINF,
    spec.CAMERA_MAKE: LINF,
    spec.CAMERA_MODEL: LINF,
    spec.WIDTH: JS,
    spec.HEIGHT: JS,
    spec.GPS_LATITUDE: JS,
    spec.GPS_LONGITUDE: JS,
}


@dataclasses.dataclass(frozen=True)
class CheckOptions:
    # Defaults equal pipelines/configs/default.yaml's validation section (tests/test_config.py).
    max_quarantine_rate: float = 0.05  # Quarantined / seen (duplicates are not counted).
    min_class_count: int = 10  # Images per class in the train split.
    max_class_imbalance: float = 10.0  # Largest / smallest class in the train split.
    categorical_drift: float = 0.1  # L-infinity threshold.
    numeric_drift: float = 0.1  # Jensen-Shannon threshold.
    drift_features: tuple[tuple[str, str], ...] = tuple(DEFAULT_DRIFT_FEATURES.items())
    drift_split: str = "train"
    severities: tuple[tuple[str, str], ...] = tuple(DEFAULT_SEVERITIES.items())
    gate: str = "fail"  # fail: error anomalies stop the pipeline before training; warn: they do not.

    def severity(self, check: str) -> str:
        return dict(self.severities).get(check, DEFAULT_SEVERITIES[check])

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["drift_features"] = dict(self.drift_features)
        data["severities"] = dict(self.severities)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckOptions":
        data = dict(data)
        data["drift_features"] = tuple(dict(data.get("drift_features", DEFAULT_DRIFT_FEATURES)).items())
        data["severities"] = tuple(dict(data.get("severities", DEFAULT_SEVERITIES)).items())
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class Anomaly:
    check: str  # One of CHECKS, or "tfdv".
    severity: str  # error | warning
    description: str
    split: str | None = None
    feature: str | None = None
    source: str = "cvpipe"  # cvpipe | tfdv

    @property
    def title(self) -> str:
        where = "/".join(x for x in (self.split, self.feature) if x)
        return f"{self.check}{f' [{where}]' if where else ''}"


def catalog_checks(
    rows: Iterable[dict[str, Any]], options: CheckOptions, labels: Iterable[str] = ()
) -> list[Anomaly]:
    """Quarantine rate, class counts and balance, leakage across splits, labels missing from train.

    ``rows`` are catalog rows (status, reason, split, label, sha256, path); ``labels`` the
    ingestion's vocabulary, so a class whose every image was quarantined still counts as present.
    """
    rows = list(rows)
    found: list[Anomaly] = []
    ingested = [r for r in rows if r[spec.STATUS] == spec.INGESTED]
    quarantined = [r for r in rows if r[spec.STATUS] == spec.QUARANTINED]
    if rows:
        rate = len(quarantined) / len(rows)
        if rate > options.max_quarantine_rate:
            reasons = collections.Counter(r[spec.REASON] for r in quarantined).most_common()
            found.append(
                Anomaly(
                    QUARANTINE_RATE,
                    options.severity(QUARANTINE_RATE),
                    f"{len(quarantined)} of {len(rows)} input files quarantined ({rate:.1%}, "
                    f"limit {options.max_quarantine_rate:.1%}): "
                    + ", ".join(f"{reason} {n}" for reason, n in reasons),
                )
            )

    by_split: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in ingested:
        by_split[r[spec.SPLIT]][r[spec.LABEL]] += 1
    train = by_split.get("train", collections.Counter())
    vocabulary = sorted(set(labels) | {r[spec.LABEL] for r in ingested})
    for label in vocabulary:
        if train[label] < options.min_class_count:
            found.append(
                Anomaly(
                    MIN_CLASS_COUNT,
                    options.severity(MIN_CLASS_COUNT),
                    f"class {label!r} has {train[label]} train images (minimum {options.min_class_count})",
                    split="train",
                    feature=spec.LABEL,
                )
            )
    present = {label: n for label, n in train.items() if n > 0}
    if len(present) > 1:
        largest = max(present, key=lambda k: (present[k], k))
        smallest = min(present, key=lambda k: (present[k], k))
        ratio = present[largest] / present[smallest]
        if ratio > options.max_class_imbalance:
            found.append(
                Anomaly(
                    CLASS_IMBALANCE,
                    options.severity(CLASS_IMBALANCE),
                    f"largest class {largest!r} ({present[largest]}) is {ratio:.1f}x the smallest "
                    f"{smallest!r} ({present[smallest]}) in train (limit {options.max_class_imbalance:g}x)",
                    split="train",
                    feature=spec.LABEL,
                )
            )

    train_hashes: dict[str, str] = {
        r[spec.SHA256]: r[spec.PATH] for r in ingested if r[spec.SPLIT] == "train"
    }
    for split in sorted(s for s in by_split if s != "train"):
        leaked = sorted(
            (r[spec.PATH], train_hashes[r[spec.SHA256]])
            for r in ingested
            if r[spec.SPLIT] == split and r[spec.SHA256] in train_hashes
        )
        if leaked:
            examples = "; ".join(f"{path} = train {twin}" for path, twin in leaked[:3])
            found.append(
                Anomaly(
                    SPLIT_LEAKAGE,
                    options.severity(SPLIT_LEAKAGE),
                    f"{len(leaked)} {split} image(s) are byte-identical to train images (leakage): {examples}"
                    + (f" and {len(leaked) - 3} more" if len(leaked) > 3 else ""),
                    split=split,
                    feature=spec.SHA256,
                )
            )
        unseen = sorted(set(by_split[split]) - set(train))
        if unseen:
            found.append(
                Anomaly(
                    LABEL_NOT_IN_TRAIN,
                    options.severity(LABEL_NOT_IN_TRAIN),
                    f"label(s) {', '.join(map(repr, unseen))} appear in {split} but not in train",
                    split=split,
                    feature=spec.LABEL,
                )
            )
    return found


_TFDV_SEVERITY = {anomalies_pb2.AnomalyInfo.ERROR: ERROR, anomalies_pb2.AnomalyInfo.WARNING: WARNING}


def tfdv_anomalies(schema_diffs: dict[str, anomalies_pb2.Anomalies]) -> list[Anomaly]:
    """ExampleValidator's anomalies (split -> Anomalies proto) in cvpipe's form."""
    found = []
    for split, anomalies in sorted(schema_diffs.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            found.append(_from_info(info, split, feature))
        if anomalies.HasField("dataset_anomaly_info"):
            found.append(_from_info(anomalies.dataset_anomaly_info, split, None))
    return found


def _from_info(info: anomalies_pb2.AnomalyInfo, split: str | None, feature: str | None) -> Anomaly:
    kinds = ", ".join(sorted({anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason}))
    text = info.description or info.short_description
    return Anomaly(
        TFDV,
        _TFDV_SEVERITY.get(info.severity, ERROR),
        f"{text} ({kinds})" if kinds else text,
        split=split,
        feature=feature,
        source="tfdv",
    )


_DRIFT_TYPES = {
    anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
    anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
}


def compare_spans(
    current: statistics_pb2.DatasetFeatureStatisticsList,
    baseline: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    options: CheckOptions,
) -> tuple[list[dict[str, Any]], list[Anomaly]]:
    """TFDV's drift comparators between one split of two spans.

    Returns one row per compared feature (comparator, measured distance, threshold, drifted) and a
    drift anomaly per feature over its threshold. Features absent from both spans are skipped.
    """
    import tensorflow_data_validation as tfdv

    schema = _copy(schema)
    present = {f.path.step[0] for d in (current, baseline) for ds in d.datasets for f in ds.features}
    compared = {}
    for name, kind in options.drift_features:
        if name not in present:
            continue
        feature = _schema_feature(schema, name)
        if feature is None:
            continue
        if kind == LINF:
            feature.drift_comparator.infinity_norm.threshold = options.categorical_drift
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = options.numeric_drift
        compared[name] = kind
    if not compared:
        return [], []
    result = tfdv.validate_statistics(current, schema, previous_statistics=baseline)
    measured: dict[str, float] = {}
    for info in result.drift_skew_info:
        for m in info.drift_measurements:
            measured[info.path.step[0]] = m.value
    rows, found = [], []
    for name, kind in compared.items():
        threshold = options.categorical_drift if kind == LINF else options.numeric_drift
        info = result.anomaly_info.get(name)
        drifted = info is not None and any(r.type in _DRIFT_TYPES for r in info.reason)
        value = measured.get(name)
        rows.append(
            {
                "feature": name,
                "comparator": "L-infinity" if kind == LINF else "Jensen-Shannon",
                "value": value,
                "threshold": threshold,
                "drifted": drifted,
            }
        )
        if drifted:
            shown = f"{value:.3f}" if value is not None else "above"
            found.append(
                Anomaly(
                    DRIFT,
                    options.severity(DRIFT),
                    f"{name} drifted from the previous span: "
                    f"{'L-infinity distance' if kind == LINF else 'Jensen-Shannon divergence'} {shown} "
                    f"> {threshold:g}",
                    split=options.drift_split,
                    feature=name,
                )
            )
    return rows, found


def _copy(schema: schema_pb2.Schema) -> schema_pb2.Schema:
    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    return copy


def _schema_feature(schema: schema_pb2.Schema, name: str):
    for feature in schema.feature:
        if feature.name == name:
            return feature
    return None


def decide(anomalies: Iterable[Anomaly], gate: str) -> dict[str, Any]:
    """pass when no anomaly is an error; the gate says whether a fail stops training."""
    blocking = [a for a in anomalies if a.severity == ERROR]
    if not blocking:
        return {"verdict": "pass", "gate": gate, "blocks_training": False, "reason": "no error anomalies"}
    reason = f"{len(blocking)} error anomal{'y' if len(blocking) == 1 else 'ies'}: " + "; ".join(
        a.title for a in blocking
    )
    return {"verdict": "fail", "gate": gate, "blocks_training": gate == "fail", "reason": reason}
