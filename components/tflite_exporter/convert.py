"""SavedModel -> TFLite variants with metadata, and their parity check against the float model.

The edge model's input is the resized image the device's camera pipeline produces: pixel values
0-255 of shape [1, size, size, channels] (uint8 for ``int8``, float32 otherwise). Scaling is inside
the network (batch norm + scale), so the metadata's normalisation is mean 0, std 1.

    >>> variants = convert_all("serving_model", ["int8"], representative_images)
    >>> report = evaluate_variant(variants["int8"], eval_images, eval_labels, reference_top1)
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from typing import Iterable

import numpy as np
import tensorflow as tf

from components.image_model import export
from components.image_model.model import ModelParams, build_model

MODES = ("float32", "dynamic_range", "float16", "int8")


def float_input_model(serving_dir: str) -> tf.keras.Model:
    """The trained network rebuilt with a float32 input (same layers, same weights).

    The exported model takes uint8; a float input lets the converter quantise the input tensor
    itself (int8 with uint8 I/O) instead of keeping a float cast at the front. The weights are
    restored from the SavedModel's variables (``export.restore_network``).
    """
    params = ModelParams(**{**export.read_params(serving_dir), "input_dtype": "float32"})
    return export.restore_network(build_model(params), serving_dir)


def convert(model: tf.keras.Model, mode: str, representative: np.ndarray | None = None) -> bytes:
    """One TFLite variant. ``int8`` needs representative uint8 images [N, size, size, channels]."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    converter = _converter(model)
    if mode == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None or not len(representative):
            raise ValueError("int8 conversion needs representative images")

        def samples():
            for image in representative:
                yield [image[np.newaxis].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def _converter(model: tf.keras.Model) -> tf.lite.TFLiteConverter:
    """A converter for the network's inference call as one signature (``serving_default``: input
    and output named as the model's), with batch size 1 as ``from_keras_model`` gives.

    The Keras model is only closed over (its variables are tracked, the model itself is not):
    ``from_keras_model`` saves the tracked model, tracing every layer's call again, 8-10 s of a
    small classifier's conversion against about 1.5 s here; the converted model is the same.
    """
    input_name, output_name = model.input_names[0], model.output_names[0]
    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32, name=input_name)

    @tf.function(input_signature=[spec])
    def serve(image):
        return {output_name: model(image, training=False)}

    module = tf.Module()
    module.variables_ = list(model.variables)
    module.serve = serve
    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module)


def add_metadata(
    tflite_model: bytes,
    labels: list[str],
    *,
    name: str,
    version: str,
    description: str,
    author: str,
    detector: bool = False,
) -> bytes:
    """Packs name, version, normalisation (mean 0, std 1 on 0-255 pixels) and labels into the model.

    A classifier's labels go on its probabilities; a detector's (``detector=True``: tflite-support's
    object detector writer, outputs named location, category, score and number of detections, as
    the Task Library matches them) on its category output.
    """
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as schema
    from tensorflow_lite_support.metadata.python.metadata_writers import (
        image_classifier,
        metadata_info,
        object_detector,
        writer_utils,
    )

    buffer = bytearray(tflite_model)
    with tempfile.TemporaryDirectory() as tmp:
        label_path = os.path.join(tmp, "labels.txt")
        with open(label_path, "w") as f:
            f.writelines(f"{label}\n" for label in labels)
        common = dict(
            general_md=metadata_info.GeneralMd(
                name=name, version=version, description=description, author=author
            ),
            input_md=metadata_info.InputImageTensorMd(
                name="image",
                description="Resized camera image, pixel values 0-255.",
                norm_mean=[0.0],
                norm_std=[1.0],
                color_space_type=schema.ColorSpaceType.RGB,
                tensor_type=writer_utils.get_input_tensor_types(buffer)[0],
            ),
        )
        if detector:
            writer = object_detector.MetadataWriter.create_from_metadata_info(
                buffer,
                **common,
                output_category_md=metadata_info.CategoryTensorMd(
                    name="category",
                    description="The categories of the detected boxes (0-based line of the label file).",
                    label_files=[metadata_info.LabelFileMd(file_path=label_path)],
                ),
            )
        else:
            writer = image_classifier.MetadataWriter.create_from_metadata_info(
                buffer,
                **common,
                output_md=metadata_info.ClassificationTensorMd(
                    name="probabilities",
                    description="Probability of each label.",
                    label_files=[metadata_info.LabelFileMd(label_path)],
                    tensor_type=writer_utils.get_output_tensor_types(buffer)[0],
                ),
            )
        return bytes(writer.populate())


def stamp_version(tflite_model: bytes, version: str) -> bytes:
    """The same model with its metadata's version set to ``version``; all else (labels too) kept.

    The EdgePusher stamps the version a model is pushed as, which is unknown when it is exported.
    """
    import flatbuffers
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as schema
    from tensorflow_lite_support.metadata.python import metadata

    buffer = metadata.get_metadata_buffer(bytearray(tflite_model))
    if buffer is None:
        raise ValueError("the TFLite model has no metadata to stamp a version into")
    model_metadata = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAsModelMetadata(buffer, 0))
    model_metadata.version = version
    builder = flatbuffers.Builder(0)
    builder.Finish(model_metadata.Pack(builder), metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    # The packed label file stays: the populator copies the archived files it already holds.
    populator = metadata.MetadataPopulator.with_model_buffer(bytearray(tflite_model))
    populator.load_metadata_buffer(builder.Output())
    populator.populate()
    return bytes(populator.get_model_buffer())


def read_metadata(tflite_model: bytes) -> tuple[dict, list[str]]:
    """(metadata JSON as a dict, packed label list) of a TFLite model, via MetadataDisplayer.

    The label file holds one label per line; a label may contain spaces.
    """
    import json

    from tensorflow_lite_support.metadata.python import metadata

    displayer = metadata.MetadataDisplayer.with_model_buffer(tflite_model)
    names = displayer.get_packed_associated_file_list()
    text = displayer.get_associated_file_buffer(names[0]).decode() if names else ""
    labels = [line for line in text.split("\n") if line]
    return json.loads(displayer.get_metadata_json()), labels


class Classifier:
    """A TFLite model behind one call: uint8 image [size, size, C] -> class probabilities."""

    def __init__(self, tflite_model: bytes, threads: int = 1):
        self.interpreter = tf.lite.Interpreter(model_content=tflite_model, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def image_size(self) -> int:
        return int(self.input["shape"][1])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], image[np.newaxis].astype(self.input["dtype"]))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])[0]
        if self.output["dtype"] == np.uint8:
            scale, zero_point = self.output["quantization"]
            out = (out.astype(np.float32) - zero_point) * scale
        return out


@dataclasses.dataclass
class VariantReport:
    mode: str
    size_bytes: int
    accuracy: float
    agreement: float  # Top-1 agreement with the float SavedModel.
    latency_ms_median: float
    latency_ms_p90: float
    blessed: bool = False
    reason: str = ""


def evaluate_variant(
    mode: str,
    tflite_model: bytes,
    images: np.ndarray,
    labels: np.ndarray,
    reference_top1: np.ndarray,
    latency_runs: int = 200,
) -> VariantReport:
    classifier = Classifier(tflite_model, threads=1)
    top1 = np.array([int(np.argmax(classifier(image))) for image in images])
    timings = []
    for i in range(latency_runs):
        image = images[i % len(images)]
        started = time.perf_counter()
        classifier(image)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return VariantReport(
        mode=mode,
        size_bytes=len(tflite_model),
        accuracy=float(np.mean(top1 == labels)),
        agreement=float(np.mean(top1 == reference_top1)),
        latency_ms_median=statistics.median(timings),
        latency_ms_p90=timings[int(0.9 * (len(timings) - 1))],
    )


def gate(
    report: VariantReport, reference_accuracy: float, max_drop: float, min_agreement: float
) -> VariantReport:
    """Blesses a variant whose accuracy drop and top-1 agreement are within the limits."""
    drop = reference_accuracy - report.accuracy
    problems = []
    if drop > max_drop + 1e-9:
        problems.append(f"accuracy drop {drop:.4f} > {max_drop:.4f}")
    if report.agreement < min_agreement - 1e-9:
        problems.append(f"agreement {report.agreement:.4f} < {min_agreement:.4f}")
    report.blessed = not problems
    report.reason = "; ".join(problems) or "within limits"
    return report


def representative_sample(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Up to ``count`` images covering every class (round-robin over classes)."""
    rng = np.random.default_rng(seed)
    by_class = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < min(count, len(labels)):
        for indices in by_class:
            if indices and len(chosen) < count:
                chosen.append(indices.pop())
    return images[chosen]


def load_split(patterns: Iterable[str], image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """All images of a split decoded and resized exactly as training does, with labels."""
    from components.image_model import data

    batches = list(
        data.make_dataset(
            list(patterns),
            image_size=image_size,
            channels=channels,
            batch_size=256,
            training=False,
            cache=False,
        )
    )
    return (np.concatenate([x.numpy() for x, _ in batches]), np.concatenate([y.numpy() for _, y in batches]))
