"""The exporter for a detector: float32/int8 TFLite with NMS in the runtime, gated on COCO mAP@0.5.

A SavedModel is a detector when its ``model_params.json`` holds the anchors and the box coder
(``DetectorParams.to_dict()``). Each variant is ``detector.tflite.convert_detector``'s model
(``TFLite_Detection_PostProcess``, no Flex op) with object detector metadata (labels, name,
version, author), scored with pycocotools on the eval split against the SavedModel on the same
decoded images; a variant is blessed when its mAP@0.5 is at most ``max_map_drop`` below the
SavedModel's.

    >>> parity = export_variants("trained/serving_model", "ingest/examples", "out/tflite",
    ...                          modes=["float32", "int8"], representative_count=300,
    ...                          max_map_drop=0.02, model_name="cvpipe")
    >>> parity["reference"]["map50"], [(v["mode"], v["map50"], v["blessed"]) for v in parity["variants"]]
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import time
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from components.image_example_gen import spec as example_spec
from components.image_model import export as model_export
from components.image_model.detector import evaluation, tflite
from components.image_model.detector import export as detector_export
from components.image_model.detector.network import build_detector
from components.image_model.model import decode_and_resize
from components.tflite_exporter import convert
from components.tflite_exporter.spec import (
    DEFAULT_AUTHOR,
    DEFAULT_MAX_MAP_DROP,
    DETECTION_MODES,
    LABELS_FILE,
    MODEL_FILE,
    PARITY_FILE,
    UNPUSHED_VERSION,
)

MODES = DETECTION_MODES  # detector.tflite.MODES: float32, int8 (uint8 input, float outputs).
TASK = "detection"
# DetectorParams.to_dict() writes these; a classifier's model_params.json has neither.
_DETECTOR_KEYS = ("anchors", "box_coder_scales")


def is_detector(serving_dir: str) -> bool:
    """Whether the SavedModel's ``model_params.json`` describes a detector (anchors, box coder)."""
    try:
        params = model_export.read_params(serving_dir)
    except tf.errors.NotFoundError:
        return False
    return all(key in params for key in _DETECTOR_KEYS)


def check_modes(modes: list[str]) -> list[str]:
    unsupported = [m for m in modes if m not in MODES]
    if not modes or unsupported:
        raise ValueError(
            f"a detector exports to TFLite only as {', '.join(MODES)}; unsupported modes: "
            f"{', '.join(unsupported) or '(none given)'}"
        )
    return list(modes)


def decoded_split(
    patterns: list[str], image_size: int, channels: int, *, sample: int | None = None, seed: int = 0
) -> tuple[np.ndarray, list[dict]]:
    """Records' images resized as the SavedModel resizes them (uint8 [N, size, size, channels]),
    and their ground truth in ``evaluation.coco_map``'s form.

    ``sample``: at most that many records, drawn uniformly (reservoir sampling on the serialized
    records, so only the chosen ones are decoded).
    """
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP") if files else []
    if sample is not None:
        rng, chosen = random.Random(seed), []
        for seen, record in enumerate(records):
            if len(chosen) < sample:
                chosen.append(record)
            elif (j := rng.randrange(seen + 1)) < sample:
                chosen[j] = record
        records = chosen
    features = {**evaluation.GROUND_TRUTH_FEATURES, example_spec.IMAGE: tf.io.FixedLenFeature([], tf.string)}
    images, truth = [], []
    for record in records:
        parsed = tf.io.parse_single_example(record, features)
        images.append(decode_and_resize(parsed[example_spec.IMAGE], image_size, channels).numpy())
        corners = [tf.sparse.to_dense(parsed[key]).numpy() for key in evaluation.BOX_KEYS]
        truth.append(
            {
                "width": int(parsed[example_spec.WIDTH]),
                "height": int(parsed[example_spec.HEIGHT]),
                "boxes": np.stack(corners, axis=-1).reshape(-1, 4).tolist(),
                "classes": tf.sparse.to_dense(parsed[example_spec.OBJECT_LABEL]).numpy().tolist(),
            }
        )
    empty = np.zeros([0, image_size, image_size, channels], np.uint8)
    return (np.stack(images) if images else empty), truth


def reference_detections(
    serving_dir: str, images: np.ndarray, *, trained: tf.keras.Model | None = None, batch_size: int = 32
) -> list[dict]:
    """The SavedModel's detections on decoded images: its network and its own post-processing
    (``detector.export.postprocess``, the function both of its signatures end in)."""
    if trained is None:
        trained = tf.keras.models.load_model(serving_dir, compile=False)
    params = detector_export.read_params(serving_dir)
    labels = tf.constant(model_export.read_labels(serving_dir))
    anchors = params.anchors()
    found = []
    for start in range(0, len(images), batch_size):
        raw = trained(tf.constant(images[start : start + batch_size]), training=False)
        out = {k: v.numpy() for k, v in detector_export.postprocess(raw, anchors, params, labels).items()}
        for i in range(len(raw)):
            k = int(out["num_detections"][i])
            found.append(
                {
                    "boxes": out["detection_boxes"][i, :k].tolist(),
                    "scores": out["detection_scores"][i, :k].tolist(),
                    "classes": out["detection_classes"][i, :k].tolist(),
                }
            )
    return found


def tflite_detections(tflite_model: bytes, images: np.ndarray) -> tuple[list[dict], list[float]]:
    """A TFLite detector's detections on decoded images, and each call's time in ms (1 thread)."""
    interpreter = tf.lite.Interpreter(model_content=tflite_model, num_threads=1)
    found, timings = [], []
    for image in images:
        started = time.perf_counter()
        out = tflite.detect(interpreter, image)
        timings.append((time.perf_counter() - started) * 1000)
        found.append(
            {
                "boxes": out["detection_boxes"].tolist(),
                "scores": out["detection_scores"].tolist(),
                "classes": out["detection_classes"].tolist(),
            }
        )
    return found, timings


@dataclasses.dataclass
class DetectionVariantReport:
    mode: str
    size_bytes: int
    map50: float | None  # COCO mAP@0.5 on the eval split (None: nothing to score against).
    map: float | None  # COCO mAP@[.5:.95].
    map50_drop: float | None = None  # The SavedModel's mAP@0.5 minus this variant's.
    latency_ms_median: float | None = None
    latency_ms_p90: float | None = None
    blessed: bool = False
    reason: str = ""


def gate(
    report: DetectionVariantReport, reference_map50: float | None, max_map_drop: float
) -> DetectionVariantReport:
    """Blesses a variant whose mAP@0.5 is at most ``max_map_drop`` below the SavedModel's."""
    if reference_map50 is None or report.map50 is None:
        report.blessed, report.map50_drop = False, None
        report.reason = report.reason or "no mAP to compare: the eval split has no boxes"
        return report
    report.map50_drop = reference_map50 - report.map50
    report.blessed = report.map50_drop <= max_map_drop + 1e-9
    report.reason = (
        "within limits"
        if report.blessed
        else f"mAP@0.5 drop {report.map50_drop:.4f} > {max_map_drop:.4f} "
        f"({report.map50:.4f} against the SavedModel's {reference_map50:.4f})"
    )
    return report


def _no_boxes_reason(truth: list[dict]) -> str:
    if not truth:
        return "the eval split has no examples: no mAP to compare"
    return f"the eval split's {len(truth)} examples have no boxes: no mAP to compare"


def check_parity(
    serving_dir: str,
    models: dict[str, bytes],
    eval_patterns: list[str],
    *,
    max_map_drop: float,
    trained: tf.keras.Model | None = None,
) -> dict[str, Any]:
    """Every TFLite variant in ``models`` scored against the SavedModel on ``eval_patterns``.

    Returns parity.json's content: the reference's and each variant's COCO mAP@0.5 and
    mAP@[.5:.95], the drop, size, latency, verdict and reason. An eval split without boxes blesses
    nothing and says so (``reason``).
    """
    params = detector_export.read_params(serving_dir)
    num_classes = len(model_export.read_labels(serving_dir))
    images, truth = decoded_split(eval_patterns, params.image_size, params.channels)
    boxes = sum(len(t["boxes"]) for t in truth)
    reference: dict[str, Any] = {"map50": None, "map": None, "eval_examples": len(truth), "eval_boxes": boxes}
    reason = _no_boxes_reason(truth) if not boxes else ""
    if boxes:
        scored = evaluation.coco_map(
            truth, reference_detections(serving_dir, images, trained=trained), num_classes
        )
        reference.update(map50=scored["map50"], map=scored["map"])
    reports = []
    for mode, model in models.items():
        report = DetectionVariantReport(mode, len(model), None, None, reason=reason)
        if boxes:
            found, timings = tflite_detections(model, images)
            scored = evaluation.coco_map(truth, found, num_classes)
            report.map50, report.map = scored["map50"], scored["map"]
            timings.sort()
            report.latency_ms_median = statistics.median(timings)
            report.latency_ms_p90 = timings[int(0.9 * (len(timings) - 1))]
        reports.append(gate(report, reference["map50"], max_map_drop))
        logging.info("TFLiteExporter (detection): %s", report)
    parity = {
        "task": TASK,
        "reference": reference,
        "limits": {"max_map_drop": max_map_drop},
        "image_size": params.image_size,
        "channels": params.channels,
        "variants": [dataclasses.asdict(r) for r in reports],
        "blessed": bool(reports) and all(r.blessed for r in reports),
    }
    if reason:
        parity["reason"] = reason
    return parity


def representative_images(
    serving_dir: str, train_patterns: list[str], count: int, *, seed: int = 0
) -> np.ndarray:
    """Up to ``count`` train images drawn uniformly, decoded and resized as the SavedModel does."""
    params = detector_export.read_params(serving_dir)
    images, _ = decoded_split(train_patterns, params.image_size, params.channels, sample=count, seed=seed)
    return images


def convert_variants(
    serving_dir: str,
    modes: list[str],
    representative: np.ndarray | None,
    *,
    trained: tf.keras.Model | None = None,
) -> dict[str, bytes]:
    """Each mode's TFLite model (no metadata yet); int8 is calibrated on ``representative``."""
    modes = check_modes(modes)
    if "int8" in modes and (representative is None or not len(representative)):
        raise ValueError("int8 needs representative images: the train split has no examples")
    if trained is None:
        trained = tf.keras.models.load_model(serving_dir, compile=False)
    return {
        mode: tflite.convert_detector(
            serving_dir, mode, representative if mode == "int8" else None, trained=trained
        )
        for mode in modes
    }


def export_variants(
    serving_dir: str,
    examples_uri: str,
    out_dir: str,
    *,
    modes: list[str],
    representative_count: int,
    max_map_drop: float = DEFAULT_MAX_MAP_DROP,
    model_name: str,
    author: str = DEFAULT_AUTHOR,
    version: str = UNPUSHED_VERSION,
) -> dict[str, Any]:
    """Writes model_<mode>.tflite, labels.txt and parity.json to ``out_dir``; returns the parity.

    Representative images come from ``Split-train``, the gate's figures from ``Split-eval``.
    Every path may be a URI (gs://...).
    """
    modes = check_modes(modes)
    params = detector_export.read_params(serving_dir)
    labels = model_export.read_labels(serving_dir)
    # Once, from the SavedModel's variables (loading it as Keras took 2-3 s).
    trained = model_export.restore_network(build_detector(params), serving_dir)
    representative = None
    if "int8" in modes:
        train = [os.path.join(examples_uri, "Split-train", "*")]
        representative = representative_images(serving_dir, train, representative_count)
    models = convert_variants(serving_dir, modes, representative, trained=trained)
    size, channels = params.image_size, params.channels
    for mode in modes:
        models[mode] = convert.add_metadata(
            models[mode],
            labels,
            name=f"{model_name} ({mode})",
            version=version,
            author=author,
            description=f"Object detector over {len(labels)} labels; input {size}x{size}x{channels} "
            f"pixels 0-255 ({'uint8' if mode == 'int8' else 'float32'}); outputs boxes (ymin, xmin, "
            "ymax, xmax in 0-1), classes (0-based line of the label file), scores and their count.",
            detector=True,
        )
    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, LABELS_FILE), "w") as f:
        f.write("".join(f"{label}\n" for label in labels))
    for mode, model in models.items():
        with tf.io.gfile.GFile(os.path.join(out_dir, MODEL_FILE.format(mode=mode)), "wb") as f:
            f.write(model)
    parity = check_parity(
        serving_dir,
        models,
        [os.path.join(examples_uri, "Split-eval", "*")],
        max_map_drop=max_map_drop,
        trained=trained,
    )
    parity["representative_count"] = 0 if representative is None else int(len(representative))
    with tf.io.gfile.GFile(os.path.join(out_dir, PARITY_FILE), "w") as f:
        f.write(json.dumps(parity, indent=2))
    return parity
