"""ModelReview: the metrics, the choice of images, the executor on a real SavedModel and TFLite model,
and the page in headless Chromium."""

import dataclasses
import json
import os

import numpy as np
import pytest

from components.model_review import review, spec
from components.model_review.render import render_review
from tests.test_docs import python_blocks

LABELS = ["circle", "square", "triangle"]


def test_per_class_precision_recall_f1_and_confusion_by_hand():
    # 6 images: circle 3 (2 right, 1 called square), square 2 (both right), triangle 1 (called circle).
    truth = [0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 1, 0]
    report = review.classification_report(truth, predicted, LABELS)
    assert report["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert report["examples"] == 6 and report["accuracy"] == pytest.approx(4 / 6)
    circle, square, triangle = report["classes"]
    assert (circle["precision"], circle["recall"], circle["support"], circle["predicted"]) == (
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
        3,
        3,
    )
    assert circle["f1"] == pytest.approx(2 / 3)
    assert (square["precision"], square["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert square["f1"] == pytest.approx(0.8)
    # Never predicted: precision, recall and F1 are 0 (scikit-learn's zero_division=0).
    assert (triangle["precision"], triangle["recall"], triangle["f1"], triangle["predicted"]) == (0, 0, 0, 0)
    assert report["macro"]["f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert report["weighted"]["recall"] == pytest.approx(report["accuracy"])


def test_metrics_equal_scikit_learns_on_random_predictions_with_missing_classes():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    labels = [f"c{i}" for i in range(6)]
    truth = rng.choice([0, 1, 2, 4, 5], size=200)  # Class 3 has no image...
    wrong = rng.choice([0, 1, 3, 4], size=200)  # ...and 2 and 5 are never predicted.
    predicted = np.where(rng.random(200) < 0.6, truth, wrong)
    report = review.classification_report(truth, predicted, labels)
    every = list(range(len(labels)))
    assert report["confusion"] == metrics.confusion_matrix(truth, predicted, labels=every).tolist()
    p, r, f, s = metrics.precision_recall_fscore_support(truth, predicted, labels=every, zero_division=0)
    assert [c["precision"] for c in report["classes"]] == pytest.approx(p.tolist())
    assert [c["recall"] for c in report["classes"]] == pytest.approx(r.tolist())
    assert [c["f1"] for c in report["classes"]] == pytest.approx(f.tolist())
    assert [c["support"] for c in report["classes"]] == s.tolist()
    for average in ("macro", "weighted"):
        p, r, f, _ = metrics.precision_recall_fscore_support(
            truth, predicted, labels=every, average=average, zero_division=0
        )
        assert (report[average]["precision"], report[average]["recall"], report[average]["f1"]) == (
            pytest.approx(p),
            pytest.approx(r),
            pytest.approx(f),
        )
    assert report["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predicted))


def test_a_class_index_outside_the_labels_or_a_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="truth: class index 3 outside the 3 labels"):
        review.classification_report([0, 3], [0, 1], LABELS)
    with pytest.raises(ValueError, match="predicted: class index -1 outside"):
        review.classification_report([0, 1], [0, -1], LABELS)
    with pytest.raises(ValueError, match="2 true classes but 3 predictions"):
        review.classification_report([0, 1], [0, 1, 2], LABELS)
    with pytest.raises(ValueError, match="differ in shape"):
        review.disagreements(np.ones((2, 3)), np.ones((2, 2)), limit=5)


def test_examples_of_a_class_the_model_lacks_are_a_clear_error_naming_the_split():
    from components.model_review.run import SplitPredictions, assemble_review

    found = SplitPredictions("eval", np.array([0, 3]), ["a.jpg", "b.jpg"], np.full((2, 3), 1 / 3), {})
    message = r"split eval: truth: class index 3 outside the 3 labels of the model \(circle, square, tri"
    with pytest.raises(ValueError, match=message):
        assemble_review([found], LABELS, thumbnails=lambda split, indices: {}, model={})


def test_confident_mistakes_are_the_wrong_ones_surest_first_and_capped():
    probabilities = [
        [0.9, 0.1, 0.0],  # Right.
        [0.3, 0.6, 0.1],  # Wrong at 0.6.
        [0.05, 0.0, 0.95],  # Wrong at 0.95.
        [0.2, 0.7, 0.1],  # Right.
        [0.1, 0.8, 0.1],  # Wrong at 0.8.
    ]
    truth = [0, 0, 1, 1, 2]
    assert review.confident_mistakes(truth, probabilities, limit=10) == [2, 4, 1]
    assert review.confident_mistakes(truth, probabilities, limit=2) == [2, 4]


def test_disagreements_are_where_the_top_class_differs_largest_gap_first():
    reference = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.99, 0.01]])
    variant = np.array([[0.1, 0.9], [0.45, 0.55], [0.3, 0.7], [0.6, 0.4]])
    # Image 0 lost 0.8 of its class, image 1 only 0.1; images 2 and 3 keep the same top class.
    assert review.disagreements(reference, variant, limit=5) == [0, 1]
    assert review.disagreements(reference, reference, limit=5) == []


def test_learning_curves_pair_each_metric_with_its_validation_twin_and_trials_rank_by_score():
    history = {"epoch": [0, 1], "loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}
    history["images_per_second"] = [90.0, 400.0]
    assert review.learning_curves(history) == [
        ("loss", [("loss", [1.0, 0.5]), ("val_loss", [1.1, 0.7])]),
        ("images_per_second", [("images_per_second", [90.0, 400.0])]),
    ]
    trials = [{"trial_id": str(i), "score": score} for i, score in enumerate([0.5, None, 0.9])]
    assert [t["trial_id"] for t in review.ranked_trials(trials)] == ["2", "0", "1"]


def test_component_takes_optional_tflite_tuning_and_blessing_and_rejects_an_empty_name():
    from tfx import types
    from tfx.types import standard_artifacts

    from components.model_review.component import ModelReviewGen

    channels = {
        "examples": types.Channel(type=standard_artifacts.Examples),
        "model": types.Channel(type=standard_artifacts.Model),
        "model_run": types.Channel(type=standard_artifacts.ModelRun),
    }
    bare = ModelReviewGen(**channels, pipeline_name="cvpipe")
    assert set(bare.inputs) == {spec.EXAMPLES_KEY, spec.MODEL_KEY, spec.MODEL_RUN_KEY}
    assert set(bare.outputs) == {spec.REVIEW_KEY, spec.PAGE_KEY}
    assert bare.outputs[spec.REVIEW_KEY].type_name == spec.MODEL_REVIEW_TYPE == "components.ModelReview"
    with pytest.raises(ValueError, match="pipeline_name"):
        ModelReviewGen(**channels, pipeline_name=" ")


def test_pipeline_reviews_the_model_with_or_without_tuning_and_edge(tmp_path):
    from pipelines import pipeline
    from pipelines.config import load_config

    def review_inputs(overrides):
        config = load_config(None, {"input": {"images": str(tmp_path)}, **overrides})
        nodes = pipeline.create_components(config, pipeline_root=str(tmp_path / "r"), push_root=str(tmp_path))
        (node,) = [n for n in nodes if n.id == pipeline.MODEL_REVIEW]
        return {key: channel.producer_component_id for key, channel in node.inputs.items()}

    assert review_inputs({}) == {
        spec.EXAMPLES_KEY: pipeline.EXAMPLE_GEN,
        spec.MODEL_KEY: pipeline.TRAINER,
        spec.MODEL_RUN_KEY: pipeline.TRAINER,
        spec.TFLITE_MODEL_KEY: pipeline.TFLITE_EXPORTER,
        spec.TUNER_RESULTS_KEY: pipeline.TUNER,
        spec.BLESSING_KEY: pipeline.EVALUATOR,
    }
    assert set(review_inputs({"tuning": {"enabled": False}, "edge": {"enabled": False}})) == {
        spec.EXAMPLES_KEY,
        spec.MODEL_KEY,
        spec.MODEL_RUN_KEY,
        spec.BLESSING_KEY,
    }


@pytest.fixture(scope="module")
def reviewed(shapes_examples, tmp_path_factory):
    """The executor run on the sample shapes with real models: (review, artifacts, dirs).

    The SavedModel and the int8 TFLite model are two different untrained networks, so there are
    mistakes and disagreements to show whatever the seed: the review does not care whether a model
    is good, and training one would cost more than the rest of this file.
    """
    import tensorflow as tf
    from tfx.types import artifact_utils, standard_artifacts

    from components.artifacts import ModelReview, TFLiteModel
    from components.image_model import export
    from components.image_model.model import ModelParams, build_model
    from components.kfp_ui import HTMLPage
    from components.model_review.executor import Executor
    from components.tflite_exporter import convert
    from components.tflite_exporter import spec as tflite_spec

    examples_dir, labels, images_dir = shapes_examples
    root = tmp_path_factory.mktemp("review")
    tf.keras.utils.set_random_seed(1)
    params = ModelParams(num_classes=len(labels), image_size=32, width=8, depth=1)
    serving = root / "model" / "Format-Serving"
    export.export_serving_model(
        build_model(params),
        labels,
        str(serving),
        image_size=32,
        channels=3,
        params=dataclasses.asdict(params),
    )
    tflite = root / "tflite"
    tflite.mkdir()
    other = build_model(dataclasses.replace(params, input_dtype="float32"))
    images, _ = convert.load_split([f"{examples_dir}/Split-train/*"], 32, 3)
    int8 = convert.add_metadata(
        convert.convert(other, "int8", images[:16]),
        labels,
        name="shapes (int8)",
        version=tflite_spec.UNPUSHED_VERSION,
        description="test",
        author="test",
    )
    (tflite / "model_int8.tflite").write_bytes(int8)
    (tflite / tflite_spec.PARITY_FILE).write_text(
        json.dumps({"variants": [{"mode": "int8", "blessed": False, "reason": "agreement 0.3 < 0.98"}]})
    )
    run = root / "model_run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "images_per_second": 812.5}))
    history = {
        "epoch": [2, 3, 4],  # Resumed: epochs 0 and 1 ran before an interruption.
        "loss": [0.9, 0.6, 0.4],
        "sparse_categorical_accuracy": [0.6, 0.8, 0.9],
        "val_loss": [1.0, 0.7, 0.6],
        "val_sparse_categorical_accuracy": [0.55, 0.75, 0.8],
        "images_per_second": [95.0, 801.0, 812.5],
    }
    (run / "history.json").write_text(json.dumps(history))
    tuning = root / "tuner_results"
    tuning.mkdir()
    trials = [
        {"trial_id": "00", "score": 0.71, "hyperparameters": {"width": 8, "depth": 1}},
        {"trial_id": "01", "score": 0.93, "hyperparameters": {"width": 16, "depth": 2}},
    ]
    for t in trials:
        t.update(status="COMPLETED", tuner_id="tuner0", images_per_second=640.0)
        t.update(first_epoch_images_per_second=80.0)
    (tuning / "trials.json").write_text(json.dumps({"trials": trials, "worker_restarts": []}))
    blessing = root / "blessing"
    blessing.mkdir()
    (blessing / "NOT_BLESSED").write_text("")

    def artifact(cls, uri):
        a = cls()
        a.uri = str(uri)
        return [a]

    inputs = {
        spec.EXAMPLES_KEY: artifact(standard_artifacts.Examples, examples_dir),
        spec.MODEL_KEY: artifact(standard_artifacts.Model, root / "model"),
        spec.MODEL_RUN_KEY: artifact(standard_artifacts.ModelRun, run),
        spec.TFLITE_MODEL_KEY: artifact(TFLiteModel, tflite),
        spec.TUNER_RESULTS_KEY: artifact(standard_artifacts.TunerResults, tuning),
        spec.BLESSING_KEY: artifact(standard_artifacts.ModelBlessing, blessing),
    }
    outputs = {
        spec.REVIEW_KEY: artifact(ModelReview, root / "out" / "review"),  # Directories not made yet.
        spec.PAGE_KEY: artifact(HTMLPage, root / "out" / "page"),
    }
    Executor().Do(inputs, outputs, {spec.PIPELINE_NAME_KEY: "shapes"})
    out = artifact_utils.get_single_instance(outputs[spec.REVIEW_KEY])
    with open(os.path.join(out.uri, spec.REVIEW_FILE)) as f:
        result = json.load(f)
    dirs = {"serving": str(serving), "int8": str(tflite / "model_int8.tflite"), "images": images_dir}
    return result, outputs, dirs


def test_executor_reviews_every_held_out_split_with_the_savedmodel(reviewed, shapes_examples):
    from components.image_model import data
    from components.tflite_exporter import convert

    result, _, dirs = reviewed
    examples_dir = shapes_examples[0]
    assert [s["split"] for s in result["splits"]] == ["eval", "test"]
    assert result["labels"] == LABELS and result["blessed"] is False
    for s in result["splits"]:
        pattern = [f"{examples_dir}/Split-{s['split']}/*"]
        assert s["examples"] == data.count_records(pattern) == sum(map(sum, s["confusion"]))
        # The same accuracy through another path: Keras on the images as the training input decodes them.
        import tensorflow as tf

        images, labels = convert.load_split(pattern, 32, 3)
        keras_model = tf.keras.models.load_model(dirs["serving"], compile=False)
        predicted = keras_model.predict(images, verbose=0).argmax(axis=1)
        assert s["accuracy"] == pytest.approx(float(np.mean(predicted == labels)))
        assert s["confusion"] == review.classification_report(labels, predicted, LABELS)["confusion"]
    assert result["tuning"]["trials"][1]["score"] == 0.93 and result["history"]["epoch"] == [2, 3, 4]
    assert result["training"]["images_per_second"] == 812.5


def test_mistakes_and_disagreements_are_what_each_model_says_of_the_image_file(reviewed):
    from pipelines.predict import predict, predict_tflite

    result, _, dirs = reviewed
    mistakes = result["mistakes"]
    assert 0 < len(mistakes) <= spec.MAX_MISTAKES and result["mistakes_total"] >= len(mistakes)
    assert [m["score"] for m in mistakes] == sorted((m["score"] for m in mistakes), reverse=True)
    files = [os.path.join(dirs["images"], m["path"]) for m in mistakes]
    for m, (_, said) in zip(mistakes, predict(dirs["serving"], files)):
        assert said.label == m["predicted"] != m["label"]
        assert said.score == pytest.approx(m["score"], abs=1e-4)
        assert m["thumbnail"].startswith("data:image/jpeg;base64,")

    (int8,) = result["edge"]
    assert int8["mode"] == "int8" and int8["blessed"] is False and "agreement" in int8["reason"]
    assert int8["examples"] == sum(s["examples"] for s in result["splits"])
    shown = int8["disagreements"]
    assert 0 < len(shown) <= spec.MAX_DISAGREEMENTS and int8["disagreements_total"] >= len(shown)
    assert int8["agreement"] == pytest.approx(1 - int8["disagreements_total"] / int8["examples"])
    files = [os.path.join(dirs["images"], d["path"]) for d in shown]
    served = predict(dirs["serving"], files)
    edge = predict_tflite(dirs["int8"], files)
    for d, (_, by_saved), (_, by_edge) in zip(shown, served, edge):
        assert by_saved.label == d["reference"]["label"] != d["variant"]["label"] == by_edge.label
        assert by_edge.score == pytest.approx(d["variant"]["score"], abs=1e-4)
        assert d["thumbnail"].startswith("data:image/jpeg;base64,")
    assert [d["gap"] for d in shown] == sorted((d["gap"] for d in shown), reverse=True)


def test_review_page_opens_offline_in_chromium_with_every_section(reviewed):
    from tests.test_data_checks import SCREENSHOTS, open_offline

    result, outputs, _ = reviewed
    page_artifact = outputs[spec.PAGE_KEY][0]
    assert page_artifact.get_string_custom_property("file") == spec.PAGE_FILE
    path = os.path.join(outputs[spec.REVIEW_KEY][0].uri, spec.PAGE_FILE)
    with open(path, encoding="utf-8") as f:
        html = f.read()
    assert html == open(os.path.join(page_artifact.uri, spec.PAGE_FILE), encoding="utf-8").read()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    requests, text, images = open_offline(path, os.path.join(SCREENSHOTS, "model-review.png"))
    assert requests == [f"file://{path}"]  # Nothing but the file: no fetch, not even a failed one.
    assert "shapes model review: NOT blessed by the Evaluator" in text
    for shown in (
        "Per-class precision, recall and F1",
        "macro average",
        "Confusion matrix",
        "true \\ predicted",
        "Most confident mistakes",
        "TFLite against the SavedModel",
        "int8 disagrees with the SavedModel on",
        "agreement 0.3 < 0.98",
        "Tuning trials",
        "val_loss",
        "Training resumed at epoch 3",
        result["mistakes"][0]["path"],
    ):
        assert shown in text, shown
    tuning = html[html.index('id="tuning"') :]
    assert tuning.index("<td>01</td>") < tuning.index("<td>00</td>")  # The best trial first.
    expected = len(result["mistakes"]) + len(result["edge"][0]["disagreements"])
    assert len(images) == expected and all(images)  # Every thumbnail decodes.
    assert os.path.getsize(path) < 400_000


def test_page_links_to_the_data_report_and_says_what_a_run_lacks():
    bare = {"pipeline_name": "p", "labels": LABELS, "model": {}, "splits": [], "mistakes": [], "edge": None}
    html = render_review(bare, data_report_href="validation_report.html")
    assert 'href="validation_report.html"' in html and "not evaluated" in html
    for missing in ("No held-out split has images", "No TFLite export", "No tuning in this run"):
        assert missing in html, missing
    assert "No history.json" in html
    assert 'href="validation_report.html"' not in render_review(bare)


def test_readme_snippet_runs(capsys):
    (block,) = python_blocks("components/model_review/README.md")
    exec(block, {})
    assert capsys.readouterr().out.splitlines() == ["[[1, 1, 0], [0, 1, 0], [0, 0, 1]] 0.5", "True False"]
