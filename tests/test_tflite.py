"""TFLite variants: quantisation types, metadata, parity gate, the device-side edge client."""

import glob
import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from components.image_model import export
from components.image_model.training import TrainSpec, train
from components.tflite_exporter import convert, spec
from components.tflite_exporter.export import export_variants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGE_PYTHON = os.path.join(ROOT, ".venv-edge", "bin", "python")


@pytest.fixture(scope="module")
def edge_model(shapes_examples, tmp_path_factory):
    examples_dir, labels, images_dir = shapes_examples
    root = tmp_path_factory.mktemp("edge")
    spec = TrainSpec(
        train_patterns=[f"{examples_dir}/Split-train/*"],
        eval_patterns=[f"{examples_dir}/Split-eval/*"],
        test_patterns=[],
        labels=labels,
        serving_model_dir=str(root / "serving"),
        model_run_dir=str(root / "run"),
        backup_dir=str(root / "backup"),
        image_size=32,
        epochs=8,
        batch_size=16,
        hyperparameters={"width": 12, "depth": 1, "learning_rate": 0.004},
    )
    train(spec)
    parity = export_variants(
        str(root / "serving"),
        examples_dir,
        str(root / "tflite"),
        modes=list(convert.MODES),
        representative_count=60,
        max_accuracy_drop=0.05,
        min_agreement=0.9,
        model_name="shapes",
        author="Pi camera lab",
    )
    return root, parity, labels, images_dir


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_int8_variant_has_integer_input_and_output(edge_model):
    root, _, _, _ = edge_model
    int8 = tf.lite.Interpreter(model_path=str(root / "tflite" / "model_int8.tflite"))
    assert int8.get_input_details()[0]["dtype"] == np.uint8
    assert int8.get_output_details()[0]["dtype"] == np.uint8
    assert int8.get_input_details()[0]["quantization"] == pytest.approx((1.0, 0), abs=0.05)
    ops = {op["op_name"] for op in int8._get_ops_details()}
    assert "CONV_2D" in ops
    float32 = tf.lite.Interpreter(model_path=str(root / "tflite" / "model_float32.tflite"))
    assert float32.get_input_details()[0]["dtype"] == np.float32
    assert list(float32.get_input_details()[0]["shape"]) == [1, 32, 32, 3]


def test_metadata_carries_labels_normalisation_and_names(edge_model):
    root, _, labels, _ = edge_model
    meta, packed = convert.read_metadata(read(root / "tflite" / "model_int8.tflite"))
    assert packed == labels
    assert meta["name"] == "shapes (int8)" and meta["author"] == "Pi camera lab"
    assert meta["version"] == spec.UNPUSHED_VERSION  # The EdgePusher stamps the pushed version in.
    unit = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]
    assert unit["options"] == {"mean": [0.0], "std": [1.0]}


def test_parity_report_covers_every_variant_and_int8_is_smallest(edge_model):
    root, parity, _, _ = edge_model
    on_disk = json.loads((root / "tflite" / "parity.json").read_text())
    assert on_disk == parity
    variants = {v["mode"]: v for v in parity["variants"]}
    assert set(variants) == set(convert.MODES)
    # A tiny test network: fixed flatbuffer and metadata bytes weigh more here than in bench/edge.py.
    assert (
        variants["int8"]["size_bytes"] < variants["float16"]["size_bytes"] < variants["float32"]["size_bytes"]
    )
    assert variants["float32"]["agreement"] == 1.0
    for v in variants.values():
        assert 0 < v["latency_ms_median"] <= v["latency_ms_p90"]
    assert parity["limits"] == {"max_accuracy_drop": 0.05, "min_agreement": 0.9}


def test_exporter_blesses_variants_within_the_limits_and_not_the_artefact_with_one_outside(
    shapes_examples, edge_model, tmp_path, monkeypatch
):
    """Measured figures, not made-up ones: the trained network's float32 variant agrees with it;
    an untrained network converted in its place as the dynamic_range variant does not."""
    from components.image_model.model import ModelParams, build_model

    root, _, labels, _ = edge_model
    untrained = build_model(
        ModelParams(num_classes=len(labels), image_size=32, width=12, depth=1, input_dtype="float32")
    )
    real_convert = convert.convert

    def convert_untrained_as_dynamic_range(network, mode, representative=None):
        return real_convert(untrained if mode == "dynamic_range" else network, mode, representative)

    monkeypatch.setattr(convert, "convert", convert_untrained_as_dynamic_range)
    parity = export_variants(
        str(root / "serving"),
        shapes_examples[0],
        str(tmp_path / "tflite"),
        modes=["float32", "dynamic_range"],
        representative_count=30,
        max_accuracy_drop=0.05,
        min_agreement=0.9,
        model_name="shapes",
    )
    inside, outside = parity["variants"]
    assert (inside["mode"], inside["blessed"], inside["reason"]) == ("float32", True, "within limits")
    assert inside["agreement"] >= 0.9
    assert outside["mode"] == "dynamic_range" and outside["agreement"] < 0.9
    assert not outside["blessed"] and "agreement" in outside["reason"], outside
    assert parity["blessed"] is False


def test_pushed_tflite_metadata_names_the_pushed_version_and_the_configured_author(edge_model, tmp_path):
    from tensorflow_lite_support.metadata.python.metadata import MetadataDisplayer
    from tfx.types import standard_artifacts

    from components.edge_pusher import spec as edge_spec
    from components.edge_pusher.executor import Executor

    root, _, labels, _ = edge_model
    tflite = spec.TFLiteModel()
    tflite.uri = str(root / "tflite")
    tflite.set_int_custom_property(spec.BLESSED, 1)
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property(edge_spec.BLESSED, 1)
    serving = standard_artifacts.PushedModel()
    serving.set_int_custom_property(edge_spec.PUSHED, 1)
    serving.set_int_custom_property(edge_spec.PUSHED_VERSION, 1795466000)
    out = standard_artifacts.PushedModel()
    Executor().Do(
        {
            edge_spec.TFLITE_MODEL_KEY: [tflite],
            edge_spec.MODEL_BLESSING_KEY: [blessing],
            edge_spec.PUSHED_MODEL_KEY: [serving],
        },
        {edge_spec.PUSHED_EDGE_MODEL_KEY: [out]},
        {edge_spec.BASE_DIRECTORY_KEY: str(tmp_path / "edge"), edge_spec.MODEL_NAME_KEY: "shapes"},
    )
    target = out.get_string_custom_property(edge_spec.PUSHED_DESTINATION)
    assert os.path.basename(target) == "1795466000"
    for mode in convert.MODES:
        displayer = MetadataDisplayer.with_model_file(os.path.join(target, spec.MODEL_FILE.format(mode=mode)))
        meta = json.loads(displayer.get_metadata_json())
        assert (meta["version"], meta["author"]) == ("1795466000", "Pi camera lab"), mode
        (label_file,) = displayer.get_packed_associated_file_list()
        assert displayer.get_associated_file_buffer(label_file).decode().splitlines() == labels


def test_exporter_author_defaults_to_cvpipe_and_is_configurable():
    from tfx import types
    from tfx.types import standard_artifacts

    from components.tflite_exporter.component import TFLiteExporter

    model, examples = (
        types.Channel(type=standard_artifacts.Model),
        types.Channel(type=standard_artifacts.Examples),
    )
    assert TFLiteExporter(model, examples).exec_properties[spec.AUTHOR_KEY] == "cvpipe"
    exporter = TFLiteExporter(model, examples, author="Pi camera lab")
    assert exporter.exec_properties[spec.AUTHOR_KEY] == "Pi camera lab"
    with pytest.raises(ValueError, match="author"):
        TFLiteExporter(model, examples, author="")


def test_gate_rejects_an_accuracy_drop_or_low_agreement():
    report = convert.VariantReport(
        "int8", 10, accuracy=0.90, agreement=0.99, latency_ms_median=1, latency_ms_p90=2
    )
    assert not convert.gate(report, 0.95, max_drop=0.01, min_agreement=0.98).blessed
    assert "accuracy drop" in report.reason
    report.accuracy, report.agreement = 0.95, 0.5
    assert not convert.gate(report, 0.95, 0.01, 0.98).blessed and "agreement" in report.reason
    report.agreement = 0.99
    assert convert.gate(report, 0.95, 0.01, 0.98).blessed


def test_representative_sample_covers_every_class():
    labels = np.array([0] * 50 + [1] * 3 + [2] * 40)
    chosen = convert.representative_sample(np.arange(len(labels)), labels, 9)
    assert sorted(set(labels[chosen])) == [0, 1, 2] and len(chosen) == 9


def test_edge_client_without_tensorflow_matches_the_serving_model(edge_model):
    root, _, labels, images_dir = edge_model
    images = sorted(glob.glob(os.path.join(images_dir, "*", "*.jpg")))[::4][:40]
    serving = tf.saved_model.load(str(root / "serving")).signatures[export.SERVING_SIGNATURE]
    expected = [serving(image_bytes=tf.constant([read(p)]))["label"][0].numpy().decode() for p in images]
    for mode, min_agreement in (("float32", 0.97), ("int8", 0.9)):
        script = os.path.join(ROOT, "deployment", "edge", "classify.py")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        result = subprocess.run(
            [EDGE_PYTHON, script, str(root / "tflite" / f"model_{mode}.tflite"), *images],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        got = [line.split("\t")[1] for line in result.stdout.strip().splitlines()]
        agreement = np.mean([a == b for a, b in zip(got, expected)])
        assert len(got) == len(images) and agreement >= min_agreement, (mode, agreement)
    check = subprocess.run([EDGE_PYTHON, "-c", "import tensorflow"], capture_output=True)
    assert check.returncode != 0  # The edge environment really has no TensorFlow.


def test_predict_on_a_tflite_file_keeps_labels_with_spaces(tmp_path, jpeg_bytes):
    from components.image_model.model import ModelParams, build_model
    from pipelines.predict import predict

    labels = ["red circle", "blue square", "green  triangle"]
    network = build_model(ModelParams(num_classes=3, image_size=16, width=4, depth=1, input_dtype="float32"))
    model = convert.add_metadata(
        convert.convert(network, "float32"), labels, name="m", version="1", description="d", author="a"
    )
    assert convert.read_metadata(model)[1] == labels
    (tmp_path / "model.tflite").write_bytes(model)
    (tmp_path / "image.jpg").write_bytes(jpeg_bytes)
    ((_, result),) = predict(str(tmp_path / "model.tflite"), [str(tmp_path / "image.jpg")])
    assert result.label in labels, result


def test_predict_gives_the_same_labels_for_the_tflite_file_and_the_savedmodel(edge_model):
    from pipelines.predict import predict

    root, _, _, images_dir = edge_model
    images = sorted(glob.glob(os.path.join(images_dir, "*", "*.jpg")))[1::6][:20]
    saved = [r.label for _, r in predict(str(root / "serving"), images)]
    lite = [r.label for _, r in predict(str(root / "tflite" / "model_float32.tflite"), images)]
    assert saved == lite
