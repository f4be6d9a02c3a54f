"""The detector as TFLite with non-max suppression inside the TFLite runtime (no Flex ops).

The network's box encodings [1, A, 4] and class scores (the sigmoid of its class logits [1, A, C],
no background column), taken from its heads before they are joined into ``raw`` (``head_outputs``:
each keeps its own int8 scale), are handed, with the anchors as a constant,
to an empty ``tf.function`` whose ``experimental_implements`` names TFLite's
``TFLite_Detection_PostProcess`` op, exactly as the TF Object Detection API's
``export_tflite_graph_lib_tf2.py`` does; the converter (``allow_custom_ops``) replaces the call by
the op, which every TFLite runtime's default op resolver provides.

    >>> model = convert_detector("serving/1", "int8", representative_images)
    >>> interpreter = tf.lite.Interpreter(model_content=model)
    >>> detect(interpreter, image)["detection_boxes"]  # [N, 4] ymin, xmin, ymax, xmax (0-1)

The input is the resized image, pixel values 0-255, [1, size, size, channels]: float32 for
``float32``, uint8 for ``int8`` (full-integer network; the post-processing op stays float). The
four outputs are float32: boxes [1, N, 4], classes [1, N] (0-based, line of labels.txt), scores
[1, N], count [1]. Their order in the flatbuffer is whatever the converter made of the op's ports
(``output_names`` reads it); ``detect`` returns them by name.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np
import tensorflow as tf

from components.image_model.detector import boxes
from components.image_model.detector.export import read_params
from components.image_model.detector.network import DetectorParams, build_detector

MODES = ("float32", "int8")
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
SIGNATURE = "serving_default"
# The op's output ports (tensorflow/lite/kernels/detection_postprocess.cc), in port order.
OUTPUT_KEYS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def implements_signature(params: DetectorParams) -> str:
    """The ``experimental_implements`` string naming the op and its attributes (as the OD API)."""
    y_scale, x_scale, h_scale, w_scale = boxes.SCALE_FACTORS
    attrs = [
        ("max_detections", "i", params.max_detections),
        ("max_classes_per_detection", "i", 1),
        ("detections_per_class", "i", params.max_detections),
        ("use_regular_nms", "b", "true"),
        ("nms_score_threshold", "f", params.score_threshold),
        ("nms_iou_threshold", "f", params.iou_threshold),
        ("num_classes", "i", params.num_classes),
        ("y_scale", "f", y_scale),
        ("x_scale", "f", x_scale),
        ("h_scale", "f", h_scale),
        ("w_scale", "f", w_scale),
    ]

    def value(kind, v):
        return f"{kind}: {v:f}" if kind == "f" else f"{kind}: {v}"

    parts = [f'name: "{POSTPROCESS_OP}"']
    parts += [f'attr {{ key: "{key}" value {{ {value(kind, v)} }} }}' for key, kind, v in attrs]
    return " ".join(parts)


def float_input_detector(serving_dir: str, trained: tf.keras.Model | None = None) -> tf.keras.Model:
    """The trained detector rebuilt with a float32 input (same layers, same weights)."""
    if trained is None:
        trained = tf.keras.models.load_model(serving_dir, compile=False)
    params = dataclasses.replace(read_params(serving_dir), input_dtype="float32")
    model = build_detector(params)
    model.set_weights(trained.get_weights())
    return model


class _DetectionModule(tf.Module):
    """Network + box/score split + the op's stand-in, saved as one signature for the converter.

    The Keras model is only closed over (its variables are tracked, the model itself is not):
    saving a tracked Keras model traces every layer's call again, 18 s of a 25 s conversion.
    """

    def __init__(self, model: tf.keras.Model, params: DetectorParams):
        super().__init__()
        self.variables_ = list(model.variables)
        anchors = params.anchors().numpy()

        @tf.function(experimental_implements=implements_signature(params))
        def postprocess(box_encodings, class_predictions, anchors):
            # Stand-ins only: the converter replaces this call by the op (OD API pattern).
            boxes_ = tf.constant(0.0, tf.float32, name="boxes")
            classes = tf.constant(0.0, tf.float32, name="classes")
            scores = tf.constant(0.0, tf.float32, name="scores")
            count = tf.constant(0.0, tf.float32, name="num_detections")
            return boxes_, classes, scores, count

        shape = [1, params.image_size, params.image_size, params.channels]

        heads = head_outputs(model, params)

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
        def serve(image):
            box_encodings, class_logits = heads(image, training=False)
            class_predictions = tf.sigmoid(class_logits)
            outputs = postprocess(box_encodings, class_predictions, tf.constant(anchors))
            return dict(zip(OUTPUT_KEYS, outputs))

        self.serve = serve


def head_outputs(model: tf.keras.Model, params: DetectorParams) -> tf.keras.Model:
    """The same network ending in two tensors: box encodings [B, A, 4] and class logits [B, A, C],
    each the levels' head outputs concatenated in anchor order (as ``raw`` holds them side by side).

    Full-integer conversion gives every tensor one scale: in ``raw`` box encodings (a few units)
    and class logits (-10 and below for background) shared one, which cost the int8 detector
    its small boxes' precision and its scores' ranking; apart, each keeps its own range.
    """
    boxes_, logits = [], []
    for stride in params.strides:
        boxes_.append(model.get_layer(f"head{stride}_box_flat").output)
        logits.append(model.get_layer(f"head{stride}_class_flat").output)
    if len(params.strides) > 1:
        boxes_ = [tf.keras.layers.Concatenate(axis=1, name="box_encodings")(boxes_)]
        logits = [tf.keras.layers.Concatenate(axis=1, name="class_logits")(logits)]
    return tf.keras.Model(model.inputs, [boxes_[0], logits[0]], name="cvpipe_detector_heads")


def convert_detector(
    serving_dir: str,
    mode: str,
    representative_images: np.ndarray | None = None,
    *,
    trained: tf.keras.Model | None = None,
) -> bytes:
    """The detector SavedModel as TFLite with ``TFLite_Detection_PostProcess`` (no Flex ops).

    ``int8``: full-integer network with a uint8 input, calibrated on ``representative_images``
    (uint8 [N, size, size, channels]); the op and the outputs stay float32.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "int8" and (representative_images is None or not len(representative_images)):
        raise ValueError("int8 conversion needs representative images")
    params = read_params(serving_dir)
    module = _DetectionModule(float_input_detector(serving_dir, trained), params)
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "tflite_graph")
        tf.saved_model.save(module, saved, signatures={SIGNATURE: module.serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE])
        converter.allow_custom_ops = True
        if mode == "int8":

            def samples():
                for image in representative_images:
                    yield {"image": image[np.newaxis].astype(np.float32)}

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = samples
            # INT8 for the network; plain builtins let the float op (and its inputs) through.
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.float32
        return converter.convert()


def op_names(tflite_model: bytes) -> list[str]:
    """The op names of the model's main subgraph (custom ops by their custom name)."""
    interpreter = tf.lite.Interpreter(model_content=tflite_model)
    return [op["op_name"] for op in interpreter._get_ops_details()]


def output_names(interpreter: tf.lite.Interpreter) -> list[str]:
    """The output keys in the order of ``get_output_details()`` (the flatbuffer's outputs)."""
    by_index = {index: name for name, index in _signature(interpreter)["outputs"].items()}
    return [by_index[detail["index"]] for detail in interpreter.get_output_details()]


def _signature(interpreter: tf.lite.Interpreter) -> dict:
    return interpreter._get_full_signature_list()[SIGNATURE]


def detect(interpreter: tf.lite.Interpreter, image: np.ndarray) -> dict[str, np.ndarray]:
    """One resized image [size, size, channels] (0-255) -> the first ``num_detections`` detections.

    Returns ``detection_boxes`` [n, 4] (ymin, xmin, ymax, xmax normalised; clipped to 0-1 as the
    SavedModel's are: the op does not clip), ``detection_classes``
    [n] (0-based), ``detection_scores`` [n] and ``num_detections`` (int n).
    """
    signature = _signature(interpreter)
    interpreter.allocate_tensors()
    (input_index,) = signature["inputs"].values()
    detail = next(d for d in interpreter.get_input_details() if d["index"] == input_index)
    interpreter.set_tensor(input_index, np.asarray(image)[np.newaxis].astype(detail["dtype"]))
    interpreter.invoke()
    out = {name: interpreter.get_tensor(index) for name, index in signature["outputs"].items()}
    count = int(out["num_detections"][0])
    return {
        "detection_boxes": np.clip(out["detection_boxes"][0, :count], 0.0, 1.0),
        "detection_classes": out["detection_classes"][0, :count].astype(np.int64),
        "detection_scores": out["detection_scores"][0, :count],
        "num_detections": count,
    }
