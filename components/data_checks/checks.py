"""Image-aware data checks that TFDV does not do, TFDV's own anomalies, and drift across spans.

Everything here is a pure function of the run's outputs (catalog rows, summary, statistics,
schema), so the component, the report and the tests share it:

    found = catalog_checks(rows, options, labels)
    near = duplicates.confirmed_pairs(rows, duplicates.Confirmer(read_bytes), fallback_distance=distance)
    pairs, leaked = near_duplicate_leakage(rows, distance, options, baseline_rows, baseline_span, near)
    conflicts, conflicting = label_conflict(rows, options, near)
    classes, apart = property_imbalance(rows, options)
    found += tfdv_anomalies(read_schema_diffs(anomalies_uri))
    drift, drifted = compare_spans(current, baseline, schema, options)
    verdict = decide(found + drifted, options.gate)
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterable

import numpy as np
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from components.data_checks import duplicates
from components.image_example_gen import pixels, spec

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)

# Check names: each is a key of CheckOptions.severities.
QUARANTINE_RATE = "quarantine_rate"
NOTHING_TO_TRAIN = "nothing_to_train"
MIN_CLASS_COUNT = "min_class_count"
CLASS_IMBALANCE = "class_imbalance"
SPLIT_LEAKAGE = "split_leakage"
NEAR_DUPLICATE_LEAKAGE = "near_duplicate_leakage"
LABEL_CONFLICT = "label_conflict"
LABEL_NOT_IN_TRAIN = "label_not_in_train"
DRIFT = "drift"
PROPERTY_DRIFT = "property_drift"
PROPERTY_IMBALANCE = "property_imbalance"
# Object detection (boxes.py): the label checks' questions asked of the boxes.
MIN_BOX_COUNT = "min_box_count"
BOX_CLASS_IMBALANCE = "box_class_imbalance"
BOXES_PER_IMAGE = "boxes_per_image"
NEGATIVE_SHARE = "negative_share"
BOX_SPLIT_SKEW = "box_split_skew"
BOX_DRIFT = "box_drift"
TFDV = "tfdv"
CHECKS = (
    QUARANTINE_RATE,
    NOTHING_TO_TRAIN,
    MIN_CLASS_COUNT,
    CLASS_IMBALANCE,
    SPLIT_LEAKAGE,
    NEAR_DUPLICATE_LEAKAGE,
    LABEL_CONFLICT,
    LABEL_NOT_IN_TRAIN,
    DRIFT,
    PROPERTY_DRIFT,
    PROPERTY_IMBALANCE,
    MIN_BOX_COUNT,
    BOX_CLASS_IMBALANCE,
    BOXES_PER_IMAGE,
    NEGATIVE_SHARE,
    BOX_SPLIT_SKEW,
    BOX_DRIFT,
)

LINF = "linf"  # L-infinity distance between categorical distributions.
JS = "js"  # Jensen-Shannon divergence between numeric histograms.

DEFAULT_SEVERITIES = {
    QUARANTINE_RATE: ERROR,
    NOTHING_TO_TRAIN: ERROR,  # No train image, one class for a classifier, no object class.
    MIN_CLASS_COUNT: ERROR,
    CLASS_IMBALANCE: WARNING,
    SPLIT_LEAKAGE: ERROR,
    # A perceptual hash also matches look-alikes (a burst of shots, one layout in new colours), not
    # only copies: a reviewer looks at the pairs, the gate does not stop on them by default.
    NEAR_DUPLICATE_LEAKAGE: WARNING,
    # One image (byte-identical, or a near duplicate confirmed on pixels) under two labels: the
    # model is taught, or graded on, both answers for the same picture.
    LABEL_CONFLICT: ERROR,
    LABEL_NOT_IN_TRAIN: ERROR,
    DRIFT: ERROR,
    PROPERTY_DRIFT: WARNING,
    PROPERTY_IMBALANCE: WARNING,
    MIN_BOX_COUNT: ERROR,  # A class the detector cannot learn, as min_class_count.
    BOX_CLASS_IMBALANCE: WARNING,
    BOXES_PER_IMAGE: WARNING,
    NEGATIVE_SHARE: WARNING,
    BOX_SPLIT_SKEW: WARNING,
    BOX_DRIFT: WARNING,  # As property_drift; the class mix drifting is `drift` (an error), as label's.
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
# Pixel properties compared across spans (property_drift) and across classes (property_imbalance).
COMPARED_PROPERTIES = (spec.BRIGHTNESS, spec.CONTRAST, spec.SHARPNESS, spec.COLOURFULNESS)
# Words for "lower" and "higher" of each, in the imbalance anomaly's description.
_LOWER_HIGHER = {
    spec.BRIGHTNESS: ("darker", "lighter"),
    spec.CONTRAST: ("lower in contrast", "higher in contrast"),
    spec.SHARPNESS: ("blurrier", "sharper"),
    spec.COLOURFULNESS: ("less colourful", "more colourful"),
}
MIN_IMBALANCE_COUNT = 5  # Images a class (and the rest of train) needs before it is compared.
MAX_LISTED_PAIRS = 200  # Near-duplicate pairs kept in checks.json for the report, per kind.


@dataclasses.dataclass(frozen=True)
class CheckOptions:
    # Defaults equal pipelines/configs/default.yaml's validation section (tests/test_config.py).
    max_quarantine_rate: float = 0.05  # Quarantined / seen (duplicates are not counted).
    min_class_count: int = 10  # Images per class in the train split.
    max_class_imbalance: float = 10.0  # Largest / smallest class in the train split.
    categorical_drift: float = 0.1  # L-infinity threshold.
    numeric_drift: float = 0.1  # Jensen-Shannon threshold.
    drift_features: tuple[tuple[str, str], ...] = tuple(DEFAULT_DRIFT_FEATURES.items())
    property_drift: float = 0.1  # Jensen-Shannon threshold of COMPARED_PROPERTIES across spans.
    property_imbalance: float = 0.95  # A class above (or below) the rest in this share of pairs.
    # Near duplicates (duplicates.py): pHash candidates within this distance, confirmed on pixels at
    # this score; not in default.yaml yet (pipelines/config.py does not read them).
    near_duplicate_candidates: int = duplicates.CANDIDATE_DISTANCE
    near_duplicate_confirm: float = duplicates.MIN_SCORE
    # Object detection (boxes.py).
    min_box_count: int = 10  # Boxes per class in the train split.
    max_box_imbalance: float = 10.0  # Most / fewest boxes of a class in the train split.
    max_boxes_per_image: int = 100  # More boxes on one image than this is an anomaly.
    max_negative_share: float = 0.5  # Share of a split's images without boxes.
    box_skew: float = 0.1  # Jensen-Shannon: eval/test box sizes, aspect ratios, boxes per image vs train.
    box_drift: float = 0.1  # Jensen-Shannon: the same against the previous span's train split.
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
    rows: Iterable[dict[str, Any]],
    options: CheckOptions,
    labels: Iterable[str] = (),
    by_label: bool = True,
) -> list[Anomaly]:
    """Quarantine rate, class counts and balance, leakage across splits, labels missing from train.

    ``rows`` are catalog rows (status, reason, split, label, sha256, path); ``labels`` the
    ingestion's vocabulary, so a class whose every image was quarantined still counts as present.
    ``by_label=False`` (detection: no label per image; boxes.py asks the same of the boxes) leaves
    out the checks of the label column.
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
    vocabulary = sorted(set(labels) | {r[spec.LABEL] for r in ingested}) if by_label else []
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
    present = {label: n for label, n in train.items() if n > 0} if by_label else {}
    nothing = _nothing_to_train(rows, ingested, train, present, labels, by_label)
    if nothing:
        found.append(Anomaly(NOTHING_TO_TRAIN, options.severity(NOTHING_TO_TRAIN), nothing, split="train"))
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
        unseen = sorted(set(by_split[split]) - set(train)) if by_label else []
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


def _nothing_to_train(rows, ingested, train, present, labels, by_label: bool) -> str | None:
    """Why no model can be trained on this data, if it cannot: caught at the data gate, before any
    model code runs (the Tuner would fail later with a less helpful error)."""
    if not sum(train.values()):
        reasons = collections.Counter(r[spec.REASON] for r in rows if r[spec.STATUS] == spec.QUARANTINED)
        why = f"{len(rows)} input files, {len(ingested)} ingested"
        if reasons:
            why += ", quarantined: " + ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        return f"the train split has no images ({why})"
    if by_label and len(present) < 2:
        return (
            f"a classifier needs at least two classes with train images; found {len(present)}: "
            f"{', '.join(map(repr, sorted(present)))}"
        )
    if not by_label and not list(labels):
        return "no object class to detect: the annotations name no category"
    return None


def near_duplicate_leakage(
    rows: Iterable[dict[str, Any]],
    max_distance: int,
    options: CheckOptions,
    baseline: Iterable[dict[str, Any]] = (),
    baseline_span: int | None = None,
    confirmed: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[Anomaly]]:
    """Eval and test images that are near duplicates of a train image.

    Across splits of this span (byte-identical pairs are split_leakage's, so they are left out
    here), and, given the ``baseline`` span's train rows (path, split, phash, sha256 from the
    statistics store), across spans: a near duplicate of an image the served model was trained on
    makes its evaluation on this span's eval or test split too kind. Within the span the pairs are
    ``confirmed`` (duplicates.confirmed_pairs: pHash candidates confirmed on pixels, each with its
    ``confirm_score``); without them, and across spans (whose images are not at hand), a pair is
    one whose pHashes are within ``max_distance``. Returns the pairs (capped at MAX_LISTED_PAIRS
    per kind, closest first) and one anomaly per split and kind.
    """
    current = [r for r in rows if r[spec.STATUS] == spec.INGESTED and r.get(spec.PHASH)]
    train = [r for r in current if r[spec.SPLIT] == "train"]
    held_out = [r for r in current if r[spec.SPLIT] != "train"]
    earlier = [r for r in baseline if r.get(spec.SPLIT) == "train" and r.get(spec.PHASH)]
    if confirmed is None:
        within = [p for p in _cross_pairs(held_out, train, max_distance) if p["sha256"] != p["twin_sha256"]]
    else:
        within = [
            _held_out_first(p)
            for p in confirmed
            if (p["first"][spec.SPLIT] == "train") != (p["second"][spec.SPLIT] == "train")
        ]
    across = _cross_pairs(held_out, earlier, max_distance)
    rule = f"pHash distance <= {max_distance}"
    if confirmed is not None:
        rule = (
            f"whole or centre pHash within {options.near_duplicate_candidates} bits, confirmed on "
            f"pixels at {options.near_duplicate_confirm:g}"
        )
    found = []
    for kind, pairs, where in (
        ("splits", within, "train images"),
        ("spans", across, f"span {baseline_span}'s train images"),
    ):
        for split in sorted({p["split"] for p in pairs}):
            leaked = sorted(
                (p for p in pairs if p["split"] == split), key=lambda p: (p["distance"], p["path"])
            )
            images = len({p["path"] for p in leaked})
            examples = "; ".join(f"{p['path']} ~ {p['twin']} ({_scores(p)})" for p in leaked[:3])
            found.append(
                Anomaly(
                    NEAR_DUPLICATE_LEAKAGE,
                    options.severity(NEAR_DUPLICATE_LEAKAGE),
                    f"{images} {split} image(s) are near duplicates of {where} "
                    f"({rule if kind == 'splits' else f'pHash distance <= {max_distance}'}): {examples}"
                    + (f" and {len(leaked) - 3} more pair(s)" if len(leaked) > 3 else ""),
                    split=split,
                    feature=spec.PHASH,
                )
            )
    summary = {
        "distance": max_distance,
        "baseline_span": baseline_span,
        "across_splits": sorted(within, key=lambda p: (p["distance"], p["path"]))[:MAX_LISTED_PAIRS],
        "across_spans": sorted(across, key=lambda p: (p["distance"], p["path"]))[:MAX_LISTED_PAIRS],
        "counts": {"across_splits": len(within), "across_spans": len(across)},
        "confirm": None
        if confirmed is None
        else {
            "method": "whole or centre pHash candidates; normalised cross-correlation of high-passed "
            "grey thumbnails, crops of up to 6% a side searched",
            "candidate_distance": options.near_duplicate_candidates,
            "min_score": options.near_duplicate_confirm,
        },
    }
    return summary, found


def _scores(pair: dict[str, Any]) -> str:
    score = pair.get("confirm_score")
    return f"{pair['distance']}" if score is None else f"{pair['distance']}, score {score:.2f}"


def _held_out_first(pair: dict[str, Any]) -> dict[str, Any]:
    """A confirmed pair (duplicates.confirmed_pairs) as a leakage pair: the eval or test image, its
    train twin."""
    a, b = pair["first"], pair["second"]
    if a[spec.SPLIT] == "train":
        a, b = b, a
    return {
        "path": a[spec.PATH],
        "split": a[spec.SPLIT],
        "label": a.get(spec.LABEL),
        "twin": b[spec.PATH],
        "twin_label": b.get(spec.LABEL),
        "distance": pair["distance"],
        "confirm_score": pair["confirm_score"],
        "sha256": a.get(spec.SHA256),
        "twin_sha256": b.get(spec.SHA256),
    }


def label_conflict(
    rows: Iterable[dict[str, Any]], options: CheckOptions, confirmed: Iterable[dict[str, Any]] = ()
) -> tuple[dict[str, Any], list[Anomaly]]:
    """One image under two labels: byte-identical files (ingested, or dropped as duplicates within a
    split) and ``confirmed`` near duplicates (duplicates.confirmed_pairs), in one split or across
    splits. Returns checks.json's ``label_conflicts`` (the pairs, capped at MAX_LISTED_PAIRS) and
    one anomaly per split of the listed (non-train, when either is) image."""
    conflicts = duplicates.label_conflicts(rows, confirmed)
    found = []
    for split in sorted({str(c["split"]) for c in conflicts}):
        listed = [c for c in conflicts if str(c["split"]) == split]
        examples = "; ".join(
            f"{c['path']} ({c['label']!r}) {'=' if c['kind'] == 'identical' else '~'} "
            f"{c['twin_split']} {c['twin']} ({c['twin_label']!r})"
            for c in listed[:3]
        )
        identical = sum(1 for c in listed if c["kind"] == "identical")
        found.append(
            Anomaly(
                LABEL_CONFLICT,
                options.severity(LABEL_CONFLICT),
                f"{len(listed)} {split} image(s) have a copy under another label ({identical} "
                f"byte-identical, {len(listed) - identical} near duplicates confirmed on pixels): {examples}"
                + (f" and {len(listed) - 3} more pair(s)" if len(listed) > 3 else ""),
                split=split,
                feature=spec.LABEL,
            )
        )
    return {"pairs": conflicts[:MAX_LISTED_PAIRS], "count": len(conflicts)}, found


def _cross_pairs(left: list[dict], right: list[dict], max_distance: int) -> list[dict[str, Any]]:
    """Pairs (one row of ``left``, one of ``right``) whose pHashes are within ``max_distance``."""
    if not left or not right:
        return []
    both = left + right
    first, second, distance = pixels.near_duplicate_pairs(
        pixels.hash_array(r[spec.PHASH] for r in both), max_distance
    )
    crossing = (first < len(left)) & (second >= len(left))
    return [
        {
            "path": both[i][spec.PATH],
            "split": both[i][spec.SPLIT],
            "label": both[i].get(spec.LABEL),
            "twin": both[j][spec.PATH],
            "twin_label": both[j].get(spec.LABEL),
            "distance": int(d),
            "confirm_score": None,
            "sha256": both[i].get(spec.SHA256),
            "twin_sha256": both[j].get(spec.SHA256),
        }
        for i, j, d in zip(first[crossing].tolist(), second[crossing].tolist(), distance[crossing].tolist())
    ]


def property_imbalance(
    rows: Iterable[dict[str, Any]], options: CheckOptions
) -> tuple[list[dict[str, Any]], list[Anomaly]]:
    """Train classes whose images sit apart from the other classes' on a pixel property.

    For each class and property, the share of (its image, another class's image) pairs in which
    its image is the higher (ties count half): the area under the ROC curve of the property as a
    classifier of that class. At 0.5 the property says nothing about the class; near 0 or 1 it
    separates the class by itself (every night shot dark, every day shot light), a shortcut the
    model will learn instead of the content. Classes with fewer than MIN_IMBALANCE_COUNT images
    are skipped. Returns per-class medians and shares, and an anomaly per (class, property) at or
    beyond ``options.property_imbalance``.
    """
    train = [
        r
        for r in rows
        if r[spec.STATUS] == spec.INGESTED and r[spec.SPLIT] == "train" and r.get(spec.BRIGHTNESS) is not None
    ]
    labels = np.array([r[spec.LABEL] for r in train])
    table, found = [], []
    counts = collections.Counter(labels.tolist())
    for label in sorted(counts):
        table.append({"label": label, "count": counts[label], "median": {}, "share_above": {}})
    if len(counts) < 2:
        return table, found
    limit = options.property_imbalance
    for name in COMPARED_PROPERTIES:
        values = np.array([r[name] for r in train], dtype=np.float64)
        ranks = _average_ranks(values)
        for entry in table:
            inside = labels == entry["label"]
            n_in, n_out = int(inside.sum()), int((~inside).sum())
            entry["median"][name] = float(np.median(values[inside]))
            if n_in < MIN_IMBALANCE_COUNT or n_out < MIN_IMBALANCE_COUNT:
                continue
            share = (float(ranks[inside].sum()) - n_in * (n_in + 1) / 2) / (n_in * n_out)
            entry["share_above"][name] = share
            if share >= limit or share <= 1 - limit:
                lower, higher = _LOWER_HIGHER[name]
                word, seen = (higher, share) if share >= limit else (lower, 1 - share)
                found.append(
                    Anomaly(
                        PROPERTY_IMBALANCE,
                        options.severity(PROPERTY_IMBALANCE),
                        f"class {entry['label']!r} is {word} than the other classes: its image is the "
                        f"{'higher' if share >= limit else 'lower'} {name} in {seen:.0%} of pairs "
                        f"(limit {limit:.0%}); median {entry['median'][name]:.3g} against "
                        f"{float(np.median(values[~inside])):.3g}",
                        split="train",
                        feature=name,
                    )
                )
    return table, found


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


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

    The drift features (``drift``) and the pixel properties (``property_drift``, Jensen-Shannon at
    ``options.property_drift``; only when both spans have them, as spans ingested before the
    properties existed do not). Returns one row per compared feature (check, comparator, measured
    distance, threshold, drifted) and an anomaly per feature over its threshold. Features absent
    from both spans are skipped.
    """
    import tensorflow_data_validation as tfdv

    schema = _copy(schema)
    presence = [{f.path.step[0] for ds in d.datasets for f in ds.features} for d in (current, baseline)]
    present, in_both = presence[0] | presence[1], presence[0] & presence[1]
    wanted = [(name, kind, DRIFT) for name, kind in options.drift_features if name in present]
    drifted_names = {name for name, _, _ in wanted}
    wanted += [
        (name, JS, PROPERTY_DRIFT)
        for name in COMPARED_PROPERTIES
        if name in in_both and name not in drifted_names
    ]
    compared = {}
    for name, kind, check in wanted:
        feature = _schema_feature(schema, name)
        if feature is None:
            continue
        threshold = (
            options.property_drift
            if check == PROPERTY_DRIFT
            else options.categorical_drift
            if kind == LINF
            else options.numeric_drift
        )
        if kind == LINF:
            feature.drift_comparator.infinity_norm.threshold = threshold
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
        compared[name] = (kind, check, threshold)
    if not compared:
        return [], []
    result = tfdv.validate_statistics(current, schema, previous_statistics=baseline)
    measured: dict[str, float] = {}
    for info in result.drift_skew_info:
        for m in info.drift_measurements:
            measured[info.path.step[0]] = m.value
    rows, found = [], []
    for name, (kind, check, threshold) in compared.items():
        info = result.anomaly_info.get(name)
        drifted = info is not None and any(r.type in _DRIFT_TYPES for r in info.reason)
        value = measured.get(name)
        comparator = "L-infinity" if kind == LINF else "Jensen-Shannon"
        rows.append(
            {
                "feature": name,
                "check": check,
                "comparator": comparator,
                "value": value,
                "threshold": threshold,
                "drifted": drifted,
            }
        )
        if drifted:
            shown = f"{value:.3f}" if value is not None else "above"
            found.append(
                Anomaly(
                    check,
                    options.severity(check),
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
