"""task: detection end to end through `cvpipe run`: scenes with COCO boxes -> tuned detector ->
TFMA's COCO evaluation against the served model -> TF Serving SavedModel and TFLite pushed, then
`cvpipe predict` on both. The detector's accuracy is measured in bench/detection_pipeline.py; two epochs
here check the mechanics."""

import glob
import json
import os
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

from pipelines.cli import main

FAST_DETECTION = """
task: detection
training: {epochs: 2, min_steps: 0}
tuning: {max_trials: 2, epochs: 1}
evaluation: {min_map: 0.0}   # Mechanics: 2 epochs on 100 scenes do not learn them.
edge: {modes: [int8], representative_count: 16, max_map_drop: 1.0}  # float32: test_detection_edge.py
"""


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("detection_run")
    images = root / "scenes"
    assert main(["sample-data", str(images), "--kind", "scenes", "--count", "120"]) == 0
    config = root / "detection.yaml"
    config.write_text(FAST_DETECTION)
    out = root / "run"
    return images, config, out


@pytest.mark.slow
def test_a_detection_run_tunes_trains_evaluates_with_coco_metrics_and_pushes_both_models(
    detection_run, capsys
):
    images, config, out = detection_run
    args = ["run", "--images", str(images), "--output", str(out), "--config", str(config)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for node in (
        "Tuner",
        "Trainer",
        "Evaluator",
        "ServingPusher",
        "TFLiteExporter",
        "EdgePusher",
        "ModelReview",
    ):
        assert f"  < {node} finished in" in printed, node
    assert "Test mAP@0.5: " in printed and "Evaluation: BLESSED" in printed
    assert "TFLite int8: mAP@0.5 " in printed

    # The tuner searched the detector's space, and the Trainer trained what it chose.
    tuned = json.loads(next(out.glob("pipeline_root/Tuner/best_hyperparameters/*/*.txt")).read_text())
    assert set(tuned["values"]) == {"width", "head_width", "learning_rate"}
    trials = json.loads(next(out.glob("pipeline_root/Tuner/tuner_results/*/trials.json")).read_text())
    assert len(trials["trials"]) == 2 and all(t["status"] == "COMPLETED" for t in trials["trials"])
    metrics = json.loads(next(out.glob("pipeline_root/Trainer/model_run/*/metrics.json")).read_text())
    assert metrics["params"]["width"] == tuned["values"]["width"] and 0 <= metrics["test_map50"] <= 1

    # TFMA's COCO metrics, recorded on the evaluation's metrics artifact.
    from components.model_evaluator.summary import overall_metrics

    evaluation = overall_metrics(next(out.glob("pipeline_root/Evaluator/evaluation/*")).as_posix())
    assert any("map" in name.lower() for name in evaluation), evaluation

    # The pushed serving model answers TF Serving's request with the TF OD API's outputs.
    versions = glob.glob(str(out / "serving" / "cvpipe" / "[0-9]*"))
    assert len(versions) == 1 and f"Serving model: {versions[0]}" in printed
    served = tf.saved_model.load(versions[0]).signatures["serving_default"]
    sample = sorted(images.glob("*.jpg"))[0]
    found = served(image_bytes=tf.constant([sample.read_bytes()]))
    assert {
        "detection_boxes",
        "detection_scores",
        "detection_classes",
        "detection_labels",
        "num_detections",
    } <= set(found)
    boxes = found["detection_boxes"].numpy()
    assert boxes.shape[-1] == 4 and np.all((boxes >= 0) & (boxes <= 1))

    edge = out / "edge" / "cvpipe" / os.path.basename(versions[0])
    assert {"model_int8.tflite", "labels.txt", "parity.json"} <= set(os.listdir(edge))
    parity = json.loads((edge / "parity.json").read_text())
    assert parity["blessed"] and [v["mode"] for v in parity["variants"]] == ["int8"]

    # The detector's review page: COCO AP per class, the int8 model against the SavedModel, the trials.
    page = pathlib.Path(re.search(r"^Model review: (\S+)$", printed, re.M).group(1))
    review = json.loads(page.with_name("review.json").read_text())
    assert review["task"] == "detection" and [s["split"] for s in review["splits"]] == ["eval", "test"]
    assert [v["mode"] for v in review["edge"]] == ["int8"] and len(review["tuning"]["trials"]) == 2
    html = page.read_text()
    for shown in ("Per-class AP (COCO)", "Precision-recall curves at IoU 0.5", "Recall by object size"):
        assert shown in html, shown
    assert "<script" not in html

    # cvpipe predict prints boxes from either model.
    for model in (str(out / "serving" / "cvpipe"), str(edge / "model_int8.tflite")):
        assert main(["predict", model, str(sample)]) == 0
        assert str(sample) in capsys.readouterr().out

    # An unchanged rerun reuses every node.
    assert main(args) == 0
    again = capsys.readouterr().out
    assert not re.search(r"^  < \w+ finished in", again, re.M), again
    for node in (
        "ImageExampleGen",
        "Tuner",
        "Trainer",
        "Evaluator",
        "TFLiteExporter",
        "EdgePusher",
        "ModelReview",
    ):
        assert f"  = {node} reused from cache" in again, node
