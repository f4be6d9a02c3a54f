"""Classifying image files, or detecting objects in them, with a pushed (or trained) SavedModel, as
TF Serving would, or with a .tflite file.

The model may be local or under any URI tf.io.gfile knows (gs://...); the images are local files.

for path, result in predict("out/serving/cvpipe", ["cat.jpg"]):
    print(path, result.label, result.score)

A detector (its signature returns ``detection_boxes``) fills ``result.detections`` instead: label,
score and box in pixels of the image as displayed (Exif orientation applied, as ingestion does),
best first; ``annotate(path, result.detections)`` draws them.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from components.image_model.export import SERVING_SIGNATURE
from components.serving_pusher.push import list_versions


@dataclasses.dataclass
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in pixels of the upright image.


@dataclasses.dataclass
class Prediction:
    label: str | None
    score: float | None
    error: str | None = None
    detections: list[Detection] | None = None  # A detector's, instead of label and score.


DETECTION_OUTPUT = "detection_boxes"
EXIF_ORIENTATION = 0x0112


def resolve_model_dir(path: str) -> str:
    """A SavedModel dir, or a TF Serving model dir (its highest numeric version); local or a URI."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if versions:
        return os.path.join(path, str(versions[0]))
    raise FileNotFoundError(f"{path} is neither a SavedModel nor a directory of numbered versions")


def predict(
    model_path: str, image_paths: list[str], *, min_score: float = 0.0
) -> list[tuple[str, Prediction]]:
    """Each image's prediction; ``min_score``: a detector's detections below it are left out."""
    if model_path.endswith(".tflite"):
        return predict_tflite(model_path, image_paths, min_score=min_score)
    model = tf.saved_model.load(resolve_model_dir(model_path))
    serve = model.signatures[SERVING_SIGNATURE]
    if DETECTION_OUTPUT in serve.structured_outputs:
        return _detect_each(image_paths, lambda data: _saved_model_detections(serve, data), min_score)
    results = []
    for path in image_paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
            out = serve(image_bytes=tf.constant([data]))
            results.append((path, Prediction(out["label"][0].numpy().decode(), float(out["score"][0]))))
        except OSError as e:
            results.append((path, Prediction(None, None, f"cannot read: {e}")))
        except tf.errors.InvalidArgumentError as e:
            results.append((path, Prediction(None, None, op_error_message(e))))
    return results


def op_error_message(error: tf.errors.OpError) -> str:
    """The decoder's own sentence from a TF op error (not the graph boilerplate around it)."""
    lines = [line.strip() for line in error.message.splitlines()]
    useful = [
        line
        for line in lines
        if line and not line.startswith(("Graph execution error", "Detected at", "<stack", "[[{{"))
    ]
    return (useful[0] if useful else error.message.strip())[:200]


def predict_tflite(
    model_path: str, image_paths: list[str], *, min_score: float = 0.0
) -> list[tuple[str, Prediction]]:
    """The same as ``predict`` with a TFLite file: labels come from the model's metadata."""
    from components.image_model.model import decode_and_resize
    from components.tflite_exporter.convert import Classifier, read_metadata

    with tf.io.gfile.GFile(model_path, "rb") as f:
        model = f.read()
    _, labels = read_metadata(model)
    interpreter = tf.lite.Interpreter(model_content=model)
    outputs = interpreter.get_signature_list().get(SERVING_SIGNATURE, {}).get("outputs", [])
    if DETECTION_OUTPUT in outputs:
        from components.image_model.detector import tflite

        interpreter.allocate_tensors()
        _, size, _, channels = (int(v) for v in interpreter.get_input_details()[0]["shape"])

        def run(data):
            found = tflite.detect(interpreter, decode_and_resize(tf.constant(data), size, channels).numpy())
            classes = found["detection_classes"]
            names = [labels[c] if 0 <= c < len(labels) else str(c) for c in classes]
            return found["detection_boxes"], found["detection_scores"], names

        return _detect_each(image_paths, run, min_score)
    classifier = Classifier(model)
    channels = int(classifier.input["shape"][3])
    results = []
    for path in image_paths:
        try:
            with open(path, "rb") as f:
                image = decode_and_resize(tf.constant(f.read()), classifier.image_size, channels).numpy()
            scores = classifier(image)
            best = int(scores.argmax())
            results.append((path, Prediction(labels[best], float(scores[best]))))
        except OSError as e:
            results.append((path, Prediction(None, None, f"cannot read: {e}")))
        except tf.errors.InvalidArgumentError as e:
            results.append((path, Prediction(None, None, op_error_message(e))))
    return results


def _saved_model_detections(serve, data: bytes):
    out = serve(image_bytes=tf.constant([data]))
    count = int(out["num_detections"][0])
    names = [v.decode() for v in out["detection_labels"][0, :count].numpy()]
    return out["detection_boxes"][0, :count].numpy(), out["detection_scores"][0, :count].numpy(), names


def _upright_bytes(path: str) -> tuple[bytes, tuple[int, int]]:
    """The file's bytes, re-encoded as PNG when its Exif orientation turns it; its displayed size.

    The detector learnt on upright pixels (ingestion applies the orientation) and its boxes are
    reported on the image as displayed, so the model is given that image.
    """
    import io

    from PIL import Image, ImageOps

    with open(path, "rb") as f:
        data = f.read()
    image = Image.open(io.BytesIO(data))
    if image.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return data, image.size
    upright = ImageOps.exif_transpose(image)
    buffer = io.BytesIO()
    upright.save(buffer, format="PNG")
    return buffer.getvalue(), upright.size


def _detect_each(image_paths, run, min_score: float) -> list[tuple[str, Prediction]]:
    """``run(encoded upright image) -> (boxes [n, 4] normalised y-first, scores [n], labels)``."""
    results = []
    for path in image_paths:
        try:
            data, (width, height) = _upright_bytes(path)
            boxes, scores, names = run(data)
        except OSError as e:
            results.append((path, Prediction(None, None, f"cannot read: {e}")))
            continue
        except tf.errors.InvalidArgumentError as e:
            results.append((path, Prediction(None, None, op_error_message(e))))
            continue
        detections = [
            Detection(
                name,
                float(score),
                (
                    round(float(xmin) * width, 1),
                    round(float(ymin) * height, 1),
                    round(float(xmax) * width, 1),
                    round(float(ymax) * height, 1),
                ),
            )
            for (ymin, xmin, ymax, xmax), score, name in zip(boxes, scores, names)
            if score >= min_score
        ]
        detections.sort(key=lambda d: -d.score)
        results.append((path, Prediction(None, None, detections=detections)))
    return results


def annotate(image_path: str, detections: list[Detection], out_path: str) -> None:
    """Writes the image (upright) with each detection's box, label and score drawn on it."""
    from PIL import Image, ImageDraw, ImageOps

    image = ImageOps.exif_transpose(Image.open(image_path)).convert("RGB")
    draw = ImageDraw.Draw(image)
    line = max(1, round(max(image.size) / 200))
    for d in detections:
        draw.rectangle(d.box, outline=(255, 40, 40), width=line)
        text = f"{d.label} {d.score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text)
        y = d.box[1] - (bottom - top) - 2
        y = y if y >= 0 else d.box[1]
        draw.rectangle([d.box[0], y, d.box[0] + right - left + 2, y + bottom - top + 2], fill=(255, 40, 40))
        draw.text((d.box[0] + 1, y), text, fill=(255, 255, 255))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    image.save(out_path)
