"""Box-aware validation (task: detection): each check on hand-made boxes, drift across spans, the
store, the pipeline's data half, and sample scenes through `cvpipe ingest`, DataChecks and the
report opened offline in headless Chromium with the boxes drawn."""

import json
import os
import re

import pytest

import schemas
from components.data_checks import boxes, checks, store
from components.data_checks.checks import CheckOptions
from components.image_example_gen import spec
from pipelines.config import ConfigError, load_config


def image(path, split="train", classes=(), side=0.1, size=100, aspect=1.0):
    """A per-image row: ``classes`` boxes of ``side`` x ``side * aspect``... of a size x size image."""
    width = side * aspect
    return {
        spec.PATH: path,
        spec.SPLIT: split,
        spec.WIDTH: size,
        spec.HEIGHT: size,
        spec.BOX_CLASSES: list(classes),
        boxes.BOXES: [[0.0, 0.0, width, side] for _ in classes],
    }


def many(n, split="train", classes=("cat",), **kwargs):
    return [
        image(f"{split}/{classes[0] if classes else 'neg'}_{i}", split, classes, **kwargs) for i in range(n)
    ]


def found_checks(rows, options=CheckOptions(), labels=()):
    return boxes.box_checks(boxes.distributions(rows, options.max_boxes_per_image), options, labels)


def by_check(found):
    return {a.check: a for a in found}


def test_balanced_boxes_pass():
    rows = many(20, classes=("cat", "dog")) + many(4, "eval", ("cat", "dog"))
    assert found_checks(rows, labels=["cat", "dog"]) == []


def test_a_rare_class_is_reported_with_its_box_and_image_counts():
    rows = many(20, classes=("cat",)) + [image("train/dog", classes=("dog", "dog", "dog"))]
    rare = by_check(found_checks(rows))[checks.MIN_BOX_COUNT]
    assert rare.severity == checks.ERROR and rare.feature == spec.OBJECT_TEXT
    assert rare.description == "class 'dog' has 3 train boxes (minimum 10) on 1 images"
    # A class of the vocabulary with no box left at all is rare too (0 boxes).
    absent = [a for a in found_checks(many(20), labels=["cat", "owl"]) if a.check == checks.MIN_BOX_COUNT]
    assert [a.description.split(" has ")[0] for a in absent] == ["class 'owl'"]


def test_class_imbalance_is_the_ratio_of_most_to_fewest_train_boxes():
    rows = many(110, classes=("cat",)) + many(10, classes=("dog",))
    imbalance = by_check(found_checks(rows))[checks.BOX_CLASS_IMBALANCE]
    assert imbalance.severity == checks.WARNING
    assert "'cat' has 11.0x the boxes of 'dog' in train (110 against 10; limit 10x)" in imbalance.description
    assert checks.BOX_CLASS_IMBALANCE not in by_check(found_checks(many(100) + many(10, classes=("dog",))))


def test_a_class_with_boxes_in_eval_but_none_in_train_is_label_not_in_train():
    rows = many(20) + [image("eval/owl", "eval", ("owl",)), image("test/cat", "test", ("cat",))]
    (missing,) = [a for a in found_checks(rows) if a.check == checks.LABEL_NOT_IN_TRAIN]
    assert (missing.split, missing.feature, missing.severity) == ("eval", spec.OBJECT_TEXT, checks.ERROR)
    assert "'owl' have boxes in eval but none in train" in missing.description


def test_crowded_images_and_a_split_of_mostly_negatives():
    options = CheckOptions(max_boxes_per_image=5)
    rows = many(20) + [image("train/crowd", classes=("cat",) * 7)] + many(3, "eval", ()) + many(1, "eval")
    found = by_check(found_checks(rows, options))
    crowded = found[checks.BOXES_PER_IMAGE]
    assert (
        crowded.split == "train"
        and "1 train image(s) have more than 5 boxes (most 7): train/crowd (7)" in (crowded.description)
    )
    negatives = found[checks.NEGATIVE_SHARE]
    assert (
        negatives.split == "eval"
        and "3 of 4 eval images have no boxes (75%, limit 50%)" in negatives.description
    )


def test_size_classes_are_coco_areas_in_pixels_of_the_stored_image():
    # On a 200x200 image: sides of 20 px (400 px²), 60 px (3600) and 120 px (14400).
    rows = [
        image(f"{side}", side=side / 200, size=200, classes=("cat",))
        for side in (20, 31, 32, 60, 95, 96, 120)
    ]
    shape = boxes.distributions(rows)["train"]
    assert shape["sizes"] == {"small": 2, "medium": 3, "large": 2}
    assert boxes.size_class(32 * 32 - 1) == "small" and boxes.size_class(32 * 32) == "medium"
    assert boxes.size_class(96 * 96) == "large"
    # Aspect ratio: width / height on a log2 scale; a box and its transpose are mirror images.
    wide = boxes.distributions([image("w", aspect=4.0, classes=("cat",))])["train"]["aspect"]
    tall = boxes.distributions([image("t", aspect=0.25, classes=("cat",))])["train"]["aspect"]
    assert boxes.ASPECT_LABELS[wide.index(1)] == "4" and boxes.ASPECT_LABELS[tall.index(1)] == "1/4"
    assert shape["per_image"][1] == 7 and shape["images_by_class"] == {"cat": 7}


def test_eval_boxes_much_larger_than_train_boxes_are_a_split_skew():
    rows = (
        many(30, side=0.1, size=200)
        + many(25, "eval", side=0.9, size=200)
        + many(25, "test", side=0.1, size=200)
    )
    skew = [a for a in found_checks(rows) if a.check == checks.BOX_SPLIT_SKEW]
    assert [(a.split, a.feature) for a in skew] == [("eval", "box size (S/M/L)")]
    assert "Jensen-Shannon divergence 1.000 > 0.1" in skew[0].description
    # Too few boxes to compare: not a skew.
    assert not [
        a for a in found_checks(many(30) + many(5, "eval", side=0.9)) if a.check == checks.BOX_SPLIT_SKEW
    ]


def test_drift_between_two_spans_compares_the_class_mix_sizes_and_counts():
    before = boxes.distributions(many(30, classes=("cat",)) + many(30, classes=("dog",)))["train"]
    same = boxes.distributions(many(32, classes=("cat",)) + many(29, classes=("dog",)))["train"]
    rows, found = boxes.compare_box_spans(same, before, CheckOptions())
    assert found == [] and {r["feature"] for r in rows} == {
        spec.OBJECT_TEXT,
        "box size (S/M/L)",
        "box aspect ratio",
        "boxes per image",
    }
    # Span 2: mostly cats, large and three to an image.
    after = boxes.distributions(
        many(50, classes=("cat",) * 3, side=0.9, size=200) + many(5, classes=("dog",))
    )
    rows, found = boxes.compare_box_spans(after["train"], before, CheckOptions())
    drifted = {(a.check, a.feature): a for a in found}
    mix = drifted[(checks.DRIFT, spec.OBJECT_TEXT)]
    assert mix.severity == checks.ERROR and "L-infinity distance 0.468 > 0.1" in mix.description
    assert drifted[(checks.BOX_DRIFT, "box size (S/M/L)")].severity == checks.WARNING
    assert (checks.BOX_DRIFT, "boxes per image") in drifted
    assert (checks.BOX_DRIFT, "box aspect ratio") not in drifted  # Still square.
    assert boxes.js_divergence([1, 0], [0, 1]) == 1.0 and boxes.js_divergence([1, 1], [2, 2]) == 0.0
    # The previous span as the store gives it back (JSON, keys sorted): the same comparison.
    stored = json.loads(json.dumps(before, sort_keys=True))
    assert list(stored["sizes"]) != list(before["sizes"])
    assert boxes.compare_box_spans(same, stored, CheckOptions()) == boxes.compare_box_spans(
        same, before, CheckOptions()
    )


def test_box_issues_are_counted_per_reason_with_example_images():
    rows = [
        {spec.PATH: f"{i}.jpg", spec.STATUS: spec.INGESTED, spec.SPLIT: "train", spec.BOX_ISSUES: issues}
        for i, issues in enumerate(
            [["box_outside_image: x 140 > 128"], ["box_clipped: by 1 px", "degenerate_box: 0 px"], None]
        )
    ]
    issues = boxes.box_issues(rows)
    assert issues["counts"] == {"box_outside_image": 1, "box_clipped": 1, "degenerate_box": 1}
    assert issues["examples"]["box_outside_image"] == [
        {"path": "0.jpg", "split": "train", "detail": "x 140 > 128"}
    ]


def test_classification_keeps_its_label_checks_and_detection_leaves_them_to_the_boxes():
    rows = [
        {spec.PATH: f"{i}", spec.STATUS: spec.INGESTED, spec.REASON: None, spec.SPLIT: "train"}
        | {spec.LABEL: ("cat", "dog")[i % 2], spec.SHA256: f"h{i}"}
        for i in range(4)
    ]
    assert [a.check for a in checks.catalog_checks(rows, CheckOptions())] == [checks.MIN_CLASS_COUNT] * 2
    detection = [r | {spec.LABEL: None} for r in rows]
    assert checks.catalog_checks(detection, CheckOptions(), labels=["cat"], by_label=False) == []


def test_box_settings_are_validated_and_reach_the_check_options():
    config = load_config(None, {"validation": {"min_box_count": 3, "box_drift": 0.2}})
    options = config.validation.check_options()
    assert (options.min_box_count, options.box_drift, options.max_boxes_per_image) == (3, 0.2, 100)
    assert options.severity(checks.MIN_BOX_COUNT) == checks.ERROR
    with pytest.raises(ConfigError, match=r"validation.max_negative_share: 0-1"):
        load_config(None, {"validation": {"max_negative_share": 1.5}})
    with pytest.raises(ConfigError, match=r"validation: box_skew and box_drift must be in \(0, 1\]"):
        load_config(None, {"validation": {"box_skew": 0}})
    strict = load_config(None, {"validation": {"severities": {"box_drift": "error"}}})
    assert strict.validation.check_options().severity(checks.BOX_DRIFT) == checks.ERROR


def test_the_store_keeps_each_span_box_distributions(tmp_path):
    stats = tmp_path / "stats" / "Split-train"
    os.makedirs(stats)
    (stats / "FeatureStats.pb").write_bytes(b"")
    root = str(tmp_path / "store")
    shape = boxes.distributions(many(3))
    store.publish(root, 0, str(tmp_path / "stats"), "pass", boxes=shape)
    store.publish(root, 1, str(tmp_path / "stats"), "pass")  # Classification: no boxes.
    first, second = store.baseline_for(root, 1), store.baseline_for(root, 2)
    assert json.load(open(first.boxes)) == json.loads(json.dumps(shape)) and second.boxes == ""


def test_the_pipeline_takes_the_task_schema_and_builds_both_halves_of_a_detection_run(tmp_path):
    from pipelines import nodes as ids
    from pipelines.pipeline import create_components, schema_path

    config = load_config(None, {"task": "detection", "input": {"images": str(tmp_path)}})
    assert schema_path(config) == schemas.DETECTION_SCHEMA
    assert schema_path(config, kubeflow=True) == "/cvpipe/schemas/detection_schema.pbtxt"
    assert schema_path(load_config()) == schemas.DEFAULT_SCHEMA
    nodes = create_components(config, pipeline_root=str(tmp_path / "root"))
    assert nodes[-1].id == ids.DATA_GATE
    model_half = create_components(
        config, pipeline_root=str(tmp_path / "root"), push_root=str(tmp_path / "push")
    )
    built = {node.id for node in model_half}
    assert {ids.TUNER, ids.TRAINER, ids.EVALUATOR, ids.PUSHER, ids.TFLITE_EXPORTER, ids.EDGE_PUSHER} <= built
    assert ids.MODEL_REVIEW in built  # A detector's review page (it reads the task from the model).
    trainer = next(node for node in model_half if node.id == ids.TRAINER)
    assert '"task": "detection"' in trainer.exec_properties["custom_config"]


# End to end: two spans of sample scenes, the second without triangles.


@pytest.fixture(scope="module")
def scenes_report(tmp_path_factory):
    import yaml

    from components.data_checks.run import run_checks
    from components.validation_report.report import build_report
    from pipelines.cli import main

    root = tmp_path_factory.mktemp("scenes")
    config = root / "detection.yaml"
    config.write_text(yaml.safe_dump({"task": "detection"}))
    printed = []
    for span, seed in ((0, 1), (1, 2)):
        images = root / "images" / f"span-{span}"
        assert (
            main(["sample-data", str(images), "--kind", "scenes", "--count", "60", "--seed", str(seed)]) == 0
        )
        if span == 1:  # Every triangle goes: the class mix drifts and triangle becomes rare.
            coco = json.loads((images / "annotations.json").read_text())
            triangle = next(c["id"] for c in coco["categories"] if c["name"] == "triangle")
            coco["annotations"] = [a for a in coco["annotations"] if a["category_id"] != triangle]
            (images / "annotations.json").write_text(json.dumps(coco))
        args = ["ingest", "--images", str(root / "images" / "span-{SPAN}"), "--span", str(span)]
        args += ["--output", str(root / f"ingest-{span}"), "--config", str(config)]
        printed.append(_printed(main, args))
    empty = root / "empty"  # No TFDV statistics or anomalies: the box checks are the subject here.
    os.makedirs(empty)
    statistics = root / "statistics"
    os.makedirs(statistics / "Split-train")
    (statistics / "Split-train" / "FeatureStats.pb").write_bytes(b"")
    common = dict(
        statistics_uri=str(empty),
        schema_uri=schemas.DETECTION_SCHEMA,
        anomalies_uri=str(empty),
        options=load_config(str(config)).validation.check_options(),
    )
    first = run_checks(
        catalog_uri=str(root / "ingest-0"), examples_uri=str(root / "ingest-0" / "examples"), span=0, **common
    )
    store_root = str(root / "store")
    store.publish(store_root, 0, str(statistics), first["verdict"], boxes=first["objects"]["splits"])
    stored = store.baseline_for(store_root, 1)
    second = run_checks(
        catalog_uri=str(root / "ingest-1"),
        examples_uri=str(root / "ingest-1" / "examples"),
        span=1,
        baseline_span=stored.span,
        baseline_boxes=stored.boxes,
        **common,
    )
    os.makedirs(root / "checks")
    (root / "checks" / "checks.json").write_text(json.dumps(second))
    report = build_report(
        examples_uri=str(root / "ingest-1" / "examples"),
        catalog_uri=str(root / "ingest-1"),
        statistics_uri=str(empty),
        schema_uri=common["schema_uri"],
        checks_uri=str(root / "checks"),
        out_path=str(root / "report.html"),
    )
    return first, second, report, printed


def _printed(main, args):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


def test_ingest_counts_images_and_annotation_files_for_detection(scenes_report):
    printed = scenes_report[3][0]
    assert re.search(
        r"Found 61 input files under .*span-0 \(span 0\): 60 images, 1 annotation file\(s\), 0 to", printed
    )
    assert "classes: circle, square, triangle" in printed


def test_sample_scenes_pass_and_a_span_without_triangles_fails_on_its_boxes(scenes_report):
    first, second, _, _ = scenes_report
    assert first["verdict"] == "pass", first["reason"]
    assert set(first["objects"]["splits"]) == {"train", "eval", "test"}
    assert first["objects"]["splits"]["train"]["boxes"] > 50
    titles = {a["title"]: a for a in second["anomalies"]}
    assert (
        "class 'triangle' has 0 train boxes"
        in titles["min_box_count [train/image/object/class/text]"]["description"]
    )
    assert (
        "drifted from the previous span: L-infinity"
        in titles["drift [train/image/object/class/text]"]["description"]
    )
    assert second["verdict"] == "fail" and second["drift"]["baseline_span"] == 0
    assert any(r["feature"] == "box size (S/M/L)" for r in second["drift"]["features"])


def test_detection_report_opens_offline_and_draws_the_boxes(scenes_report):
    from tests.test_data_checks import SCREENSHOTS, open_offline, section

    _, second, report, _ = scenes_report
    requests, text, images = open_offline(report, os.path.join(SCREENSHOTS, "report-detection.png"))
    assert requests == [f"file://{report}"] and images and all(images)
    for shown in (
        "Objects (detection)",
        "Boxes per class",
        "Box sizes (COCO)",
        "span 0 train",
        "(no objects)",
    ):
        assert shown in text, shown
    page = open(report, encoding="utf-8").read()
    objects = section(page, "objects")
    samples = objects.split("Samples per class, boxes drawn")[1]
    drawn = samples.count('<rect class="box"')
    # Each sample figure draws exactly its image's boxes.
    figures = samples.split('<figure class="boxed"')[1:]
    assert drawn == sum(int(re.search(r'aria-label="(\d+) boxes"', f).group(1)) for f in figures) > 20
    assert ">circle</text>" in samples and ">square</text>" in samples
    assert '<section id="classes">' not in page and "<script" not in page and "https://" not in page
    assert "L-infinity" in section(page, "drift") and "box size (S/M/L)" in section(page, "drift")
