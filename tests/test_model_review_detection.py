"""ModelReview of a detector: the box matching and COCO's AP by hand and against pycocotools, the
executor on an untrained detector SavedModel with an int8 TFLite model, and the page in headless
Chromium."""

import json
import os

import numpy as np
import pytest

from components.image_model.detector import evaluation
from components.model_review import detection, spec
from components.model_review.render import render_review
from tests import conftest

LABELS = ["circle", "square", "triangle"]  # The sample scenes' classes, in ingestion's order.


def test_matching_counts_missed_false_and_wrong_class_boxes_on_hand_made_boxes():
    truth = [[0, 0, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9], [0, 0.6, 0.3, 0.9]]  # circle, square, circle
    boxes = [
        [0, 0, 0.4, 0.4],  # circle 0.9: finds the first circle.
        [0.02, 0.02, 0.42, 0.42],  # circle 0.8: a duplicate of it, so false.
        [0.5, 0.5, 0.9, 0.9],  # circle 0.7 over the square: wrong class.
        [0.6, 0.0, 0.9, 0.3],  # triangle 0.6 where nothing is: false.
    ]
    m = detection.match_boxes(truth, [0, 1, 0], boxes, [0, 0, 0, 2], [0.9, 0.8, 0.7, 0.6])
    assert m.truth == ["found", "wrong_class", "missed"]
    assert m.predicted == ["found", "false", "wrong_class", "false"]
    assert (m.missed, m.false, m.wrong_class, m.errors) == (1, 2, 1, 4)


def test_matching_prefers_the_right_class_over_a_surer_wrong_one_and_needs_iou_half():
    square = [[0.1, 0.1, 0.5, 0.5]]
    # A circle at 0.9 and a square at 0.4 on the same square: the square finds it, the circle is false.
    m = detection.match_boxes(square, [1], square * 2, [0, 1], [0.9, 0.4])
    assert m.truth == ["found"] and m.predicted == ["false", "found"]
    # Of two squares on it, the surer one finds it.
    m = detection.match_boxes(square, [1], [[0.1, 0.1, 0.5, 0.45], [0.1, 0.1, 0.5, 0.5]], [1, 1], [0.5, 0.6])
    assert m.predicted == ["false", "found"]
    # Half the square's width: IoU 0.5 matches, a little less does not.
    square, half, less = [[0, 0, 0.5, 0.5]], [[0, 0, 0.5, 0.25]], [[0, 0, 0.5, 0.24]]
    assert detection.iou(square, half)[0, 0] == 0.5
    assert detection.match_boxes(square, [1], half, [1], [0.5]).truth == ["found"]
    assert detection.match_boxes(square, [1], less, [1], [0.5]).truth == ["missed"]
    nothing = detection.match_boxes([], [], [], [], [])
    assert (nothing.truth, nothing.predicted, nothing.errors) == ([], [], 0)


def hand_made_case():
    """One 100x100 image: a circle found at IoU 0.72 only (AP@0.5 1, AP@[.5:.95] 0.5), a square
    found after a surer false square (AP 0.5 at every IoU), and a triangle box with no triangle."""
    truth = [{"width": 100, "height": 100, "boxes": [[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]], "classes": [0, 1]}]
    found = [
        {
            "boxes": [[0, 0, 0.5, 0.36], [0.5, 0.5, 1, 1], [0, 0.6, 0.2, 0.9], [0.6, 0, 0.9, 0.3]],
            "scores": [0.8, 0.5, 0.9, 0.4],
            "classes": [0, 1, 1, 2],
        }
    ]
    return truth, found


def test_per_class_ap_from_cocoevals_precision_matches_the_hand_count_and_pycocotools_stats():
    truth, found = hand_made_case()
    evaluator = evaluation.coco_evaluation(truth, found, len(LABELS))
    at50, every = detection.class_ap(evaluator.eval["precision"])
    assert at50 == pytest.approx([1.0, 0.5, None]) and every == pytest.approx([0.5, 0.5, None])
    # COCO's mAP is their mean over the classes with boxes.
    assert np.mean([a for a in at50 if a is not None]) == pytest.approx(evaluator.stats[1])
    assert np.mean([a for a in every if a is not None]) == pytest.approx(evaluator.stats[0])
    assert evaluation.coco_map(truth, found, len(LABELS))["map50"] == pytest.approx(0.75)
    curve = detection.precision_at_recall(evaluator.eval["precision"], 1)
    assert (
        curve == [0.5] * 101 and detection.precision_at_recall(evaluator.eval["precision"], 2) == [None] * 101
    )
    # Both boxes are medium (50x50 pixels): COCO's AR per size, and no small or large box.
    sizes = detection.size_recall(evaluator.eval["recall"])
    assert [s["size"] for s in sizes] == ["small", "medium", "large"]
    assert [s["recall"] for s in sizes] == [None, pytest.approx(evaluator.stats[10]), None]
    assert evaluator.stats[9] == evaluator.stats[11] == -1 and sizes[1]["recall"] == pytest.approx(0.75)
    assert sizes[1]["recall50"] == 1.0
    assert detection.size_counts(truth, evaluator.params.areaRng[1:]) == [0, 2, 0]


def test_without_any_detection_every_class_with_boxes_scores_zero():
    truth, _ = hand_made_case()
    nothing = [{"boxes": [], "scores": [], "classes": []}]
    evaluator = evaluation.coco_evaluation(truth, nothing, len(LABELS))
    assert detection.class_ap(evaluator.eval["precision"]) == ([0.0, 0.0, None], [0.0, 0.0, None])
    assert detection.size_recall(evaluator.eval["recall"])[1]["recall"] == 0.0
    with pytest.raises(ValueError, match="no ground-truth boxes"):
        evaluation.coco_evaluation([{"width": 9, "height": 9, "boxes": [], "classes": []}], nothing, 3)


def test_worst_images_count_the_confident_detections_only_most_mistakes_first():
    truth, found = hand_made_case()
    empty = {"width": 100, "height": 100, "boxes": [], "classes": []}
    split = detection.DetectionSplit(
        "eval", ["a.jpg", "b.jpg", "c.jpg"], [truth[0], empty, empty], [found[0], found[0], found[0]], {}
    )
    split.reference[2] = {"boxes": [[0, 0, 0.1, 0.1]], "scores": [0.29], "classes": [0]}  # Below 0.3.
    worst, total = detection.worst_images([split], LABELS)
    assert total == 2 and [w["path"] for w in worst] == ["b.jpg", "a.jpg"]
    b, a = worst
    assert (b["missed"], b["false"], b["wrong_class"]) == (0, 4, 0)  # No box there: all 4 false.
    # a.jpg: the circle and the square found, the surer square and the triangle false.
    assert (a["missed"], a["false"], a["wrong_class"]) == (0, 2, 0)
    assert a["truth"][0] == ["circle", 0, 0, 0.5, 0.5]  # As drawn: class, xmin, ymin, xmax, ymax.
    assert a["predicted"][0] == ["circle", 0, 0, 0.36, 0.5, 0.8]  # ... and the score.


def test_page_of_a_detector_says_what_a_run_lacks_and_shows_missing_sizes_as_a_dash():
    truth, found = hand_made_case()
    split = detection.DetectionSplit("eval", ["a.jpg"], truth, found, {})
    review = detection.assemble_detection_review(
        [split], LABELS, thumbnails=lambda split, indices: {}, model={}, pipeline_name="scenes"
    )
    assert review["task"] == spec.DETECTION_TASK and review["splits"][0]["map50"] == pytest.approx(0.75)
    html = render_review(review, data_report_href="validation_report.html")
    assert 'href="validation_report.html"' in html and "scenes model review: not evaluated" in html
    for shown in ("eval mAP@0.5 0.750", "No TFLite export", "No tuning in this run", "No history.json"):
        assert shown in html, shown
    sizes = html[html.index('id="sizes"') :]
    assert "<td>small</td><td>0</td><td>–</td><td>–</td>" in sizes
    assert "no thumbnail" in html and "<script" not in html


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """The executor run on sample scenes (train, eval and test) with an untrained detector, and an
    int8 TFLite model of another untrained detector with its parity.json: (review, outputs, dirs)."""
    from tfx.types import artifact_utils, standard_artifacts

    from components.artifacts import ModelReview, TFLiteModel
    from components.image_example_gen.discovery import discover
    from components.image_example_gen.ingest import IngestOptions, ingest
    from components.image_model.detector import export as detector_export
    from components.image_model.detector.network import DetectorParams
    from components.kfp_ui import HTMLPage
    from components.model_review.executor import Executor
    from components.tflite_exporter import detection as tflite_detection
    from components.tflite_exporter import spec as tflite_spec
    from pipelines.sample_data import write_sample_data

    root = tmp_path_factory.mktemp("detection_review")
    write_sample_data(str(root / "images"), kind="scenes", count=36, seed=5)
    examples = root / "examples"
    options = IngestOptions(splits=(("train", 1), ("eval", 1), ("test", 1)), task="detection")
    ingest(discover(str(root / "images")), options, span=0, examples_dir=str(examples), catalog_dir=str(root))

    params = DetectorParams(num_classes=len(LABELS), image_size=64, width=8, head_width=16)
    serving = root / "model" / "Format-Serving"
    detector_export.export_detector(conftest.spread_out_detector(params, 3), LABELS, str(serving), params)
    # The TFLite model is another untrained network, so the two disagree whatever the seed.
    tflite = root / "tflite"
    train = tflite_detection.representative_images(str(serving), [f"{examples}/Split-train/*"], 8)
    other = conftest.spread_out_detector(params, 4)
    models = tflite_detection.convert_variants(str(serving), ["int8"], train, trained=other)
    parity = tflite_detection.check_parity(
        str(serving), models, [f"{examples}/Split-eval/*"], max_map_drop=0.02
    )
    tflite.mkdir()
    (tflite / tflite_spec.MODEL_FILE.format(mode="int8")).write_bytes(models["int8"])
    (tflite / tflite_spec.PARITY_FILE).write_text(json.dumps(parity))

    run = root / "model_run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test_map50": 0.1, "images_per_second": 95.5}))
    history = {"epoch": [0, 1], "loss": [3.0, 2.0], "val_loss": [3.2, 2.5], "box_loss": [1.5, 1.0]}
    (run / "history.json").write_text(json.dumps(history))
    tuning = root / "tuner_results"
    tuning.mkdir()
    trials = [
        {"trial_id": "00", "status": "COMPLETED", "score": 2.9, "hyperparameters": {"width": 8}},
        {"trial_id": "01", "status": "COMPLETED", "score": 2.1, "hyperparameters": {"width": 16}},
        {"trial_id": "02", "status": "FAILED", "score": None, "reason": "worker killed by SIGSEGV"},
    ]
    (tuning / "trials.json").write_text(json.dumps({"trials": trials, "worker_restarts": []}))

    def artifact(cls, uri):
        a = cls()
        a.uri = str(uri)
        return [a]

    inputs = {
        spec.EXAMPLES_KEY: artifact(standard_artifacts.Examples, examples),
        spec.MODEL_KEY: artifact(standard_artifacts.Model, root / "model"),
        spec.MODEL_RUN_KEY: artifact(standard_artifacts.ModelRun, run),
        spec.TFLITE_MODEL_KEY: artifact(TFLiteModel, tflite),
        spec.TUNER_RESULTS_KEY: artifact(standard_artifacts.TunerResults, tuning),
    }
    outputs = {
        spec.REVIEW_KEY: artifact(ModelReview, root / "out" / "review"),
        spec.PAGE_KEY: artifact(HTMLPage, root / "out" / "page"),
    }
    Executor().Do(inputs, outputs, {spec.PIPELINE_NAME_KEY: "scenes"})
    out = artifact_utils.get_single_instance(outputs[spec.REVIEW_KEY])
    with open(os.path.join(out.uri, spec.REVIEW_FILE)) as f:
        result = json.load(f)
    return result, outputs, {"serving": str(serving), "examples": str(examples), "parity": parity}


def test_executor_scores_each_held_out_split_as_the_saved_models_own_coco_evaluation(reviewed):
    result, _, dirs = reviewed
    assert result["task"] == "detection" and result["labels"] == LABELS
    assert [s["split"] for s in result["splits"]] == ["eval", "test"]
    for s in result["splits"]:
        # Another path to the same number: the SavedModel's serving_examples signature on the records.
        expected = evaluation.evaluate_saved_model(
            dirs["serving"], [f"{dirs['examples']}/Split-{s['split']}/*"]
        )
        assert s["map50"] == pytest.approx(expected["map50"], abs=1e-6)
        assert s["map"] == pytest.approx(expected["map"], abs=1e-6)
        assert s["boxes"] == expected["boxes"] == sum(c["boxes"] for c in s["classes"])
        assert sum(z["boxes"] for z in s["sizes"]) >= s["boxes"]  # A box on a size boundary counts twice.
        assert all(len(c["precision_at_recall"]) == 101 for c in s["classes"])
    assert result["tuning"]["objective"] == {"name": "val_loss", "direction": "min"}


def test_worst_images_and_disagreements_are_drawn_with_their_boxes(reviewed):
    result, _, dirs = reviewed
    worst = result["worst"]
    assert 0 < len(worst) <= spec.MAX_WORST_IMAGES and result["worst_total"] >= len(worst)
    errors = [w["missed"] + w["false"] + w["wrong_class"] for w in worst]
    assert errors == sorted(errors, reverse=True) and min(errors) > 0
    for w in worst:
        assert w["thumbnail"].startswith("data:image/jpeg;base64,") and max(w["width"], w["height"]) <= 128
        assert w["missed"] <= len(w["truth"]) and w["false"] + w["wrong_class"] <= len(w["predicted"])
        assert all(box[5] >= spec.MIN_SCORE for box in w["predicted"])

    (int8,) = result["edge"]
    gated = dirs["parity"]["variants"][0]
    assert (
        int8["mode"] == "int8" and int8["blessed"] is gated["blessed"] and int8["reason"] == gated["reason"]
    )
    assert int8["parity"]["map50"] == gated["map50"]
    assert int8["parity"]["reference_map50"] == dirs["parity"]["reference"]["map50"]
    assert int8["images"] == sum(s["images"] for s in result["splits"])
    shown = int8["disagreements"]
    assert 0 < len(shown) <= spec.MAX_BOX_DISAGREEMENTS and int8["disagreements_total"] >= len(shown)
    counts = [d["reference_only"] + d["variant_only"] + d["other_class"] for d in shown]
    assert counts == sorted(counts, reverse=True) and all(d["thumbnail"] for d in shown)


def test_detection_review_page_opens_offline_in_chromium_with_every_section(reviewed):
    from tests.test_data_checks import SCREENSHOTS, open_offline

    result, outputs, _ = reviewed
    path = os.path.join(outputs[spec.REVIEW_KEY][0].uri, spec.PAGE_FILE)
    with open(path, encoding="utf-8") as f:
        html = f.read()
    page_artifact = outputs[spec.PAGE_KEY][0]
    assert html == open(os.path.join(page_artifact.uri, spec.PAGE_FILE), encoding="utf-8").read()
    assert html == render_review(result)  # What `cvpipe report` renders again from review.json.
    assert "<script" not in html and "http://" not in html and "https://" not in html
    requests, text, images = open_offline(path, os.path.join(SCREENSHOTS, "model-review-detection.png"))
    assert requests == [f"file://{path}"]  # Nothing but the file: no fetch, not even a failed one.
    assert "scenes model review: not evaluated" in text
    for shown in (
        "Per-class AP (COCO)",
        "AP@[.5:.95]",
        "Precision-recall curves at IoU 0.5",
        "Recall by object size",
        "Images with the most mistakes",
        "TFLite against the SavedModel",
        "int8 and the SavedModel differ on",
        "Tuning trials",
        "score (val_loss)",
        "worker killed by SIGSEGV",
        "box_loss",
        result["worst"][0]["path"][:20],
    ):
        assert shown in text, shown
    tuning = html[html.index('id="tuning"') :]
    assert (
        tuning.index("<td>01</td>") < tuning.index("<td>00</td>") < tuning.index("<td>02</td>")
    )  # Lowest loss first.
    assert html.count('aria-label="precision against recall') == len(LABELS)
    assert 'stroke-dasharray="4 2"' in html  # The predicted boxes.
    expected = len(result["worst"]) + len(result["edge"][0]["disagreements"])
    assert len(images) == expected and all(images)  # Every thumbnail decodes.
    assert os.path.getsize(path) < 600_000
