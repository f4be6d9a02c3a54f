"""Box-aware checks for object detection (``task: detection``): what the boxes of a span look like.

The label checks of classification (min_class_count, class_imbalance, label_not_in_train, label
drift) read one label per image; detection's examples carry a list of boxes instead. Here the same
questions are asked of the boxes, as plain functions of per-image rows (path, split, width, height,
box_classes and the normalised ``boxes``), so the component, the report and the tests share them:

    images = read_boxes(examples_uri, ["train", "eval", "test"])  # Or rows made by hand.
    shape = distributions(images)                  # Per split: counts, sizes, aspect ratios.
    found = box_checks(images, shape, options, labels)
    rows, drifted = compare_box_spans(shape["train"], baseline["train"], options)

Sizes follow COCO: a box's area in pixels of the stored image is ``small`` below 32², ``medium``
below 96², else ``large``. Aspect ratio is box width over height, binned on a log2 scale so a box
and its transpose sit symmetrically. Distributions are compared with the Jensen-Shannon divergence
(base 2, so 0 to 1, as TFDV's comparator for numeric features) and the class mix with the
L-infinity distance (as TFDV's for label); bins are fixed, so spans compare bin for bin.
"""

from __future__ import annotations

import collections
import math
import os
from typing import Any, Iterable

from components import fileio, tfrecords
from components.data_checks.checks import (
    BOX_CLASS_IMBALANCE,
    BOX_DRIFT,
    BOX_SPLIT_SKEW,
    BOXES_PER_IMAGE,
    DRIFT,
    LABEL_NOT_IN_TRAIN,
    MIN_BOX_COUNT,
    NEGATIVE_SHARE,
    Anomaly,
    CheckOptions,
)
from components.image_example_gen import spec

BOXES = "boxes"  # Per-image rows: [[xmin, ymin, xmax, ymax], ...] normalised, in example order.
SIZES = ("small", "medium", "large")
SMALL_AREA, MEDIUM_AREA = 32**2, 96**2  # COCO's limits, in pixels of the stored image.
# log2(width / height) bin edges: 1/8, 1/4, ..., 8; the outer bins take everything beyond.
ASPECT_EDGES = tuple(x / 2 for x in range(-6, 7))
ASPECT_LABELS = (
    "<1/8", "1/8", "1/5.7", "1/4", "1/2.8", "1/2", "1/1.4", "1", "1.4", "2", "2.8", "4", "5.7", ">8",
)  # fmt: skip
# Boxes per image: 0, 1, ..., 5, 6-10, 11-20, 21-50, 51-100, over 100.
COUNT_EDGES = (0, 1, 2, 3, 4, 5, 6, 11, 21, 51, 101)
COUNT_LABELS = ("0", "1", "2", "3", "4", "5", "6-10", "11-20", "21-50", "51-100", ">100")
MIN_COMPARED_BOXES = 20  # Boxes each side needs before two distributions are compared.
MAX_LISTED_IMAGES = 20  # Crowded images kept per split in checks.json.
CLASS_FEATURE = spec.OBJECT_TEXT  # The feature the class anomalies name.


def read_boxes(examples_uri: str, splits: Iterable[str]) -> list[dict[str, Any]]:
    """Per-image rows of every example in ``splits``: path, split, width, height, classes, boxes.

    Read without TensorFlow (components.tfrecords); the images' bytes are skipped, not decoded.
    """
    rows = []
    for split in splits:
        for file in sorted(fileio.glob(os.path.join(examples_uri, f"Split-{split}", "*"))):
            for example in tfrecords.read_examples(file, compression="GZIP"):
                rows.append(image_row(example, split))
    return rows


def image_row(example: dict[str, list], split: str) -> dict[str, Any]:
    """One parsed example (components.tfrecords) as a per-image row."""
    corners = [example.get(key) or [] for key in spec.OBJECT_FEATURES[:4]]
    return {
        spec.PATH: (example.get(spec.PATH) or [b""])[0].decode("utf-8", "replace"),
        spec.SPLIT: split,
        spec.WIDTH: int((example.get(spec.WIDTH) or [0])[0]),
        spec.HEIGHT: int((example.get(spec.HEIGHT) or [0])[0]),
        spec.BOX_CLASSES: [t.decode("utf-8", "replace") for t in example.get(spec.OBJECT_TEXT) or []],
        BOXES: [list(box) for box in zip(*corners)],
    }


def size_class(area: float) -> str:
    return SIZES[0] if area < SMALL_AREA else SIZES[1] if area < MEDIUM_AREA else SIZES[2]


def _bin(value: float, edges: tuple) -> int:
    """Index of the bin of ``value``: 0 below edges[0], len(edges) from the last edge on."""
    index = 0
    while index < len(edges) and value >= edges[index]:
        index += 1
    return index


def box_shape(box: list[float], width: int, height: int) -> tuple[float, float]:
    """(area in pixels, log2 of width / height) of a normalised box on a width x height image."""
    w = max(0.0, box[2] - box[0]) * width
    h = max(0.0, box[3] - box[1]) * height
    ratio = math.log2(w / h) if w > 0 and h > 0 else 0.0
    return w * h, ratio


def distributions(images: Iterable[dict[str, Any]], max_boxes: int = 100) -> dict[str, dict[str, Any]]:
    """Per split: images, negatives, boxes per class, images per class, COCO size classes, the
    aspect-ratio and boxes-per-image histograms (ASPECT_EDGES, COUNT_EDGES), and the images with
    more than ``max_boxes`` boxes (the first MAX_LISTED_IMAGES, most boxes first)."""
    found: dict[str, dict[str, Any]] = {}
    for row in images:
        d = found.setdefault(row[spec.SPLIT], _empty())
        classes, boxes = row[spec.BOX_CLASSES] or [], row.get(BOXES) or []
        d["images"] += 1
        d["boxes"] += len(classes)
        d["negatives"] += not classes
        d["per_image"][_bin(len(classes), COUNT_EDGES[1:])] += 1
        d["max_per_image"] = max(d["max_per_image"], len(classes))
        if len(classes) > max_boxes:
            d["crowded_images"] += 1
            d["crowded"].append([row[spec.PATH], len(classes)])
        for name in classes:
            d["by_class"][name] = d["by_class"].get(name, 0) + 1
        for name in set(classes):
            d["images_by_class"][name] = d["images_by_class"].get(name, 0) + 1
        for box in boxes:
            area, ratio = box_shape(box, row[spec.WIDTH], row[spec.HEIGHT])
            d["sizes"][size_class(area)] += 1
            d["aspect"][_bin(ratio, ASPECT_EDGES)] += 1
    for d in found.values():
        d["crowded"] = sorted(d["crowded"], key=lambda c: (-c[1], c[0]))[:MAX_LISTED_IMAGES]
        d["by_class"] = dict(sorted(d["by_class"].items()))
        d["images_by_class"] = dict(sorted(d["images_by_class"].items()))
    return dict(sorted(found.items()))


def _empty() -> dict[str, Any]:
    return {
        "images": 0,
        "negatives": 0,
        "boxes": 0,
        "by_class": {},
        "images_by_class": {},
        "sizes": dict.fromkeys(SIZES, 0),
        "aspect": [0] * (len(ASPECT_EDGES) + 1),
        "per_image": [0] * len(COUNT_LABELS),
        "max_per_image": 0,
        "crowded_images": 0,
        "crowded": [],
    }


def box_checks(
    shape: dict[str, dict[str, Any]], options: CheckOptions, labels: Iterable[str] = ()
) -> list[Anomaly]:
    """Rare and imbalanced classes, classes missing from train, crowded images, negatives, and
    eval/test box sizes and aspect ratios against train's.

    ``shape`` is ``distributions(images)``; ``labels`` the ingestion's vocabulary, so a class whose
    every box was dropped still counts as present (with 0 train boxes).
    """
    found: list[Anomaly] = []
    train = shape.get("train", _empty())
    vocabulary = sorted(set(labels) | {c for d in shape.values() for c in d["by_class"]})
    for name in vocabulary:
        count = train["by_class"].get(name, 0)
        if count < options.min_box_count:
            found.append(
                Anomaly(
                    MIN_BOX_COUNT,
                    options.severity(MIN_BOX_COUNT),
                    f"class {name!r} has {count} train boxes (minimum {options.min_box_count}) on "
                    f"{train['images_by_class'].get(name, 0)} images",
                    split="train",
                    feature=CLASS_FEATURE,
                )
            )
    present = {name: n for name, n in train["by_class"].items() if n > 0}
    if len(present) > 1:
        largest = max(present, key=lambda k: (present[k], k))
        smallest = min(present, key=lambda k: (present[k], k))
        ratio = present[largest] / present[smallest]
        if ratio > options.max_box_imbalance:
            found.append(
                Anomaly(
                    BOX_CLASS_IMBALANCE,
                    options.severity(BOX_CLASS_IMBALANCE),
                    f"class {largest!r} has {ratio:.1f}x the boxes of {smallest!r} in train "
                    f"({present[largest]} against {present[smallest]}; limit {options.max_box_imbalance:g}x)",
                    split="train",
                    feature=CLASS_FEATURE,
                )
            )
    for split, d in shape.items():
        if split != "train":
            unseen = sorted(set(d["by_class"]) - set(present))
            if unseen:
                found.append(
                    Anomaly(
                        LABEL_NOT_IN_TRAIN,
                        options.severity(LABEL_NOT_IN_TRAIN),
                        f"class(es) {', '.join(map(repr, unseen))} have boxes in {split} but none in train",
                        split=split,
                        feature=CLASS_FEATURE,
                    )
                )
        if d["crowded_images"]:
            examples = "; ".join(f"{path} ({n})" for path, n in d["crowded"][:3])
            found.append(
                Anomaly(
                    BOXES_PER_IMAGE,
                    options.severity(BOXES_PER_IMAGE),
                    f"{d['crowded_images']} {split} image(s) have more than {options.max_boxes_per_image} "
                    f"boxes (most {d['max_per_image']}): {examples}",
                    split=split,
                    feature=spec.BOX_COUNT,
                )
            )
        if d["images"] and d["negatives"] / d["images"] > options.max_negative_share:
            found.append(
                Anomaly(
                    NEGATIVE_SHARE,
                    options.severity(NEGATIVE_SHARE),
                    f"{d['negatives']} of {d['images']} {split} images have no boxes "
                    f"({d['negatives'] / d['images']:.0%}, limit {options.max_negative_share:.0%})",
                    split=split,
                    feature=spec.BOX_COUNT,
                )
            )
    for split, d in shape.items():
        if split == "train":
            continue
        for row in compare_shapes(d, train, options.box_skew, BOX_SPLIT_SKEW):
            if row["drifted"]:
                found.append(
                    Anomaly(
                        BOX_SPLIT_SKEW,
                        options.severity(BOX_SPLIT_SKEW),
                        f"{row['feature']} of {split} differs from train's: Jensen-Shannon divergence "
                        f"{row['value']:.3f} > {row['threshold']:g}",
                        split=split,
                        feature=row["feature"],
                    )
                )
    return found


# The distributions compared across splits and spans (a name for the report, and its key).
COMPARED = (("box size (S/M/L)", "sizes"), ("box aspect ratio", "aspect"), ("boxes per image", "per_image"))


def compare_shapes(
    current: dict[str, Any], baseline: dict[str, Any], threshold: float, check: str = BOX_DRIFT
) -> list[dict[str, Any]]:
    """Jensen-Shannon divergence of each COMPARED distribution; rows as compare_spans' drift rows.

    Box distributions need MIN_COMPARED_BOXES boxes on each side (boxes per image: images).
    """
    rows = []
    for feature, key in COMPARED:
        unit = "images" if key == "per_image" else "boxes"
        if min(current[unit], baseline[unit]) < MIN_COMPARED_BOXES:
            continue
        value = js_divergence(*_aligned(current[key], baseline[key]))
        rows.append(
            {
                "feature": feature,
                "check": check,
                "comparator": "Jensen-Shannon",
                "value": value,
                "threshold": threshold,
                "drifted": value > threshold,
            }
        )
    return rows


def compare_box_spans(
    current: dict[str, Any], baseline: dict[str, Any], options: CheckOptions
) -> tuple[list[dict[str, Any]], list[Anomaly]]:
    """One split's boxes against the previous span's: the class mix (L-infinity, ``drift``, at
    ``options.categorical_drift``, as label drift) and sizes, aspect ratios and boxes per image
    (Jensen-Shannon, ``box_drift``, at ``options.box_drift``)."""
    rows = []
    if min(current["boxes"], baseline["boxes"]) >= MIN_COMPARED_BOXES:
        value = linf_distance(current["by_class"], baseline["by_class"])
        rows.append(
            {
                "feature": CLASS_FEATURE,
                "check": DRIFT,
                "comparator": "L-infinity",
                "value": value,
                "threshold": options.categorical_drift,
                "drifted": value > options.categorical_drift,
            }
        )
    rows += compare_shapes(current, baseline, options.box_drift)
    found = [
        Anomaly(
            r["check"],
            options.severity(r["check"]),
            f"{r['feature']} drifted from the previous span: "
            f"{'L-infinity distance' if r['comparator'] == 'L-infinity' else 'Jensen-Shannon divergence'} "
            f"{r['value']:.3f} > {r['threshold']:g}",
            split=options.drift_split,
            feature=r["feature"],
        )
        for r in rows
        if r["drifted"]
    ]
    return rows, found


def _aligned(p: dict[str, int] | list[int], q: dict[str, int] | list[int]) -> tuple[list[float], list[float]]:
    """Two histograms as lists, bin for bin: lists as they are, counts by name on the same names
    (a stored boxes.json has its keys sorted, not in SIZES order)."""
    if isinstance(p, dict):
        names = sorted(set(p) | set(q))
        return [float(p.get(n, 0)) for n in names], [float(q.get(n, 0)) for n in names]
    return [float(v) for v in p], [float(v) for v in q]


def js_divergence(p: list[float], q: list[float]) -> float:
    """Jensen-Shannon divergence (base 2: 0 for equal distributions, 1 for disjoint) of two histograms."""
    sp, sq = sum(p), sum(q)
    if not sp or not sq:
        return 0.0
    p, q = [x / sp for x in p], [x / sq for x in q]
    m = [(a + b) / 2 for a, b in zip(p, q)]

    def kl(a: list[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, m) if x > 0)

    return max(0.0, (kl(p) + kl(q)) / 2)


def linf_distance(p: dict[str, int], q: dict[str, int]) -> float:
    """Largest difference of one class's share between two class counts (TFDV's L-infinity)."""
    sp, sq = sum(p.values()), sum(q.values())
    if not sp or not sq:
        return 0.0
    return max(abs(p.get(k, 0) / sp - q.get(k, 0) / sq) for k in set(p) | set(q))


def box_issues(catalog: Iterable[dict[str, Any]], examples: int = 3) -> dict[str, Any]:
    """The catalog's box issues: count per reason, and the first ``examples`` images of each."""
    counts: collections.Counter = collections.Counter()
    shown: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(catalog, key=lambda r: r[spec.PATH]):
        if row[spec.STATUS] != spec.INGESTED:
            continue
        for issue in row.get(spec.BOX_ISSUES) or []:
            reason, _, detail = issue.partition(":")
            counts[reason] += 1
            listed = shown.setdefault(reason, [])
            if len(listed) < examples and not any(e["path"] == row[spec.PATH] for e in listed):
                listed.append({"path": row[spec.PATH], "split": row[spec.SPLIT], "detail": detail.strip()})
    return {"counts": dict(counts.most_common()), "examples": shown}
