"""Classifying image files with a pushed (or trained) SavedModel, as TF Serving would.

The model may be local or under any URI tf.io.gfile knows (gs://...); the images are local files.

for path, result in predict("out/serving/cvpipe", ["cat.jpg"]):
    print(path, result.label, result.score)
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from components.image_model.export import SERVING_SIGNATURE
from components.serving_pusher.push import list_versions


@dataclasses.dataclass
class Prediction:
    label: str | None
    score: float | None
    error: str | None = None


def resolve_model_dir(path: str) -> str:
    """A SavedModel dir, or a TF Serving model dir (its highest numeric version); local or a URI."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if versions:
        return os.path.join(path, str(versions[0]))
    raise FileNotFoundError(f"{path} is neither a SavedModel nor a directory of numbered versions")


def predict(model_path: str, image_paths: list[str]) -> list[tuple[str, Prediction]]:
    if model_path.endswith(".tflite"):
        return predict_tflite(model_path, image_paths)
    model = tf.saved_model.load(resolve_model_dir(model_path))
    serve = model.signatures[SERVING_SIGNATURE]
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


def predict_tflite(model_path: str, image_paths: list[str]) -> list[tuple[str, Prediction]]:
    """The same as ``predict`` with a TFLite file: labels come from the model's metadata."""
    from components.image_model.model import decode_and_resize
    from components.tflite_exporter.convert import Classifier, read_metadata

    with tf.io.gfile.GFile(model_path, "rb") as f:
        model = f.read()
    _, labels = read_metadata(model)
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
