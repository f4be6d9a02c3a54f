"""Detection evaluation: ModelEvaluator (TFX's Evaluator executor with TFMA's COCO metrics) on a real
exported detector against a served model that replays jittered ground truth, whose TFMA figures
must be pycocotools COCOeval's on the same detections.

One TFMA run serves every test here: each costs about 15 s per model on this machine, mostly fixed.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.image_example_gen import spec as example_spec
from components.image_model.detector import evaluation
from components.image_model.detector.data import BOX_KEYS
from components.image_model.export import EXAMPLES_SIGNATURE
from components.kfp_ui import MetricsTable
from components.model_evaluator import detection, spec
from components.model_evaluator.executor import Executor
from components.served_model import spec as served_spec
from tests.conftest import spread_out_detector

LABELS = ["circle", "square", "triangle"]
# The replayed detections, stored in each example beside its ground truth.
REPLAY_KEYS = {key: f"replay/{key}" for key in ("ymin", "xmin", "ymax", "xmax", "class", "score")}


# --- Detections made from the ground truth --------------------------------------------------------


def jittered_detections(truth: list[dict], num_classes: int, seed: int) -> list[dict]:
    """Detections of a middling detector, from ``truth`` (``evaluation.coco_map``'s form): most
    boxes found with jitter (IoU from about 0.5 to 0.95, so mAP@[.5:.95] is well below mAP@0.5),
    some missed, some of the wrong class, lower-scored duplicates and low-scored false boxes; sorted
    by score like the detector's."""
    rng = np.random.default_rng(seed)

    def jitter(box, scale):
        h, w = box[2] - box[0], box[3] - box[1]
        y0, x0, y1, x1 = np.clip(np.array(box) + rng.normal(0, scale, 4) * [h, w, h, w], 0, 1)
        return [min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)]

    found = []
    for image in truth:
        detections = []  # (score, box, class)
        for box, cls in zip(image["boxes"], image["classes"]):
            if rng.random() < 0.8:
                wrong = rng.random() < 0.1
                detections.append(
                    (
                        rng.uniform(0.3, 1.0),
                        jitter(box, rng.uniform(0.02, 0.15)),
                        int(rng.integers(0, num_classes)) if wrong else cls,
                    )
                )
                if rng.random() < 0.2:
                    detections.append((rng.uniform(0.05, 0.7), jitter(box, 0.1), cls))
        for _ in range(int(rng.integers(0, 4))):
            h, w = rng.uniform(0.05, 0.4, 2)
            y, x = rng.uniform(0, 1 - h), rng.uniform(0, 1 - w)
            detections.append(
                (rng.uniform(0.01, 0.6), [y, x, y + h, x + w], int(rng.integers(0, num_classes)))
            )
        detections.sort(key=lambda d: -d[0])
        found.append(
            {
                "scores": [d[0] for d in detections],
                "boxes": [d[1] for d in detections],
                "classes": [d[2] for d in detections],
            }
        )
    return found


def read_truth(examples: list[tf.train.Example]) -> list[dict]:
    truth = []
    for example in examples:
        feature = example.features.feature
        corners = [feature[key].float_list.value for key in BOX_KEYS]
        truth.append(
            {
                "width": feature[example_spec.WIDTH].int64_list.value[0],
                "height": feature[example_spec.HEIGHT].int64_list.value[0],
                "boxes": [list(box) for box in zip(*corners)],
                "classes": list(feature[example_spec.OBJECT_LABEL].int64_list.value),
            }
        )
    return truth


def read_examples(examples_uri: str, split: str = "eval") -> list[tf.train.Example]:
    files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    records = tf.data.TFRecordDataset(sorted(files), compression_type="GZIP")
    return [tf.train.Example.FromString(record.numpy()) for record in records]


def write_with_replay(examples_uri: str, examples: list[tf.train.Example], found: list[dict]) -> None:
    """An Examples artifact: ``examples`` with the detections to replay added, and labels.txt."""
    os.makedirs(os.path.join(examples_uri, "Split-eval"))
    with open(os.path.join(examples_uri, example_spec.LABELS_FILE), "w") as f:
        f.write("".join(f"{label}\n" for label in LABELS))
    path = os.path.join(examples_uri, "Split-eval", "data_tfrecord-00000.gz")
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        for example, detections in zip(examples, found):
            replayed = tf.train.Example()
            replayed.CopyFrom(example)
            columns = {"class": detections["classes"], "score": detections["scores"]}
            for i, side in enumerate(("ymin", "xmin", "ymax", "xmax")):
                columns[side] = [box[i] for box in detections["boxes"]]
            for name, values in columns.items():
                replayed.features.feature[REPLAY_KEYS[name]].float_list.value.extend(values)
            writer.write(replayed.SerializeToString())


class _Replay(tf.Module):
    """Answers ``serving_examples`` like the detector (TF OD API outputs, float count, padded to
    100 with zeros) with the detections stored in each example."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(
            examples, {k: tf.io.VarLenFeature(tf.float32) for k in REPLAY_KEYS.values()}
        )
        size = detection.MAX_DETECTIONS

        def column(name):
            dense = tf.sparse.to_dense(parsed[REPLAY_KEYS[name]])
            return tf.pad(dense, [[0, 0], [0, size - tf.shape(dense)[1]]])[:, :size]

        classes = column("class")
        rows = tf.cast(parsed[REPLAY_KEYS["score"]].indices[:, 0], tf.int32)
        counts = tf.minimum(tf.math.bincount(rows, minlength=tf.shape(examples)[0]), size)
        valid = tf.range(size)[None, :] < counts[:, None]
        return {
            "detection_boxes": tf.stack([column(s) for s in ("ymin", "xmin", "ymax", "xmax")], axis=-1),
            "detection_scores": column("score"),
            "detection_classes": classes,
            "detection_labels": tf.where(
                valid, tf.gather(tf.constant(LABELS), tf.cast(classes, tf.int32)), ""
            ),
            "num_detections": tf.cast(counts, tf.float32),
        }


def export_replay(export_dir: str) -> None:
    module = _Replay()
    tf.saved_model.save(module, export_dir, signatures={EXAMPLES_SIGNATURE: module.serve_examples})


def export_spread_detector(export_dir: str) -> None:
    """A small untrained detector whose heads are spread out (scores 0.01-0.9, boxes off-anchor, as
    in tests/test_detector_tflite.py), at most 10 detections an image, with the real export. One
    head level of depth 1: Keras saves it in about 7 s here, the default two levels in 17 s."""
    from components.image_model.detector import export
    from components.image_model.detector.network import DetectorParams

    params = DetectorParams(
        num_classes=3, image_size=64, width=8, head_width=16, head_depth=1, strides=(8,), max_detections=10
    )
    export.export_detector(spread_out_detector(params, seed=3), LABELS, export_dir, params)


# --- Running the ModelEvaluator executor -----------------------------------------------------------


def model_artifact(uri: str, serving_dir: str, served_version: int | None = None):
    """A Trainer-like Model artifact, or (``served_version``) ServedModel's, holding ``serving_dir``."""
    model = standard_artifacts.Model()
    model.uri = uri
    shutil.copytree(serving_dir, os.path.join(uri, "Format-Serving"))
    if served_version is not None:
        model.set_int_custom_property(served_spec.FOUND, 1)
        model.set_int_custom_property(served_spec.SERVED_VERSION, served_version)
    return model


def run_evaluator(out: str, examples_uri: str, model, baseline, eval_config: tfma.EvalConfig) -> dict:
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = json.dumps(["eval"])
    outputs = {}
    for key, artifact_type in (
        (spec.EVALUATION_KEY, standard_artifacts.ModelEvaluation),
        (spec.BLESSING_KEY, standard_artifacts.ModelBlessing),
        (spec.METRICS_KEY, MetricsTable),
    ):
        artifact = artifact_type()
        artifact.uri = os.path.join(out, key)
        os.makedirs(artifact.uri)
        outputs[key] = [artifact]
    Executor().Do(
        {"examples": [examples], spec.MODEL_KEY: [model], spec.BASELINE_MODEL_KEY: [baseline]},
        outputs,
        {
            "eval_config": proto_utils.proto_to_json(eval_config),
            "example_splits": json.dumps(["eval"]),
            "fairness_indicator_thresholds": "null",
        },
    )
    return {key: artifacts[0] for key, artifacts in outputs.items()}


def table(artifact) -> dict:
    properties = artifact.mlmd_artifact.custom_properties
    return {k: v.double_value if v.HasField("double_value") else v.int_value for k, v in properties.items()}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """24 sample scenes ingested by ImageExampleGen's ingest, all in eval; the untrained detector as
    the candidate against a served model (version 7) replaying jittered ground truth."""
    from components.image_example_gen.discovery import discover
    from components.image_example_gen.imaging import ImageOptions
    from components.image_example_gen.ingest import IngestOptions, ingest
    from pipelines.sample_data import write_sample_data

    root = tmp_path_factory.mktemp("detection_eval")
    write_sample_data(str(root / "scenes"), kind="scenes", count=24, seed=0)
    options = IngestOptions(
        image=ImageOptions(pixel_properties=False), splits=(("eval", 1),), task="detection"
    )
    summary = ingest(
        discover(str(root / "scenes")),
        options,
        span=0,
        examples_dir=str(root / "ingested"),
        catalog_dir=str(root),
    )
    examples = read_examples(str(root / "ingested"))
    truth = read_truth(examples)
    found = jittered_detections(truth, len(LABELS), seed=0)
    write_with_replay(str(root / "examples"), examples, found)
    export_replay(str(root / "replay"))
    export_spread_detector(str(root / "detector"))
    outputs = run_evaluator(
        str(root / "out"),
        str(root / "examples"),
        model_artifact(str(root / "candidate"), str(root / "detector")),
        model_artifact(str(root / "served"), str(root / "replay"), served_version=7),
        detection.eval_config(min_map=0.5, max_map_drop=0.02, iou_range=True),
    )
    return outputs, evaluation.coco_map(truth, found, len(LABELS)), truth, found, summary


# --- The contract: TFMA's numbers are COCOeval's ---------------------------------------------------


def test_tfma_map50_and_map_agree_with_pycocotools_on_the_same_detections(evaluated):
    outputs, coco, truth, found, _ = evaluated
    figures = table(outputs[spec.METRICS_KEY])  # The served model's are baseline_*.
    # Non-trivial detections: several classes, negatives, misses, duplicates, false boxes.
    assert 0.5 < coco["map50"] < 0.9 and 0.2 < coco["map"] < coco["map50"] - 0.1
    assert sum(not image["boxes"] for image in truth) >= 3 and not all(image["boxes"] for image in found)
    assert (
        sum(len(image["boxes"]) for image in found) > coco["boxes"]
        and len(set(sum((i["classes"] for i in truth), []))) == 3
    )
    assert figures["baseline_" + detection.MAP50] == pytest.approx(coco["map50"], abs=0.01)
    assert figures["baseline_" + detection.MAP] == pytest.approx(coco["map"], abs=0.01)
    assert 0.3 < figures["baseline_" + detection.MEAN_AVERAGE_RECALL] < 1.0
    assert figures["baseline_example_count"] == 24


# --- A real exported detector through ModelEvaluator ------------------------------------------------


def test_a_detector_below_min_map_and_worse_than_the_served_one_is_not_blessed(evaluated):
    outputs, _, _, _, _ = evaluated
    blessing = outputs[spec.BLESSING_KEY]
    assert blessing.get_int_custom_property("blessed") == 0
    assert os.listdir(blessing.uri) == ["NOT_BLESSED"]
    assert blessing.get_int_custom_property(spec.BASELINE_VERSION) == 7
    validation = tfma.load_validation_result(outputs[spec.EVALUATION_KEY].uri)
    failures = [f for per_slice in validation.metric_validations_per_slice for f in per_slice.failures]
    # Both gates fail, on mAP@0.5 only: the floor, and the allowed drop against the served model.
    assert sorted((f.metric_key.name, f.metric_key.is_diff) for f in failures) == [
        (detection.MAP50, False),
        (detection.MAP50, True),
    ]


def test_the_metrics_table_has_the_detectors_and_the_served_models_figures(evaluated):
    outputs, _, _, _, summary = evaluated
    figures = table(outputs[spec.METRICS_KEY])
    assert figures["example_count"] == summary["ingested"] == 24 and summary["objects"]["negatives"] == 3
    assert 0.0 <= figures[detection.MAP] <= figures[detection.MAP50] < 0.1  # Untrained.
    assert 0.0 <= figures[detection.MEAN_AVERAGE_RECALL] <= 1.0
    assert figures["blessed"] == 0 and figures[spec.BASELINE_VERSION] == 7


def test_the_executor_fills_the_class_ids_from_the_examples_labels_txt(evaluated):
    outputs = evaluated[0]
    with open(os.path.join(outputs[spec.EVALUATION_KEY].uri, "eval_config.json")) as f:
        written = json.load(f)["evalConfig"]
    configs = [json.loads(m["config"]) for m in written["metricsSpecs"][0]["metrics"] if m.get("config")]
    assert [c["name"] for c in configs] == [detection.MAP50, detection.MAP, detection.MEAN_AVERAGE_RECALL]
    assert all(c["class_ids"] == [0, 1, 2] for c in configs)


# --- The config --------------------------------------------------------------------------------------


def test_only_map50_is_gated_with_a_floor_and_an_allowed_drop():
    assert [m.class_name for m in detection.eval_config(0.5, 0.02).metrics_specs[0].metrics] == [
        "FixedCOCOMeanAveragePrecision",  # mAP@0.5 alone by default: the IoU range is 20 times its cost.
        "ExampleCount",
    ]
    config = detection.eval_config(min_map=0.5, max_map_drop=0.02, iou_range=True)
    (model_spec,) = config.model_specs
    assert model_spec.signature_name == EXAMPLES_SIGNATURE and not model_spec.label_key
    metrics = {
        json.loads(m.config)["name"] if m.config else m.class_name: m for m in config.metrics_specs[0].metrics
    }
    assert sorted(metrics) == ["ExampleCount", detection.MAP, detection.MAP50, detection.MEAN_AVERAGE_RECALL]
    assert {name for name, m in metrics.items() if m.HasField("threshold")} == {detection.MAP50}
    threshold = metrics[detection.MAP50].threshold
    assert threshold.value_threshold.lower_bound.value == 0.5
    assert threshold.change_threshold.absolute.value == -0.02
    assert threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert json.loads(metrics[detection.MAP50].config)["iou_thresholds"] == [0.5]
    assert "iou_thresholds" not in json.loads(metrics[detection.MAP].config)  # COCO's 0.5:0.05:0.95.


def test_class_ids_are_filled_into_the_coco_metrics_only():
    config = detection.with_class_ids(detection.eval_config(0.5, 0.02), num_classes=3)
    for metric in config.metrics_specs[0].metrics:
        arguments = json.loads(metric.config) if metric.config else {}
        assert arguments.get("class_ids") == (
            [0, 1, 2] if metric.class_name in detection.COCO_METRICS else None
        )
    # TFMA can now build the gate's keys (it cannot without class ids): the value and the change.
    keys = tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs)
    assert sorted((key.name, key.is_diff) for key in keys) == [
        (detection.MAP50, False),
        (detection.MAP50, True),
    ]
    with pytest.raises(ValueError, match="positive"):
        detection.with_class_ids(config, 0)


def test_the_executor_step_leaves_a_config_without_coco_metrics_alone_and_needs_labels_txt(tmp_path):
    accuracy = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label_index")],
        metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="SparseCategoricalAccuracy")])],
    )
    as_json = proto_utils.proto_to_json(accuracy)
    assert detection.class_ids_from_labels(as_json, str(tmp_path)) is as_json  # No labels.txt needed.
    with pytest.raises(FileNotFoundError, match="labels.txt is missing"):
        detection.class_ids_from_labels(
            proto_utils.proto_to_json(detection.eval_config(0.5, 0.02)), str(tmp_path)
        )
