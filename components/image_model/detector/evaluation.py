"""COCO mAP of a detection SavedModel on TFRecords, with pycocotools' COCOeval (the reference).

metrics = evaluate_saved_model("serving/1", ["out/examples/Split-test/*.gz"])
metrics["map"], metrics["map50"]  # mAP@[.5:.95], mAP@0.5
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import tensorflow as tf

from components.image_example_gen import spec
from components.image_model.data import list_files
from components.image_model.detector.data import BOX_KEYS
from components.image_model.export import EXAMPLES_SIGNATURE

GROUND_TRUTH_FEATURES = {
    spec.WIDTH: tf.io.FixedLenFeature([], tf.int64),
    spec.HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    **{key: tf.io.VarLenFeature(tf.float32) for key in BOX_KEYS},
    spec.OBJECT_LABEL: tf.io.VarLenFeature(tf.int64),
}


def coco_map(ground_truth: list[dict], detections: list[dict], num_classes: int) -> dict[str, float]:
    """mAP@[.5:.95] and mAP@0.5 (COCOeval's first two stats).

    ``ground_truth``: per image ``{"width", "height", "boxes": [[ymin, xmin, ymax, xmax]...]
    normalised, "classes": [...]}``; ``detections``: per image (same order) ``{"boxes", "scores",
    "classes"}``. Classes are 0-based.
    """
    images, annotations, results = _coco_records(ground_truth, detections)
    if not annotations:
        raise ValueError("no ground-truth boxes to evaluate against")
    if not results:
        return {"map": 0.0, "map50": 0.0, "images": len(images), "boxes": len(annotations)}
    stats = _evaluated(images, annotations, results, num_classes).stats
    return {
        "map": float(stats[0]),
        "map50": float(stats[1]),
        "images": len(images),
        "boxes": len(annotations),
    }


def coco_evaluation(ground_truth: list[dict], detections: list[dict], num_classes: int):
    """pycocotools' COCOeval of ``detections`` (``coco_map``'s arguments), evaluated, accumulated and
    summarized: ``.eval["precision"]`` [T, R, K, A, M], ``.eval["recall"]`` [T, K, A, M], ``.stats``.

    Category ``k + 1`` is class ``k``. Without any detection every class with boxes scores 0.
    """
    images, annotations, results = _coco_records(ground_truth, detections)
    if not annotations:
        raise ValueError("no ground-truth boxes to evaluate against")
    # pycocotools cannot load an empty result list. One zero-size box at score 0 matches nothing, so
    # precision and recall come out as with no detection: 0 where there are boxes, -1 elsewhere.
    nothing = {"image_id": images[0]["id"], "category_id": 1, "bbox": [0.0, 0.0, 0.0, 0.0], "score": 0.0}
    return _evaluated(images, annotations, results or [nothing], num_classes)


def _coco_records(ground_truth: list[dict], detections: list[dict]) -> tuple[list, list, list]:
    """COCO's images, annotations (pixel xywh) and results of ``coco_map``'s arguments."""

    def to_xywh(box, width, height):
        ymin, xmin, ymax, xmax = box
        return [xmin * width, ymin * height, (xmax - xmin) * width, (ymax - ymin) * height]

    images, annotations, results = [], [], []
    for image_id, (truth, found) in enumerate(zip(ground_truth, detections), start=1):
        width, height = truth["width"], truth["height"]
        images.append({"id": image_id, "width": width, "height": height})
        for box, cls in zip(truth["boxes"], truth["classes"]):
            xywh = to_xywh(box, width, height)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cls) + 1,
                    "bbox": xywh,
                    "area": xywh[2] * xywh[3],
                    "iscrowd": 0,
                }
            )
        for box, score, cls in zip(found["boxes"], found["scores"], found["classes"]):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(cls) + 1,
                    "bbox": to_xywh(box, width, height),
                    "score": float(score),
                }
            )
    return images, annotations, results


def _evaluated(images: list, annotations: list, results: list, num_classes: int):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # COCO's loaders and summarize() print.
        truth = COCO()
        truth.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": str(i)} for i in range(num_classes)],
        }
        truth.createIndex()
        evaluator = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def evaluate_saved_model(export_dir: str, patterns: list[str], *, batch_size: int = 64) -> dict[str, float]:
    """Runs the SavedModel's ``serving_examples`` over every record of ``patterns``; COCO mAP."""
    from components.image_model.export import read_labels

    model = tf.saved_model.load(export_dir)
    serve = model.signatures[EXAMPLES_SIGNATURE]
    num_classes = len(read_labels(export_dir))
    records = tf.data.TFRecordDataset(list_files(patterns), compression_type="GZIP").batch(batch_size)
    ground_truth, detections = [], []
    for batch in records:
        outputs = {k: v.numpy() for k, v in serve(examples=batch).items()}
        parsed = tf.io.parse_example(batch, GROUND_TRUTH_FEATURES)
        dense = {
            k: tf.sparse.to_dense(v).numpy() if isinstance(v, tf.SparseTensor) else v.numpy()
            for k, v in parsed.items()
        }
        rows = parsed[spec.OBJECT_LABEL].indices.numpy()[:, 0]
        lengths = np.bincount(rows, minlength=int(tf.shape(batch)[0]))
        for i in range(len(lengths)):
            n = int(lengths[i])
            corners = np.stack([dense[key][i, :n] for key in BOX_KEYS], axis=-1)
            ground_truth.append(
                {
                    "width": int(dense[spec.WIDTH][i]),
                    "height": int(dense[spec.HEIGHT][i]),
                    "boxes": corners.tolist(),
                    "classes": dense[spec.OBJECT_LABEL][i, :n].tolist(),
                }
            )
            k = int(outputs["num_detections"][i])
            detections.append(
                {
                    "boxes": outputs["detection_boxes"][i, :k].tolist(),
                    "scores": outputs["detection_scores"][i, :k].tolist(),
                    "classes": outputs["detection_classes"][i, :k].tolist(),
                }
            )
    return coco_map(ground_truth, detections, num_classes)
