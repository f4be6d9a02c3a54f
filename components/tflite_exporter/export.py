"""The exporter's workflow: a SavedModel and its examples in; TFLite variants and parity.json out.

A detector's SavedModel (``detection.is_detector``) goes to ``detection.export_variants`` (float32
and int8 only, gated on COCO mAP@0.5 with ``max_map_drop``); a classifier's is handled here (gated
on accuracy and top-1 agreement).

>>> parity = export_variants("trained/serving_model", "ingest/examples", "out/tflite",
...                          modes=["float32", "int8"], representative_count=300,
...                          max_accuracy_drop=0.01, min_agreement=0.98, model_name="cvpipe")
>>> parity["blessed"]
True
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from components.image_model import export as model_export
from components.tflite_exporter import convert, detection
from components.tflite_exporter.spec import (
    DEFAULT_AUTHOR,
    DEFAULT_MAX_MAP_DROP,
    LABELS_FILE,
    MODEL_FILE,
    PARITY_FILE,
    UNPUSHED_VERSION,
)


def export_variants(
    serving_dir: str,
    examples_uri: str,
    out_dir: str,
    *,
    modes: list[str],
    representative_count: int,
    max_accuracy_drop: float,
    min_agreement: float,
    model_name: str,
    author: str = DEFAULT_AUTHOR,
    version: str = UNPUSHED_VERSION,
    max_map_drop: float = DEFAULT_MAX_MAP_DROP,
) -> dict[str, Any]:
    """Writes model_<mode>.tflite, labels.txt and parity.json to ``out_dir``; returns the parity.

    Each model's metadata names ``author`` and ``version``; the EdgePusher replaces the version
    with the one it pushes the model as. Every path may be a URI (gs://...): files are read and
    written through tf.io.gfile. ``max_accuracy_drop`` and ``min_agreement`` gate a classifier,
    ``max_map_drop`` a detector.
    """
    if detection.is_detector(serving_dir):
        return detection.export_variants(
            serving_dir,
            examples_uri,
            out_dir,
            modes=modes,
            representative_count=representative_count,
            max_map_drop=max_map_drop,
            model_name=model_name,
            author=author,
            version=version,
        )
    params = model_export.read_params(serving_dir)
    labels = model_export.read_labels(serving_dir)
    size, channels = params["image_size"], params["channels"]
    train_images, train_labels = convert.load_split(
        [os.path.join(examples_uri, "Split-train", "*")], size, channels
    )
    eval_images, eval_labels = convert.load_split(
        [os.path.join(examples_uri, "Split-eval", "*")], size, channels
    )

    # The SavedModel's network and weights, with a float input: the reference predictions (the
    # uint8 -> float cast at the SavedModel's front is exact) and what is converted.
    network = convert.float_input_model(serving_dir)
    reference = network.predict(eval_images.astype(np.float32), batch_size=256, verbose=0)
    reference_top1 = np.argmax(reference, axis=1)
    reference_accuracy = float(np.mean(reference_top1 == eval_labels))
    representative = convert.representative_sample(train_images, train_labels, representative_count)

    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, LABELS_FILE), "w") as f:
        f.write("".join(f"{label}\n" for label in labels))
    reports = []
    for mode in modes:
        model = convert.convert(network, mode, representative)
        model = convert.add_metadata(
            model,
            labels,
            name=f"{model_name} ({mode})",
            version=version,
            author=author,
            description=f"Image classifier over {len(labels)} labels; input {size}x{size}x{channels} "
            f"pixels 0-255 ({'uint8' if mode == 'int8' else 'float32'}).",
        )
        with tf.io.gfile.GFile(os.path.join(out_dir, MODEL_FILE.format(mode=mode)), "wb") as f:
            f.write(model)
        report = convert.evaluate_variant(mode, model, eval_images, eval_labels, reference_top1)
        reports.append(convert.gate(report, reference_accuracy, max_accuracy_drop, min_agreement))
        logging.info("TFLiteExporter: %s", report)
    parity = {
        "task": "classification",
        "reference": {"accuracy": reference_accuracy, "eval_examples": int(len(eval_labels))},
        "limits": {"max_accuracy_drop": max_accuracy_drop, "min_agreement": min_agreement},
        "image_size": size,
        "channels": channels,
        "representative_count": int(len(representative)),
        "variants": [dataclasses.asdict(r) for r in reports],
        "blessed": all(r.blessed for r in reports),
    }
    with tf.io.gfile.GFile(os.path.join(out_dir, PARITY_FILE), "w") as f:
        f.write(json.dumps(parity, indent=2))
    return parity


def variant_summary(variant: dict[str, Any]) -> str:
    """One line for a parity.json variant, a classifier's or a detector's (for CLI summaries)."""
    if "map50" in variant:
        figures = (
            f"mAP@0.5 {variant['map50']:.4f} (drop {variant['map50_drop']:+.4f}), mAP {variant['map']:.4f}"
            if variant["map50"] is not None
            else "mAP not measured"
        )
    else:
        figures = f"accuracy {variant['accuracy']:.4f}, agreement {variant['agreement']:.3f}"
    latency = variant.get("latency_ms_median")
    timing = f", {latency:.2f} ms median" if latency is not None else ""
    verdict = "blessed" if variant["blessed"] else "NOT blessed"
    return (
        f"TFLite {variant['mode']}: {figures}, {variant['size_bytes']} bytes{timing}: "
        f"{verdict} ({variant['reason']})"
    )
