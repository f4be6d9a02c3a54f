"""The detector on TFLite: NMS in TFLite_Detection_PostProcess (no Flex), parity with the SavedModel."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from components.image_model.detector import export, tflite
from components.image_model.detector.network import DetectorParams
from components.image_model.export import SERVING_SIGNATURE
from components.tflite_exporter import convert
from tests.conftest import encode, spread_out_detector

LABELS = ["circle", "square", "triangle"]
PARAMS = DetectorParams(num_classes=3, image_size=128, width=8, head_width=16)


def scenes(count, seed):
    """Dark images with a few coloured rectangles and ellipses, uint8 [count, 128, 128, 3]."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        image = Image.new("RGB", (128, 128), tuple(int(v) for v in rng.integers(0, 60, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.integers(0, 90, 2)
            w, h = rng.integers(12, 40, 2)
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape(
                [int(x), int(y), int(x + w), int(y + h)], fill=tuple(int(v) for v in rng.integers(80, 256, 3))
            )
        images.append(np.asarray(image))
    return np.stack(images)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """A small untrained detector whose heads are spread out (scores 0.01-0.9, boxes off-anchor),
    exported with the real serving export: no training needed to compare two runtimes."""
    model = spread_out_detector(PARAMS, seed=3)
    serving = str(tmp_path_factory.mktemp("detector_tflite") / "serving")
    export.export_detector(model, LABELS, serving, PARAMS)
    trained = tf.keras.models.load_model(serving, compile=False)
    models = {
        "float32": tflite.convert_detector(serving, "float32", trained=trained),
        "int8": tflite.convert_detector(serving, "int8", scenes(8, seed=1), trained=trained),
    }
    return serving, models


def interpreter(model):
    return tf.lite.Interpreter(model_content=model, num_threads=1)


def test_nms_runs_in_the_tflite_op_and_no_flex_op_is_needed(detector):
    _, models = detector
    for mode, model in models.items():
        ops = tflite.op_names(model)
        assert ops[-1] == tflite.POSTPROCESS_OP, mode
        assert not [op for op in ops if op.startswith("Flex")], mode
        assert b"Flex" not in model and "NON_MAX_SUPPRESSION" not in " ".join(ops)
    assert "QUANTIZE" in tflite.op_names(models["int8"])  # Full-integer network behind a uint8 input.


def test_the_outputs_are_the_ops_four_float_tensors_in_the_converters_order(detector):
    _, models = detector
    for model in models.values():
        runner = interpreter(model)
        runner.allocate_tensors()
        # This converter (TF 2.16) puts the count first, then the op's ports in order.
        assert tflite.output_names(runner) == [
            "num_detections",
            "detection_boxes",
            "detection_classes",
            "detection_scores",
        ]
        shapes = {
            name: list(runner.get_tensor(i).shape) for name, i in tflite._signature(runner)["outputs"].items()
        }
        assert shapes == {
            "detection_boxes": [1, 100, 4],
            "detection_classes": [1, 100],
            "detection_scores": [1, 100],
            "num_detections": [1],
        }
        assert {d["dtype"] for d in runner.get_output_details()} == {np.float32}
    assert interpreter(models["float32"]).get_input_details()[0]["dtype"] == np.float32
    assert interpreter(models["int8"]).get_input_details()[0]["dtype"] == np.uint8


def test_float32_tflite_detections_match_the_saved_models(detector):
    serving, models = detector
    serve = tf.saved_model.load(serving).signatures[SERVING_SIGNATURE]
    images = scenes(4, seed=7)
    reference = serve(image_bytes=tf.constant([encode(Image.fromarray(i), "PNG") for i in images]))
    reference = {k: v.numpy() for k, v in reference.items()}
    runner = interpreter(models["float32"])
    compared = 0
    for i, image in enumerate(images):
        found = tflite.detect(runner, image)
        count = int(reference["num_detections"][i])
        assert abs(found["num_detections"] - count) <= max(2, count // 10)
        for k in range(min(count, 5)):  # The top detections: same class, box and score.
            box, cls = reference["detection_boxes"][i, k], reference["detection_classes"][i, k]
            same = (found["detection_classes"] == cls) & (
                np.abs(found["detection_boxes"] - box).max(axis=1) < 0.02
            )
            assert same.any(), (i, k, box, cls)
            score = found["detection_scores"][np.argmax(same)]
            assert score == pytest.approx(reference["detection_scores"][i, k], abs=1e-3)
            compared += 1
    assert compared >= 10  # The heads are spread so that the comparison is not vacuous.


def test_int8_model_takes_uint8_and_gives_valid_detections(detector):
    _, models = detector
    assert len(models["int8"]) < len(models["float32"]) / 2
    found = tflite.detect(interpreter(models["int8"]), scenes(1, seed=9)[0])
    n = found["num_detections"]
    assert 0 < n <= PARAMS.max_detections and found["detection_boxes"].shape == (n, 4)
    assert found["detection_boxes"].min() >= 0.0 and found["detection_boxes"].max() <= 1.0
    assert found["detection_scores"].min() >= PARAMS.score_threshold
    assert set(found["detection_classes"].tolist()) <= {0, 1, 2}


def test_object_detector_metadata_names_each_output_and_packs_the_labels(detector):
    from tensorflow_lite_support.metadata.python import metadata

    _, models = detector
    with_metadata = convert.add_metadata(
        models["int8"], LABELS, name="t", version="1", description="d", author="a", detector=True
    )
    displayer = metadata.MetadataDisplayer.with_model_buffer(with_metadata)
    subgraph = json.loads(displayer.get_metadata_json())["subgraph_metadata"][0]
    names = [t["name"] for t in subgraph["output_tensor_metadata"]]
    runner = interpreter(with_metadata)
    by_key = dict(zip(tflite.output_names(runner), names))
    assert by_key == {
        "detection_boxes": "location",
        "detection_classes": "category",
        "detection_scores": "score",
        "num_detections": "number of detections",
    }
    assert subgraph["input_tensor_metadata"][0]["process_units"][0]["options"] == {
        "mean": [0.0],
        "std": [1.0],
    }
    label_file = displayer.get_packed_associated_file_list()[0]
    assert displayer.get_associated_file_buffer(label_file).decode().split() == LABELS
    assert tflite.detect(runner, scenes(1, seed=9)[0])["num_detections"] > 0  # Still runs.
