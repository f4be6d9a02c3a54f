"""ModelReviewGen's workflow: the trained model, its examples and its run records in; review.json and
model_review.html out.

>>> review = review_model(examples_uri="ImageExampleGen/examples/3",
...                       serving_dir="Trainer/model/9/Format-Serving",
...                       model_run_uri="Trainer/model_run/9", out_dir="ModelReview/review/12",
...                       tflite_uri="TFLiteExporter/tflite_model/11",
...                       tuner_results_uri="Tuner/tuner_results/8")
>>> review["splits"][0]["split"], review["splits"][0]["accuracy"]
('eval', 0.97)

Every split but train is predicted twice: by the SavedModel through its ``serving_default``
signature (the encoded bytes TF Serving receives) and by each TFLite variant through the
interpreter (the images decoded and resized as the exporter calibrated and evaluated them). A
detector (its model_params.json says so) is reviewed with COCO's AP instead: ``review["task"] ==
"detection"``, its numbers from detection.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os

import numpy as np
import tensorflow as tf

from components import fileio
from components.image_example_gen import spec as example_spec
from components.image_model import export
from components.image_model import tuning as tuning_lib
from components.image_model.detector import export as detector_export
from components.image_model.detector.network import build_detector
from components.image_model.model import decode_and_resize
from components.image_model.training import HISTORY_FILE
from components.model_review import detection, spec
from components.model_review import review as review_lib
from components.model_review.render import render_review
from components.tflite_exporter import detection as tflite_detection
from components.tflite_exporter import spec as tflite_spec
from components.tflite_exporter.convert import MODES, Classifier
from components.validation_report.objects import boxed_thumbnail
from components.validation_report.render import thumbnail_uri

BATCH = 128
_FEATURES = {
    example_spec.IMAGE: tf.io.FixedLenFeature([], tf.string),
    example_spec.LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64),
    example_spec.PATH: tf.io.FixedLenFeature([], tf.string),
}
_PATH_FEATURES = {example_spec.PATH: tf.io.FixedLenFeature([], tf.string)}
_IMAGE_FEATURES = {example_spec.IMAGE: tf.io.FixedLenFeature([], tf.string)}


@dataclasses.dataclass
class SplitPredictions:
    """One split's images in record order: true class, path, and each model's probabilities."""

    split: str
    truth: np.ndarray  # [n] class indices.
    paths: list[str]
    reference: np.ndarray  # [n, classes]: the SavedModel's probabilities.
    variants: dict[str, np.ndarray]  # TFLite mode -> [n, classes].


def review_model(
    *,
    examples_uri: str,
    serving_dir: str,
    model_run_uri: str,
    out_dir: str,
    tflite_uri: str | None = None,
    tuner_results_uri: str | None = None,
    blessing_uri: str | None = None,
    pipeline_name: str = "cvpipe",
) -> dict:
    """Writes review.json and model_review.html to ``out_dir`` (any URI); returns the review.

    A detector (told by the model's params) is reviewed by :func:`review_detector`."""
    detector = tflite_detection.is_detector(serving_dir)
    records = dict(
        training=_read_json(os.path.join(model_run_uri, "metrics.json")),
        history=_read_json(os.path.join(model_run_uri, HISTORY_FILE)),
        parity=_read_json(os.path.join(tflite_uri, tflite_spec.PARITY_FILE)) if tflite_uri else None,
        tuning=_read_tuning(tuner_results_uri, spec.DETECTION_TASK if detector else "classification"),
        blessed=fileio.exists(os.path.join(blessing_uri, "BLESSED")) if blessing_uri else None,
        pipeline_name=pipeline_name,
    )
    variants = _read_variants(tflite_uri) if tflite_uri else {}
    review_of = review_detector if detector else review_classifier
    review = review_of(examples_uri, serving_dir, variants, **records)
    write_review(review, out_dir)
    return review


def review_classifier(examples_uri: str, serving_dir: str, variants: dict[str, bytes], **records) -> dict:
    """A classifier's review dict (:func:`assemble_review`; ``records``: its keyword arguments read
    from the run)."""
    labels = export.read_labels(serving_dir)
    params = export.read_params(serving_dir)
    serve = tf.saved_model.load(serving_dir).signatures[export.SERVING_SIGNATURE]
    predictions = [
        predict_split(
            examples_uri, split, serve, variants, params["image_size"], params["channels"], len(labels)
        )
        for split in held_out_splits(examples_uri)
    ]
    return assemble_review(
        predictions,
        labels,
        thumbnails=lambda split, indices: _thumbnails(examples_uri, split, indices),
        model={"uri": serving_dir, "image_size": params["image_size"], "channels": params["channels"]},
        **records,
    )


def review_detector(examples_uri: str, serving_dir: str, variants: dict[str, bytes], **records) -> dict:
    """A detector's review dict (detection.assemble_detection_review; ``records``: its keyword
    arguments read from the run). Every held-out split is decoded and resized as the SavedModel
    does it, one split in memory at a time, and detected by the SavedModel's network with its own
    post-processing and by each TFLite variant, as the exporter's parity check does."""
    labels = export.read_labels(serving_dir)
    params = detector_export.read_params(serving_dir)
    trained = export.restore_network(build_detector(params), serving_dir)
    splits = [
        predict_detections(
            examples_uri, split, serving_dir, trained, variants, params.image_size, params.channels
        )
        for split in held_out_splits(examples_uri)
    ]
    return detection.assemble_detection_review(
        splits,
        labels,
        thumbnails=lambda split, indices: _boxed_thumbnails(examples_uri, split, indices),
        model={"uri": serving_dir, "image_size": params.image_size, "channels": params.channels},
        variant_order=_mode_order,
        **records,
    )


def predict_detections(
    examples_uri: str,
    split: str,
    serving_dir: str,
    trained,
    variants: dict[str, bytes],
    image_size: int,
    channels: int,
) -> detection.DetectionSplit:
    """One split's true boxes, the SavedModel's detections (``trained``: its network) and every
    TFLite variant's, in record order."""
    images, truth = tflite_detection.decoded_split(
        [os.path.join(examples_uri, f"Split-{split}", "*")], image_size, channels
    )
    paths = [
        example[example_spec.PATH].numpy().decode("utf-8", "replace")
        for example in _records(examples_uri, split, _PATH_FEATURES)
    ]
    return detection.DetectionSplit(
        split=split,
        paths=paths,
        truth=truth,
        reference=tflite_detection.reference_detections(serving_dir, images, trained=trained),
        variants={
            mode: tflite_detection.tflite_detections(model, images)[0] for mode, model in variants.items()
        },
    )


def write_review(review: dict, out_dir: str) -> str:
    """review.json and its page into ``out_dir``; returns the page's path."""
    fileio.makedirs(out_dir)
    with fileio.open(os.path.join(out_dir, spec.REVIEW_FILE), "w") as f:
        f.write(json.dumps(review, indent=1))
    page = os.path.join(out_dir, spec.PAGE_FILE)
    with fileio.open(page, "w") as f:
        f.write(render_review(review))
    return page


def held_out_splits(examples_uri: str) -> list[str]:
    """The examples' splits other than train: eval and test first, the rest by name."""
    names = [
        entry.rstrip("/")[len("Split-") :]
        for entry in fileio.listdir(examples_uri)
        if entry.startswith("Split-")
    ]
    return sorted((n for n in names if n != spec.TRAIN_SPLIT), key=lambda n: (n != "eval", n != "test", n))


def predict_split(
    examples_uri: str,
    split: str,
    serve,
    variants: dict[str, bytes],
    image_size: int,
    channels: int,
    num_classes: int,
) -> SplitPredictions:
    """The SavedModel's (``serve``: its serving signature) and every TFLite variant's probabilities."""
    classifiers = {mode: Classifier(model) for mode, model in variants.items()}
    truth, paths, reference = [], [], []
    found = {mode: [] for mode in classifiers}
    decode = _decoder(image_size, channels)
    for batch in _records(examples_uri, split).batch(BATCH):
        truth.append(batch[example_spec.LABEL_INDEX].numpy())
        paths += [p.decode("utf-8", "replace") for p in batch[example_spec.PATH].numpy()]
        reference.append(serve(image_bytes=batch[example_spec.IMAGE])["probabilities"].numpy())
        if classifiers:
            images = decode(batch[example_spec.IMAGE]).numpy()
            for mode, classifier in classifiers.items():
                found[mode].append(np.stack([classifier(image) for image in images]))
    empty = np.zeros((0, num_classes), np.float32)
    return SplitPredictions(
        split=split,
        truth=np.concatenate(truth) if truth else np.zeros(0, np.int64),
        paths=paths,
        reference=np.concatenate(reference) if reference else empty,
        variants={mode: np.concatenate(rows) if rows else empty for mode, rows in found.items()},
    )


def assemble_review(
    predictions: list[SplitPredictions],
    labels: list[str],
    *,
    thumbnails,
    model: dict,
    training: dict | None = None,
    history: dict | None = None,
    parity: dict | None = None,
    tuning: dict | None = None,
    blessed: bool | None = None,
    pipeline_name: str = "cvpipe",
) -> dict:
    """review.json's dict. ``thumbnails(split, indices)`` gives {index: data URI} for chosen images."""
    splits = []
    for p in predictions:
        if not len(p.truth):
            continue
        try:
            report = review_lib.classification_report(p.truth, p.reference.argmax(axis=1), labels)
        except ValueError as e:  # E.g. an example labelled with a class the model does not have.
            raise ValueError(f"split {p.split}: {e} of the model ({', '.join(labels)})") from None
        splits.append({"split": p.split, **report})
    # The most confident mistakes over every reviewed split.
    candidates = []
    for p in predictions:
        for i in review_lib.confident_mistakes(p.truth, p.reference, spec.MAX_MISTAKES):
            candidates.append((float(p.reference[i].max()), p, i))
    candidates.sort(key=lambda c: -c[0])
    mistakes = [
        {
            "split": p.split,
            "path": p.paths[i],
            "label": labels[int(p.truth[i])],
            "predicted": labels[int(p.reference[i].argmax())],
            "score": score,
            "index": i,
        }
        for score, p, i in candidates[: spec.MAX_MISTAKES]
    ]
    edge = None
    if parity is not None or any(p.variants for p in predictions):
        edge = [
            _variant_review(mode, predictions, labels, parity)
            for mode in sorted({m for p in predictions for m in p.variants}, key=_mode_order)
        ]
    chosen = mistakes + [d for v in edge or [] for d in v["disagreements"]]
    wanted: dict[str, set[int]] = {}
    for item in chosen:
        wanted.setdefault(item["split"], set()).add(item["index"])
    images = {split: thumbnails(split, sorted(indices)) for split, indices in wanted.items()}
    for item in chosen:
        item["thumbnail"] = images[item["split"]].get(item.pop("index"), "")
    return {
        "pipeline_name": pipeline_name,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "labels": list(labels),
        "model": model,
        "blessed": blessed,
        "training": training,
        "history": history,
        "splits": splits,
        "mistakes": mistakes,
        "mistakes_total": int(sum(int((p.reference.argmax(axis=1) != p.truth).sum()) for p in predictions)),
        "edge": edge,
        "tuning": tuning,
    }


def _variant_review(mode: str, predictions: list[SplitPredictions], labels: list[str], parity) -> dict:
    reviewed = [p for p in predictions if mode in p.variants and len(p.truth)]
    n = sum(len(p.truth) for p in reviewed)
    agree = sum(int((p.variants[mode].argmax(axis=1) == p.reference.argmax(axis=1)).sum()) for p in reviewed)
    right = sum(int((p.variants[mode].argmax(axis=1) == p.truth).sum()) for p in reviewed)
    found = []
    for p in reviewed:
        for i in review_lib.disagreements(p.reference, p.variants[mode], spec.MAX_DISAGREEMENTS):
            ref, var = p.reference[i], p.variants[mode][i]
            found.append(
                {
                    "split": p.split,
                    "path": p.paths[i],
                    "label": labels[int(p.truth[i])],
                    "reference": {"label": labels[int(ref.argmax())], "score": float(ref.max())},
                    "variant": {"label": labels[int(var.argmax())], "score": float(var.max())},
                    "gap": float(ref[ref.argmax()] - var[ref.argmax()]),
                    "index": i,
                }
            )
    found.sort(key=lambda d: -d["gap"])
    gated = next((v for v in (parity or {}).get("variants", []) if v.get("mode") == mode), {})
    return {
        "mode": mode,
        "examples": n,
        "agreement": agree / n if n else None,
        "accuracy": right / n if n else None,
        "reference_accuracy": sum(int((p.reference.argmax(axis=1) == p.truth).sum()) for p in reviewed) / n
        if n
        else None,
        "disagreements_total": n - agree,
        "disagreements": found[: spec.MAX_DISAGREEMENTS],
        "blessed": gated.get("blessed"),
        "reason": gated.get("reason"),
    }


def _mode_order(mode: str) -> tuple[int, str]:
    """The most compressed variant first: int8, float16, dynamic_range, float32."""
    return (-MODES.index(mode) if mode in MODES else 1, mode)


def _records(examples_uri: str, split: str, features: dict = _FEATURES) -> tf.data.Dataset:
    """A split's examples in file order (the order both passes rely on)."""
    files = sorted(fileio.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return dataset.map(lambda record: tf.io.parse_single_example(record, features))


def _decoder(image_size: int, channels: int):
    image_spec = tf.TensorSpec([image_size, image_size, channels], tf.uint8)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def decode(image_bytes):
        return tf.map_fn(
            lambda b: decode_and_resize(b, image_size, channels), image_bytes, fn_output_signature=image_spec
        )

    return decode


def _thumbnails(examples_uri: str, split: str, indices: list[int]) -> dict[int, str]:
    wanted, found = set(indices), {}
    for i, example in enumerate(_records(examples_uri, split)):
        if i in wanted:
            found[i] = thumbnail_uri(example[example_spec.IMAGE].numpy(), spec.THUMBNAIL_SIZE)
            if len(found) == len(wanted):
                break
    return found


def _boxed_thumbnails(examples_uri: str, split: str, indices: list[int]) -> dict[int, tuple[str, int, int]]:
    """{index: (data URI, width, height)}: thumbnails to draw boxes on, in the images' proportions."""
    wanted, found = set(indices), {}
    for i, example in enumerate(_records(examples_uri, split, _IMAGE_FEATURES)):
        if i in wanted:
            found[i] = boxed_thumbnail(example[example_spec.IMAGE].numpy(), spec.BOXED_THUMBNAIL_SIZE)
            if len(found) == len(wanted):
                break
    return found


def _read_tuning(tuner_results_uri: str | None, task: str) -> dict | None:
    """trials.json, with the objective its scores are of (the direction ranks them)."""
    tuning = _read_json(os.path.join(tuner_results_uri, "trials.json")) if tuner_results_uri else None
    if tuning is not None:
        objective = tuning_lib.objective(task)
        tuning["objective"] = {"name": objective.name, "direction": objective.direction}
    return tuning


def _read_variants(tflite_uri: str) -> dict[str, bytes]:
    """Mode -> model bytes of every model_<mode>.tflite in the TFLite artifact."""
    prefix, suffix = tflite_spec.MODEL_FILE.split("{mode}")
    variants = {}
    for path in sorted(fileio.glob(os.path.join(tflite_uri, f"{prefix}*{suffix}"))):
        name = os.path.basename(path)
        with fileio.open(path, "rb") as f:
            variants[name[len(prefix) : -len(suffix)]] = f.read()
    return variants


def _read_json(path: str):
    if not fileio.exists(path):
        return None
    with fileio.open(path) as f:
        return json.load(f)
