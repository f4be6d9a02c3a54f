"""What a detector's model review shows, computed from detections: numpy and pycocotools' COCOeval.

    >>> m = match_boxes([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]], [0, 1],     # true boxes (ymin, xmin,
    ...                 [[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0.6, 0.2, 0.9]],    # ymax, xmax)
    ...                 [0, 0, 1], [0.9, 0.8, 0.7])                           # and detections
    >>> m.truth, m.predicted
    (['found', 'wrong_class'], ['found', 'wrong_class', 'false'])

Matching is greedy: detections, the surest first, each take the unmatched true box of their class
they overlap most (IoU >= ``iou_threshold``): found. Then each detection left takes the unmatched
true box of another class it overlaps most: a wrong-class box. A true box still unmatched is
missed, a detection still unmatched is false. Two models are compared the same way, one model's
boxes standing for the truth.

Per-class AP is read from COCOeval's ``eval["precision"]`` [T IoU thresholds, R=101 recall points,
K classes, A areas, M max detections] at area "all" and the most detections: the mean over recall
points with precision > -1, at IoU 0.5 (T index 0) and over every IoU threshold; their mean over
the classes with boxes is COCO's mAP (``stats[1]``, ``stats[0]``).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Callable, Sequence

import numpy as np

from components.image_model.detector import evaluation
from components.model_review import spec

SIZES = ("small", "medium", "large")  # COCOeval's area ranges 1-3 (0 is every size).


@dataclasses.dataclass
class DetectionSplit:
    """One split's images in record order: path, true boxes and each model's detections."""

    split: str
    paths: list[str]
    # Per image {"width", "height", "boxes": [[ymin, xmin, ymax, xmax]] normalised, "classes"}.
    truth: list[dict]
    reference: list[dict]  # The SavedModel's detections per image: {"boxes", "scores", "classes"}.
    variants: dict[str, list[dict]]  # TFLite mode -> detections per image.


@dataclasses.dataclass
class Matched:
    truth: list[str]  # Per true box: "found", "wrong_class" or "missed".
    predicted: list[str]  # Per detection: "found", "wrong_class" or "false".

    @property
    def missed(self) -> int:
        return self.truth.count("missed")

    @property
    def false(self) -> int:
        return self.predicted.count("false")

    @property
    def wrong_class(self) -> int:
        return self.predicted.count("wrong_class")

    @property
    def errors(self) -> int:
        return self.missed + self.false + self.wrong_class


def iou(a, b) -> np.ndarray:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4] (ymin, xmin, ymax, xmax)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    top = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom - top, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_boxes(
    truth_boxes: Sequence,
    truth_classes: Sequence[int],
    boxes: Sequence,
    classes: Sequence[int],
    scores: Sequence[float],
    *,
    iou_threshold: float = spec.MATCH_IOU,
) -> Matched:
    """Each true box and each detection found, wrong-class, missed or false (the module's rules)."""
    overlap = iou(truth_boxes, boxes)
    truth_classes = [int(c) for c in truth_classes]
    classes = [int(c) for c in classes]
    truth = ["missed"] * len(truth_classes)
    predicted = ["false"] * len(classes)
    order = np.argsort(-np.asarray(scores, float), kind="stable")
    for same_class, status in ((True, "found"), (False, "wrong_class")):
        for j in order:
            if predicted[j] != "false":
                continue
            free = [
                i
                for i, c in enumerate(truth_classes)
                if truth[i] == "missed" and (c == classes[j]) == same_class and overlap[i, j] >= iou_threshold
            ]
            if free:
                best = max(free, key=lambda i: overlap[i, j])
                truth[best] = predicted[j] = status
    return Matched(truth, predicted)


def confident(found: dict, min_score: float = spec.MIN_SCORE) -> dict:
    """The detections scoring at least ``min_score``."""
    keep = [i for i, s in enumerate(found["scores"]) if s >= min_score]
    return {key: [found[key][i] for i in keep] for key in ("boxes", "scores", "classes")}


def class_ap(precision: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """Per class AP@0.5 and AP@[.5:.95] from COCOeval's ``eval["precision"]``; None for a class
    without boxes (every precision -1)."""
    p = np.asarray(precision)[:, :, :, 0, -1]  # [T, R, K]: every size, the most detections.
    at50, every = [], []
    for k in range(p.shape[2]):
        at50.append(_mean_valid(p[0, :, k]))
        every.append(_mean_valid(p[:, :, k]))
    return at50, every


def precision_at_recall(precision: np.ndarray, k: int) -> list[float | None]:
    """Class ``k``'s precision at COCO's 101 recall points (0, 0.01, ... 1) at IoU 0.5."""
    return [None if v < 0 else round(float(v), 4) for v in np.asarray(precision)[0, :, k, 0, -1]]


def size_recall(recall: np.ndarray) -> list[dict]:
    """Recall at IoU 0.5 and over [.5:.95] per COCO size, from COCOeval's ``eval["recall"]`` [T, K, A,
    M], averaged over the classes with boxes of that size (None: no box of that size)."""
    r = np.asarray(recall)[..., -1]  # [T, K, A]
    return [
        {"size": name, "recall50": _mean_valid(r[0, :, a]), "recall": _mean_valid(r[:, :, a])}
        for a, name in enumerate(SIZES, start=1)
    ]


def size_counts(truth: list[dict], area_ranges: Sequence[Sequence[float]]) -> list[int]:
    """True boxes per COCO size: pixel area within each [low, high] of ``area_ranges`` (COCOeval's
    ``params.areaRng[1:]``, both ends included as COCOeval includes them)."""
    areas = [
        (box[2] - box[0]) * t["height"] * (box[3] - box[1]) * t["width"] for t in truth for box in t["boxes"]
    ]
    return [sum(1 for a in areas if low <= a <= high) for low, high in area_ranges]


def split_scores(split: DetectionSplit, labels: list[str]) -> dict:
    """COCO AP per class, mAP, the precision-recall curves and recall per size of the SavedModel."""
    boxes = [int(c) for t in split.truth for c in t["classes"]]
    scores = {
        "split": split.split,
        "images": len(split.truth),
        "boxes": len(boxes),
        "map50": None,
        "map": None,
    }
    if not boxes:
        return {**scores, "classes": [], "sizes": []}
    evaluator = evaluation.coco_evaluation(split.truth, split.reference, len(labels))
    precision = evaluator.eval["precision"]
    at50, every = class_ap(precision)
    classes = [
        {
            "label": label,
            "boxes": boxes.count(k),
            "ap50": at50[k],
            "ap": every[k],
            "precision_at_recall": precision_at_recall(precision, k),
        }
        for k, label in enumerate(labels)
    ]
    counts = size_counts(split.truth, evaluator.params.areaRng[1:])
    return {
        **scores,
        "map50": _mean_valid([c["ap50"] for c in classes if c["ap50"] is not None]),
        "map": _mean_valid([c["ap"] for c in classes if c["ap"] is not None]),
        "classes": classes,
        "sizes": [{**r, "boxes": n} for r, n in zip(size_recall(evaluator.eval["recall"]), counts)],
    }


def worst_images(splits: list[DetectionSplit], labels: list[str]) -> tuple[list[dict], int]:
    """The images with the most missed, false and wrong-class boxes of the SavedModel's confident
    detections (at most spec.MAX_WORST_IMAGES), and how many images have any."""
    found = []
    for s in splits:
        for i, (truth, detections) in enumerate(zip(s.truth, s.reference)):
            shown = confident(detections)
            m = match_boxes(
                truth["boxes"], truth["classes"], shown["boxes"], shown["classes"], shown["scores"]
            )
            if m.errors:
                found.append(
                    {
                        "split": s.split,
                        "path": s.paths[i],
                        "index": i,
                        "missed": m.missed,
                        "false": m.false,
                        "wrong_class": m.wrong_class,
                        "truth": drawn_boxes(truth, labels),
                        "predicted": drawn_boxes(shown, labels),
                    }
                )
    found.sort(key=lambda w: -(w["missed"] + w["false"] + w["wrong_class"]))  # Stable: record order.
    return found[: spec.MAX_WORST_IMAGES], len(found)


def variant_review(mode: str, splits: list[DetectionSplit], labels: list[str], parity: dict | None) -> dict:
    """A TFLite variant against the SavedModel on the held-out images: both mAPs, the exporter's
    verdict, and the images where their confident boxes differ (the most differences first)."""
    reviewed = [s for s in splits if mode in s.variants]
    truth = [t for s in reviewed for t in s.truth]
    maps = {"map50": None, "reference_map50": None}
    if any(t["boxes"] for t in truth):
        for key, found in (
            ("map50", [d for s in reviewed for d in s.variants[mode]]),
            ("reference_map50", [d for s in reviewed for d in s.reference]),
        ):
            maps[key] = evaluation.coco_map(truth, found, len(labels))["map50"]
    differ = []
    for s in reviewed:
        for i, (reference, variant) in enumerate(zip(s.reference, s.variants[mode])):
            ref, var = confident(reference), confident(variant)
            m = match_boxes(ref["boxes"], ref["classes"], var["boxes"], var["classes"], var["scores"])
            if m.errors:
                differ.append(
                    {
                        "split": s.split,
                        "path": s.paths[i],
                        "index": i,
                        "reference_only": m.missed,
                        "variant_only": m.false,
                        "other_class": m.wrong_class,
                        "reference": drawn_boxes(ref, labels),
                        "variant": drawn_boxes(var, labels),
                    }
                )
    differ.sort(key=lambda d: -(d["reference_only"] + d["variant_only"] + d["other_class"]))
    gated = next((v for v in (parity or {}).get("variants", []) if v.get("mode") == mode), {})
    return {
        "mode": mode,
        "images": len(truth),
        **maps,
        "disagreements_total": len(differ),
        "disagreements": differ[: spec.MAX_BOX_DISAGREEMENTS],
        "parity": {
            "map50": gated.get("map50"),
            "reference_map50": ((parity or {}).get("reference") or {}).get("map50"),
            "map50_drop": gated.get("map50_drop"),
        },
        "blessed": gated.get("blessed"),
        "reason": gated.get("reason"),
    }


def drawn_boxes(found: dict, labels: list[str]) -> list[list]:
    """Boxes as the page draws them: [class name, xmin, ymin, xmax, ymax(, score)]."""
    scores = found.get("scores")
    return [
        [labels[int(c)], box[1], box[0], box[3], box[2], *([round(float(scores[i]), 3)] if scores else [])]
        for i, (box, c) in enumerate(zip(found["boxes"], found["classes"]))
    ]


def assemble_detection_review(
    splits: list[DetectionSplit],
    labels: list[str],
    *,
    thumbnails: Callable[[str, list[int]], dict[int, tuple[str, int, int]]],
    model: dict,
    variant_order: Callable[[str], tuple] = lambda mode: (mode,),
    training: dict | None = None,
    history: dict | None = None,
    parity: dict | None = None,
    tuning: dict | None = None,
    blessed: bool | None = None,
    pipeline_name: str = "cvpipe",
) -> dict:
    """review.json's dict for a detector. ``thumbnails(split, indices)`` gives {index: (data URI,
    width, height)} for the chosen images."""
    splits = [s for s in splits if s.truth]
    worst, worst_total = worst_images(splits, labels)
    edge = None
    if parity is not None or any(s.variants for s in splits):
        modes = sorted({m for s in splits for m in s.variants}, key=variant_order)
        edge = [variant_review(mode, splits, labels, parity) for mode in modes]
    chosen = worst + [d for v in edge or [] for d in v["disagreements"]]
    wanted: dict[str, set[int]] = {}
    for item in chosen:
        wanted.setdefault(item["split"], set()).add(item["index"])
    images = {split: thumbnails(split, sorted(indices)) for split, indices in wanted.items()}
    for item in chosen:
        uri, width, height = images[item["split"]].get(item.pop("index"), ("", 0, 0))
        item.update(thumbnail=uri, width=width, height=height)
    return {
        "task": spec.DETECTION_TASK,
        "pipeline_name": pipeline_name,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "labels": list(labels),
        "model": model,
        "blessed": blessed,
        "training": training,
        "history": history,
        "match": {"min_score": spec.MIN_SCORE, "iou": spec.MATCH_IOU},
        "splits": [split_scores(s, labels) for s in splits],
        "worst": worst,
        "worst_total": worst_total,
        "edge": edge,
        "tuning": tuning,
    }


def _mean_valid(values) -> float | None:
    values = np.asarray(values, float)
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None
