"""TFLiteExporter executor: convert every mode, add metadata, evaluate, gate, record."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.image_model import export
from components.tflite_exporter import convert

PARITY_FILE = "parity.json"


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
    version: str = "1",
) -> dict[str, Any]:
    """Writes model_<mode>.tflite, labels.txt and parity.json to ``out_dir``; returns the parity.

    Every path may be a URI (gs://...): files are read and written through tf.io.gfile.
    """
    import tensorflow as tf

    params = export.read_params(serving_dir)
    labels = export.read_labels(serving_dir)
    size, channels = params["image_size"], params["channels"]
    train_images, train_labels = convert.load_split(
        [os.path.join(examples_uri, "Split-train", "*")], size, channels
    )
    eval_images, eval_labels = convert.load_split(
        [os.path.join(examples_uri, "Split-eval", "*")], size, channels
    )

    reference = tf.keras.models.load_model(serving_dir, compile=False)
    reference_top1 = np.argmax(reference.predict(eval_images, batch_size=256, verbose=0), axis=1)
    reference_accuracy = float(np.mean(reference_top1 == eval_labels))
    network = convert.float_input_model(serving_dir)
    representative = convert.representative_sample(train_images, train_labels, representative_count)

    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{label}\n" for label in labels))
    reports = []
    for mode in modes:
        model = convert.convert(network, mode, representative)
        model = convert.add_metadata(
            model,
            labels,
            name=f"{model_name} ({mode})",
            version=version,
            author="cvpipe",
            description=f"Image classifier over {len(labels)} labels; input {size}x{size}x{channels} "
            f"pixels 0-255 ({'uint8' if mode == 'int8' else 'float32'}).",
        )
        with tf.io.gfile.GFile(os.path.join(out_dir, f"model_{mode}.tflite"), "wb") as f:
            f.write(model)
        report = convert.evaluate_variant(mode, model, eval_images, eval_labels, reference_top1)
        reports.append(convert.gate(report, reference_accuracy, max_accuracy_drop, min_agreement))
        logging.info("TFLiteExporter: %s", report)
    parity = {
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


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        model = artifact_utils.get_single_instance(input_dict["model"])
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        out = artifact_utils.get_single_instance(output_dict["tflite_model"])
        parity = export_variants(
            path_utils.serving_model_path(model.uri),
            examples.uri,
            out.uri,
            modes=json.loads(exec_properties["modes"]),
            representative_count=exec_properties["representative_count"],
            max_accuracy_drop=exec_properties["max_accuracy_drop"],
            min_agreement=exec_properties["min_agreement"],
            model_name=exec_properties["model_name"],
        )
        out.set_int_custom_property("blessed", int(parity["blessed"]))
        out.set_string_custom_property("source_model", model.uri)
