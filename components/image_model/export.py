"""Exporting the trained model as a TF Serving SavedModel.

Signatures:
- ``serving_default``: ``image_bytes`` (a batch of encoded images; TF Serving's REST API takes
  ``{"instances": [{"b64": "..."}]}``) -> ``probabilities``, ``class_index``, ``label``, ``score``.
- ``serving_examples``: ``examples`` (serialized tf.Example, as written by ImageExampleGen) -> the
  same outputs; used by the Evaluator (TFMA).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from components.image_example_gen import spec
from components.image_model.model import decode_and_resize

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "serving_examples"
LABELS_ASSET = "labels.txt"
PARAMS_ASSET = "model_params.json"


def _outputs(model, labels, images):
    probabilities = model(images, training=False)
    class_index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {
        "probabilities": probabilities,
        "class_index": class_index,
        "label": tf.gather(labels, class_index),
        "score": tf.reduce_max(probabilities, axis=-1),
    }


def export_serving_model(
    model, labels: list[str], export_dir: str, *, image_size: int, channels: int, params: dict | None = None
) -> None:
    """Saves ``model`` with both signatures and the label file as an asset."""
    label_table = tf.constant(labels)
    image_spec = tf.TensorSpec([image_size, image_size, channels], tf.uint8)

    def decode_batch(image_bytes):
        return tf.map_fn(
            lambda b: decode_and_resize(b, image_size, channels), image_bytes, fn_output_signature=image_spec
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(image_bytes):
        return _outputs(model, label_table, decode_batch(image_bytes))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        parsed = tf.io.parse_example(examples, {spec.IMAGE: tf.io.FixedLenFeature([], tf.string)})
        return _outputs(model, label_table, decode_batch(parsed[spec.IMAGE]))

    save_model(model, export_dir, labels, params, serve_bytes=serve_bytes, serve_examples=serve_examples)


def save_model(
    model, export_dir: str, labels: list[str], params: dict | None, *, serve_bytes, serve_examples
) -> None:
    """Saves ``model`` with the two signatures, ``labels.txt`` and (when given) ``model_params.json``
    as assets: the layout of every cvpipe SavedModel (classifier and detector)."""
    model.save(
        export_dir,
        save_format="tf",
        include_optimizer=False,
        # Keras' traces of every layer's call took 4.5 of 6 s here; TF Serving, TFMA and
        # tf.saved_model.load use the signatures, and tf.keras.models.load_model rebuilds the
        # layers from their config (cvpipe's one custom layer is registered: model.Scale).
        save_traces=False,
        signatures={SERVING_SIGNATURE: serve_bytes, EXAMPLES_SIGNATURE: serve_examples},
    )
    with tf.io.gfile.GFile(os.path.join(export_dir, "assets", LABELS_ASSET), "w") as f:
        f.write("".join(f"{label}\n" for label in labels))
    if params is not None:  # Lets the TFLite exporter rebuild the same network with a float input.
        with tf.io.gfile.GFile(os.path.join(export_dir, "assets", PARAMS_ASSET), "w") as f:
            f.write(json.dumps(params, sort_keys=True))


def read_labels(export_dir: str) -> list[str]:
    with tf.io.gfile.GFile(os.path.join(export_dir, "assets", LABELS_ASSET)) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def read_params(export_dir: str) -> dict:
    with tf.io.gfile.GFile(os.path.join(export_dir, "assets", PARAMS_ASSET)) as f:
        return json.loads(f.read())


def restore_network(built, export_dir: str):
    """``built`` (the exported network's layers, rebuilt from its params; the input dtype may
    differ) with the SavedModel's trained weights: restored from its variables in under a second,
    where loading it as Keras takes 3-4 s. Every weight must be there: a different network fails,
    naming the variable that does not fit. Returns the network without any compiled optimizer."""
    # The same layers without an optimizer (none is exported), so that every object left is one
    # the SavedModel's checkpoint must have.
    model = tf.keras.Model(built.inputs, built.outputs, name=built.name)
    variables = os.path.join(export_dir, "variables", "variables")  # The SavedModel's checkpoint.
    model.load_weights(variables).assert_existing_objects_matched()
    return model
