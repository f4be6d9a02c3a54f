"""A detector's edge path: TFLiteExporter's variants and mAP gate, the EdgePusher, the TFLite-only
edge client (deployment/edge/detect.py) and `cvpipe predict` with boxes.

The detector is untrained but spread out (varied scores, boxes off-anchor) and exported for real.
Its mAP on the drawn boxes would be about 0 for every runtime, which gates nothing; so the eval
split's boxes are the SavedModel's own most confident detections: the SavedModel scores mAP@0.5 1.0
on them, and a variant scores what it keeps of the SavedModel's behaviour.
"""

import contextlib
import io
import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.image_example_gen import spec as example_spec
from components.image_model.detector import evaluation, tflite
from components.image_model.detector import export as detector_export
from components.image_model.detector.network import DetectorParams
from components.tflite_exporter import convert, detection, spec
from tests import conftest
from tests.conftest import encode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGE_PYTHON = os.path.join(ROOT, ".venv-edge", "bin", "python")
LABELS = ["circle", "square", "triangle"]  # The sample scenes' classes, in ingestion's order.
PARAMS = DetectorParams(num_classes=3, image_size=128, width=8, head_width=16)
PSEUDO_BOXES_PER_IMAGE = 3


def spread_out_detector(seed: int) -> tf.keras.Model:
    """An untrained detector whose heads give varied scores and boxes (conftest.spread_out_detector)."""
    return conftest.spread_out_detector(PARAMS, seed)


def rewrite_split(examples_dir: str, split: str, out_dir: str, boxes_of) -> None:
    """Copies a split's records with their boxes replaced by ``boxes_of(i, record) -> (boxes, classes)``."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_dir, f"Split-{split}", "*")))
    os.makedirs(os.path.join(out_dir, f"Split-{split}"))
    target = os.path.join(out_dir, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
    with tf.io.TFRecordWriter(target, options="GZIP") as writer:
        for i, record in enumerate(tf.data.TFRecordDataset(files, compression_type="GZIP")):
            example = tf.train.Example.FromString(record.numpy())
            boxes, classes = boxes_of(i, example)
            feature = example.features.feature
            for k, key in enumerate(evaluation.BOX_KEYS):  # ymin, xmin, ymax, xmax
                feature[key].float_list.value[:] = [b[k] for b in boxes]
            feature[example_spec.OBJECT_LABEL].int64_list.value[:] = [int(c) for c in classes]
            feature[example_spec.OBJECT_TEXT].bytes_list.value[:] = [LABELS[int(c)].encode() for c in classes]
            writer.write(example.SerializeToString())


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """(root, serving dir, pseudo-labelled examples, box-free examples, exporter outputs)."""
    from tfx.types import standard_artifacts

    from components.image_example_gen.discovery import discover
    from components.image_example_gen.ingest import IngestOptions, ingest
    from components.tflite_exporter.executor import Executor
    from pipelines.sample_data import write_sample_data

    root = tmp_path_factory.mktemp("detection_edge")
    model_dir = root / "model"
    serving = str(model_dir / "Format-Serving")  # Where the Trainer's Model artifact keeps it.
    model = spread_out_detector(3)
    detector_export.export_detector(model, LABELS, serving, PARAMS)

    write_sample_data(str(root / "images"), kind="scenes", count=48, seed=5)
    options = IngestOptions(splits=(("train", 1), ("eval", 1)), task="detection")
    ingest(
        discover(str(root / "images")),
        options,
        span=0,
        examples_dir=str(root / "ingested"),
        catalog_dir=str(root),
    )

    images, _ = detection.decoded_split([str(root / "ingested" / "Split-eval" / "*")], 128, 3)
    found = detection.reference_detections(serving, images, trained=model)
    # One score threshold for all images (so that every kept box outranks every other detection
    # of its class, wherever it is): the one that keeps about PSEUDO_BOXES_PER_IMAGE per image.
    scores = sorted((s for f in found for s in f["scores"]), reverse=True)
    threshold = scores[PSEUDO_BOXES_PER_IMAGE * len(found)]
    confident = []
    for f in found:
        keep = [i for i, s in enumerate(f["scores"]) if s > threshold]
        confident.append(([f["boxes"][i] for i in keep], [f["classes"][i] for i in keep]))
    pseudo, no_boxes = str(root / "pseudo"), str(root / "no_boxes")
    for out, boxes_of in ((pseudo, lambda i, _: confident[i]), (no_boxes, lambda i, _: ([], []))):
        rewrite_split(str(root / "ingested"), "eval", out, boxes_of)
        os.symlink(root / "ingested" / "Split-train", os.path.join(out, "Split-train"))

    trained = standard_artifacts.Model()
    trained.uri = str(model_dir)
    examples = standard_artifacts.Examples()
    examples.uri = pseudo
    out = spec.TFLiteModel()
    out.uri = str(root / "tflite")
    Executor().Do(
        {spec.MODEL_KEY: [trained], spec.EXAMPLES_KEY: [examples]},
        {spec.TFLITE_MODEL_KEY: [out]},
        {
            spec.MODES_KEY: json.dumps(["float32", "int8"]),
            spec.REPRESENTATIVE_COUNT_KEY: 16,
            spec.MAX_ACCURACY_DROP_KEY: 0.01,  # A classifier's limits: unused for a detector.
            spec.MIN_AGREEMENT_KEY: 0.99,
            spec.MAX_MAP_DROP_KEY: 0.1,  # Generous: the int8 variant loses about 0.01 here.
            spec.MODEL_NAME_KEY: "scenes",
            spec.AUTHOR_KEY: "Pi camera lab",
        },
    )
    return root, serving, pseudo, no_boxes, out


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_a_detector_is_told_apart_from_a_classifier_by_its_model_params(workspace, tmp_path):
    _, serving, _, _, _ = workspace
    assert detection.is_detector(serving)
    classifier = tmp_path / "classifier"
    os.makedirs(classifier / "assets")
    (classifier / "assets" / "model_params.json").write_text(json.dumps({"num_classes": 3, "image_size": 32}))
    assert not detection.is_detector(str(classifier))
    assert not detection.is_detector(str(tmp_path / "nothing"))


def test_a_detector_exports_only_float32_and_int8():
    with pytest.raises(ValueError, match="only as float32, int8; unsupported modes: float16, dynamic_range"):
        detection.check_modes(["int8", "float16", "dynamic_range"])
    assert detection.check_modes(["int8"]) == ["int8"]


def test_exporter_writes_both_variants_labels_and_a_blessed_parity_report(workspace):
    root, _, pseudo, _, out = workspace
    assert sorted(os.listdir(out.uri)) == [
        "labels.txt",
        "model_float32.tflite",
        "model_int8.tflite",
        "parity.json",
    ]
    assert read(os.path.join(out.uri, "labels.txt")).decode().split("\n") == [*LABELS, ""]
    assert out.get_int_custom_property(spec.BLESSED) == 1  # What the EdgePusher reads.
    assert out.get_string_custom_property(spec.SOURCE_MODEL) == str(root / "model")
    parity = json.loads(read(os.path.join(out.uri, "parity.json")))
    assert parity["task"] == "detection" and parity["blessed"] is True
    assert parity["limits"] == {"max_map_drop": 0.1}
    assert (parity["image_size"], parity["channels"], parity["representative_count"]) == (128, 3, 16)
    reference = parity["reference"]
    assert reference["map50"] == pytest.approx(1.0) and reference["eval_boxes"] >= 20, reference
    variants = {v["mode"]: v for v in parity["variants"]}
    assert list(variants) == ["float32", "int8"]
    for mode, v in variants.items():
        assert v["size_bytes"] == os.path.getsize(os.path.join(out.uri, f"model_{mode}.tflite"))
        assert v["map50_drop"] == pytest.approx(reference["map50"] - v["map50"])
        assert v["blessed"] and v["reason"] == "within limits", v
        assert 0 < v["latency_ms_median"] <= v["latency_ms_p90"]
    assert variants["float32"]["map50"] > 0.97, variants["float32"]  # The same network and NMS.
    assert variants["int8"]["size_bytes"] < variants["float32"]["size_bytes"] / 2


def test_the_reference_map_is_what_the_saved_model_scores_on_the_eval_split(workspace):
    _, serving, pseudo, _, out = workspace
    parity = json.loads(read(os.path.join(out.uri, "parity.json")))
    saved = evaluation.evaluate_saved_model(serving, [os.path.join(pseudo, "Split-eval", "*")])
    assert (parity["reference"]["map50"], parity["reference"]["map"]) == pytest.approx(
        (saved["map50"], saved["map"]), abs=1e-6
    )
    assert parity["reference"]["eval_boxes"] == saved["boxes"]


def test_variants_need_no_flex_op_and_carry_the_labels_and_names_in_their_metadata(workspace):
    _, _, _, _, out = workspace
    for mode in ("float32", "int8"):
        model = read(os.path.join(out.uri, f"model_{mode}.tflite"))
        ops = tflite.op_names(model)
        assert ops[-1] == tflite.POSTPROCESS_OP and not [op for op in ops if op.startswith("Flex")], mode
        meta, labels = convert.read_metadata(model)
        assert labels == LABELS
        assert (meta["name"], meta["version"], meta["author"]) == (
            f"scenes ({mode})",
            "unpushed",
            "Pi camera lab",
        )
        assert "Object detector over 3 labels" in meta["description"]
        subgraph = meta["subgraph_metadata"][0]
        runner = tf.lite.Interpreter(model_content=model)
        by_key = dict(
            zip(tflite.output_names(runner), [t["name"] for t in subgraph["output_tensor_metadata"]])
        )
        assert by_key == {
            "detection_boxes": "location",
            "detection_classes": "category",
            "detection_scores": "score",
            "num_detections": "number of detections",
        }


def test_gate_blesses_a_drop_within_the_limit_only():
    report = detection.DetectionVariantReport("int8", 10, map50=0.90, map=0.6)
    assert detection.gate(report, 0.91, max_map_drop=0.02).blessed and report.reason == "within limits"
    assert report.map50_drop == pytest.approx(0.01)
    assert not detection.gate(report, 0.95, max_map_drop=0.02).blessed
    assert report.reason.startswith("mAP@0.5 drop 0.0500 > 0.0200")
    assert detection.gate(report, 0.92, max_map_drop=0.02).blessed  # Exactly at the limit.
    improved = detection.DetectionVariantReport("float32", 10, map50=0.97, map=0.7)
    assert detection.gate(improved, 0.95, max_map_drop=0.0).blessed  # A gain is no drop.


def test_a_variant_from_the_wrong_network_is_not_blessed(workspace):
    _, serving, pseudo, _, _ = workspace
    wrong = tflite.convert_detector(serving, "float32", trained=spread_out_detector(11))
    parity = detection.check_parity(
        serving, {"float32": wrong}, [os.path.join(pseudo, "Split-eval", "*")], max_map_drop=0.5
    )
    (variant,) = parity["variants"]
    assert parity["reference"]["map50"] == pytest.approx(1.0) and variant["map50"] < 0.3, variant
    assert not variant["blessed"] and variant["reason"].startswith("mAP@0.5 drop"), variant
    assert parity["blessed"] is False


def test_an_eval_split_without_boxes_blesses_nothing_and_says_why(workspace):
    _, serving, _, no_boxes, out = workspace
    model = read(os.path.join(out.uri, "model_float32.tflite"))
    parity = detection.check_parity(
        serving, {"float32": model}, [os.path.join(no_boxes, "Split-eval", "*")], max_map_drop=0.5
    )
    assert parity["blessed"] is False and "have no boxes: no mAP to compare" in parity["reason"]
    assert parity["reference"]["map50"] is None and parity["reference"]["eval_examples"] > 0
    (variant,) = parity["variants"]
    assert (variant["blessed"], variant["map50"], variant["reason"]) == (False, None, parity["reason"])
    empty = detection.check_parity(serving, {"float32": model}, ["/nonexistent/*"], max_map_drop=0.5)
    assert empty["blessed"] is False and "no examples" in empty["reason"]


def test_exporter_component_takes_max_map_drop():
    from tfx import types
    from tfx.types import standard_artifacts

    from components.tflite_exporter.component import TFLiteExporter

    model, examples = (
        types.Channel(type=standard_artifacts.Model),
        types.Channel(type=standard_artifacts.Examples),
    )
    assert TFLiteExporter(model, examples).exec_properties[spec.MAX_MAP_DROP_KEY] == 0.02
    assert TFLiteExporter(model, examples, max_map_drop=0.05).exec_properties[spec.MAX_MAP_DROP_KEY] == 0.05
    with pytest.raises(ValueError, match="max_map_drop"):
        TFLiteExporter(model, examples, max_map_drop=-0.1)


def test_edge_pusher_pushes_a_detector_and_stamps_its_version_keeping_the_labels(workspace, tmp_path):
    from tfx.types import standard_artifacts

    from components.edge_pusher import spec as edge_spec
    from components.edge_pusher.executor import Executor

    _, _, _, _, tflite_model = workspace
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property(edge_spec.BLESSED, 1)
    serving = standard_artifacts.PushedModel()
    serving.set_int_custom_property(edge_spec.PUSHED, 1)
    serving.set_int_custom_property(edge_spec.PUSHED_VERSION, 1795466000)
    out = standard_artifacts.PushedModel()
    Executor().Do(
        {
            edge_spec.TFLITE_MODEL_KEY: [tflite_model],
            edge_spec.MODEL_BLESSING_KEY: [blessing],
            edge_spec.PUSHED_MODEL_KEY: [serving],
        },
        {edge_spec.PUSHED_EDGE_MODEL_KEY: [out]},
        {edge_spec.BASE_DIRECTORY_KEY: str(tmp_path / "edge"), edge_spec.MODEL_NAME_KEY: "scenes"},
    )
    target = out.get_string_custom_property(edge_spec.PUSHED_DESTINATION)
    assert os.path.basename(target) == "1795466000"
    for mode in ("float32", "int8"):
        model = read(os.path.join(target, f"model_{mode}.tflite"))
        meta, labels = convert.read_metadata(model)
        assert (meta["version"], meta["author"], labels) == ("1795466000", "Pi camera lab", LABELS)
        outputs = meta["subgraph_metadata"][0]["output_tensor_metadata"]
        assert [t["name"] for t in outputs if t.get("associated_files")] == ["category"]
    manifest = json.loads(read(os.path.join(target, "cvpipe_manifest.json")))
    assert manifest["metrics"]["task"] == "detection"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Scenes at the input size as PNG (no resampling anywhere), one of them stored turned with
    Exif orientation 6, and a wider one: (paths, upright pixels of the first three)."""
    from pipelines.sample_data import draw_scene

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(21)
    pixels = np.stack([np.asarray(draw_scene(rng)[0]) for _ in range(3)])
    paths = []
    for i, image in enumerate(pixels):
        paths.append(str(root / f"scene{i}.png"))
        (root / f"scene{i}.png").write_bytes(encode(Image.fromarray(image), "PNG"))
    exif = Image.Exif()
    exif[0x0112] = 6  # Displayed turned 90 degrees clockwise: stored turned anticlockwise.
    turned = Image.fromarray(pixels[0]).transpose(Image.Transpose.ROTATE_90)
    (root / "turned.png").write_bytes(encode(turned, "PNG", exif=exif))
    wide = Image.fromarray(np.concatenate([pixels[1], pixels[2]], axis=1))  # 256 x 128
    (root / "wide.jpg").write_bytes(encode(wide, "JPEG", quality=95))
    return paths + [str(root / "turned.png"), str(root / "wide.jpg")], pixels


def edge_client(args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    script = os.path.join(ROOT, "deployment", "edge", "detect.py")
    result = subprocess.run(
        [EDGE_PYTHON, script, *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_edge_client_without_tensorflow_finds_what_tflite_detect_finds(workspace, photos, tmp_path):
    _, _, _, _, out = workspace
    paths, pixels = photos
    for mode in ("float32", "int8"):
        model_path = os.path.join(out.uri, f"model_{mode}.tflite")
        args = [model_path, *paths, "--json", "--min-score", "0", "--annotate", str(tmp_path / mode)]
        printed = [json.loads(line) for line in edge_client(args).splitlines()]
        assert [p["image"] for p in printed] == paths
        interpreter = tf.lite.Interpreter(model_path=model_path)
        for i, image in enumerate(pixels):
            expected = tflite.detect(interpreter, image)
            got = printed[i]["detections"]
            assert (printed[i]["width"], printed[i]["height"]) == (128, 128)
            assert len(got) == expected["num_detections"] > 3, (mode, i)
            assert [d["score"] for d in got] == sorted((d["score"] for d in got), reverse=True)
            # At max_detections the op cuts the list at a score: which of the (nearly) tied lowest it
            # keeps may differ between runtimes (int8 scores come in steps of 1/256). Above that
            # score, each side's detections are the other's.
            cut = expected["detection_scores"].min() if len(got) == PARAMS.max_detections else -1.0
            cut += 1 / 256 if mode == "int8" else 1e-3
            boxes = expected["detection_boxes"][:, [1, 0, 3, 2]] * 128  # xmin, ymin, xmax, ymax pixels
            want = list(
                zip([LABELS[c] for c in expected["detection_classes"]], boxes, expected["detection_scores"])
            )

            def same(label, box, score, d):  # The edge client rounds boxes to 0.1 px, scores to 1e-4.
                return (
                    label == d["label"]
                    and np.allclose(box, d["box"], atol=0.06)
                    and abs(score - d["score"]) < 1e-4
                )

            assert len([d for d in got if d["score"] > cut]) > 10, (mode, i)
            for d in got:
                assert d["score"] <= cut or any(same(*w, d) for w in want), (mode, i, d)
            for w in want:
                assert w[2] <= cut or any(same(*w, d) for d in got), (mode, i, w)
        # The turned file is the first scene once upright: the same boxes on the displayed image.
        assert printed[3]["detections"] == printed[0]["detections"]
        assert (printed[4]["width"], printed[4]["height"]) == (256, 128)
        assert max(d["box"][2] for d in printed[4]["detections"]) > 128  # Pixels of the wide image.
        annotated = Image.open(tmp_path / mode / "scene0.png")
        assert annotated.size == (128, 128) and not np.array_equal(np.asarray(annotated), pixels[0])
    check = subprocess.run([EDGE_PYTHON, "-c", "import tensorflow"], capture_output=True)
    assert check.returncode != 0  # The edge environment really has no TensorFlow.


def test_the_deployment_readme_command_runs_on_a_pushed_model(workspace, photos):
    import re
    import shlex

    _, _, _, _, out = workspace
    with open(os.path.join(ROOT, "deployment", "README.md")) as f:
        (command,) = re.findall(r"^python deployment/edge/detect\.py .*$", f.read(), re.M)
    _, _, model, image, *flags = shlex.split(command)
    assert model.endswith("model_int8.tflite") and image.endswith(".jpg")
    printed = edge_client([os.path.join(out.uri, "model_int8.tflite"), photos[0][4], *flags])
    (result,) = [json.loads(line) for line in printed.splitlines()]
    assert result["image"] == photos[0][4] and all(d["score"] >= 0.5 for d in result["detections"])


def cvpipe(args) -> str:
    from pipelines.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return printed.getvalue()


def parse(printed: str) -> dict[str, list[tuple[str, float, list[float]]]]:
    found: dict[str, list] = {}
    for line in printed.strip().splitlines():
        path, label, *rest = line.split("\t")
        found.setdefault(path, [])
        if rest:
            found[path].append((label, float(rest[0]), [float(v) for v in rest[1].split(",")]))
    return found


def test_predict_prints_each_box_in_pixels_and_annotates_the_images(workspace, photos, tmp_path):
    root, serving, _, _, out = workspace
    paths, pixels = photos
    saved = parse(cvpipe(["predict", serving, *paths, "--min-score", "0", "--annotate", str(tmp_path / "a")]))
    assert list(saved) == paths
    for path, found in saved.items():
        assert found, path
        width = 256 if path.endswith("wide.jpg") else 128
        for label, score, (xmin, ymin, xmax, ymax) in found:
            assert label in LABELS and score >= 0.05  # The detector's own score threshold.
            assert 0 <= xmin <= xmax <= width and 0 <= ymin <= ymax <= 128
        assert [s for _, s, _ in found] == sorted((s for _, s, _ in found), reverse=True)
        annotated = Image.open(tmp_path / "a" / os.path.basename(path))
        assert annotated.size == (width, 128)
    assert saved[paths[3]] == saved[paths[0]]  # Exif orientation applied before detecting.
    drawn = np.asarray(Image.open(tmp_path / "a" / "scene0.png"))
    assert (drawn == (255, 40, 40)).all(axis=-1).sum() > 50  # Outlines and label backgrounds.

    # The .tflite file: the same best boxes (the SavedModel clips boxes before NMS, the TFLite op
    # after, so boxes crossing the border can be suppressed differently further down).
    model = os.path.join(out.uri, "model_float32.tflite")
    lite = parse(cvpipe(["predict", model, *paths[:3], "--min-score", "0.08"]))
    for path in paths[:3]:
        assert lite[path] and min(score for _, score, _ in lite[path]) >= 0.08
        for label, score, box in saved[path][:3]:
            assert any(
                label == other and score == pytest.approx(s, abs=1e-3) and box == pytest.approx(b, abs=0.3)
                for other, s, b in lite[path]
            ), (path, label, score, box)
