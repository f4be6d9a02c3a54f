"""The detector's serving SavedModel: encoded images (or tf.Examples) in, TF OD API outputs out.

Signatures (both return the same outputs):
- ``serving_default``: ``image_bytes`` [N] encoded images (TF Serving REST: ``{"b64": ...}``).
- ``serving_examples``: ``examples`` [N] serialized tf.Examples (ImageExampleGen's), for TFMA.

Outputs, as the TF Object Detection API names them: ``detection_boxes`` [N, max, 4] float32
(ymin, xmin, ymax, xmax normalised to the input image), ``detection_scores`` [N, max],
``detection_classes`` [N, max] float32 **0-based** (line of labels.txt), ``detection_labels``
[N, max] string ("" past ``num_detections``), ``num_detections`` [N] float32. Non-max suppression
is per class (``tf.image.combined_non_max_suppression``). Assets: ``labels.txt`` and
``model_params.json`` (``DetectorParams.to_dict()``: anchors, box coder scales, NMS settings).
"""

from __future__ import annotations

import tensorflow as tf

from components.image_example_gen import spec
from components.image_model import export as model_export
from components.image_model.detector import boxes
from components.image_model.detector.network import DetectorParams
from components.image_model.model import decode_and_resize

OUTPUT_KEYS = (
    "detection_boxes",
    "detection_scores",
    "detection_classes",
    "detection_labels",
    "num_detections",
)


def postprocess(raw: tf.Tensor, anchors: tf.Tensor, params: DetectorParams, labels: tf.Tensor) -> dict:
    """Raw outputs [N, A, 4 + C] -> the TF OD API's detection outputs (per-class NMS inside)."""
    decoded = tf.clip_by_value(boxes.decode(raw[..., :4], anchors), 0.0, 1.0)
    scores = tf.sigmoid(raw[..., 4:])
    nms = tf.image.combined_non_max_suppression(
        decoded[:, :, None, :],
        scores,
        max_output_size_per_class=params.max_detections,
        max_total_size=params.max_detections,
        iou_threshold=params.iou_threshold,
        score_threshold=params.score_threshold,
        clip_boxes=False,
    )
    count = nms.valid_detections
    valid = tf.range(params.max_detections)[None, :] < count[:, None]
    names = tf.where(valid, tf.gather(labels, tf.cast(nms.nmsed_classes, tf.int32)), "")
    return {
        "detection_boxes": nms.nmsed_boxes,
        "detection_scores": nms.nmsed_scores,
        "detection_classes": nms.nmsed_classes,
        "detection_labels": names,
        "num_detections": tf.cast(count, tf.float32),
    }


def export_detector(
    model: tf.keras.Model, labels: list[str], export_dir: str, params: DetectorParams
) -> None:
    """Saves ``model`` with both signatures, ``labels.txt`` and ``model_params.json`` as assets."""
    label_table = tf.constant(labels)
    anchors = params.anchors()
    size, channels = params.image_size, params.channels
    image_spec = tf.TensorSpec([size, size, channels], tf.uint8)

    def detect(image_bytes):
        images = tf.map_fn(
            lambda b: decode_and_resize(b, size, channels), image_bytes, fn_output_signature=image_spec
        )
        return postprocess(model(images, training=False), anchors, params, label_table)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(image_bytes):
        return detect(image_bytes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed = tf.io.parse_example(examples, {spec.IMAGE: tf.io.FixedLenFeature([], tf.string)})
        return detect(parsed[spec.IMAGE])

    model_export.save_model(
        model, export_dir, labels, params.to_dict(), serve_bytes=serve_bytes, serve_examples=serve_examples
    )


def read_params(export_dir: str) -> DetectorParams:
    return DetectorParams.from_dict(model_export.read_params(export_dir))
