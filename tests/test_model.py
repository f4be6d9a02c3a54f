"""The model, its input pipeline and its exported signatures."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from components.image_example_gen import spec
from components.image_model import data, export
from components.image_model.model import ModelParams, build_model

SIZE = 32


def records(examples_dir, split="eval"):
    files = sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz")))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


@pytest.fixture(scope="module")
def exported(shapes_examples, tmp_path_factory):
    examples_dir, labels, _ = shapes_examples
    model = build_model(ModelParams(num_classes=len(labels), image_size=SIZE, width=8, depth=1))
    train = data.make_dataset(
        [f"{examples_dir}/Split-train/*"], image_size=SIZE, channels=3, batch_size=16, training=True, seed=0
    )
    model.fit(train, steps_per_epoch=5, epochs=1, verbose=0)
    path = str(tmp_path_factory.mktemp("model") / "serving")
    export.export_serving_model(model, labels, path, image_size=SIZE, channels=3)
    return model, tf.saved_model.load(path), path


def test_model_takes_uint8_images_and_outputs_class_probabilities():
    model = build_model(ModelParams(num_classes=4, image_size=SIZE, width=8, depth=2))
    out = model(tf.zeros([2, SIZE, SIZE, 3], tf.uint8))
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out.numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert any("input_scale" in w.name for w in model.trainable_weights)


def test_training_input_path_and_serving_signature_agree_on_raw_bytes(shapes_examples, exported):
    examples_dir, _, _ = shapes_examples
    model, loaded, _ = exported
    images, _ = next(
        iter(
            data.make_dataset(
                [f"{examples_dir}/Split-eval/*"], image_size=SIZE, channels=3, batch_size=8, training=False
            )
        )
    )
    raw = [
        tf.train.Example.FromString(r).features.feature[spec.IMAGE].bytes_list.value[0]
        for r in records(examples_dir)[:8]
    ]
    served = loaded.signatures[export.SERVING_SIGNATURE](image_bytes=tf.constant(raw))
    np.testing.assert_allclose(
        served["probabilities"].numpy(), model(images, training=False).numpy(), atol=1e-5
    )
    assert served["class_index"].numpy().tolist() == np.argmax(served["probabilities"], axis=1).tolist()


def test_examples_signature_matches_the_bytes_signature(shapes_examples, exported):
    examples_dir, labels, _ = shapes_examples
    _, loaded, path = exported
    serialized = records(examples_dir)[:4]
    raw = [
        tf.train.Example.FromString(r).features.feature[spec.IMAGE].bytes_list.value[0] for r in serialized
    ]
    by_example = loaded.signatures[export.EXAMPLES_SIGNATURE](examples=tf.constant(serialized))
    by_bytes = loaded.signatures[export.SERVING_SIGNATURE](image_bytes=tf.constant(raw))
    np.testing.assert_allclose(by_example["probabilities"], by_bytes["probabilities"], atol=1e-6)
    assert set(by_bytes["label"].numpy().astype(str)) <= set(labels)
    assert export.read_labels(path) == labels


def test_bad_bytes_in_a_request_give_a_clear_error_and_serving_continues(shapes_examples, exported):
    from pipelines.predict import op_error_message

    _, loaded, _ = exported
    serve = loaded.signatures[export.SERVING_SIGNATURE]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        serve(image_bytes=tf.constant([b"definitely not an image"]))
    assert "Unknown image file format" in op_error_message(info.value)
    good = (
        tf.train.Example.FromString(records(shapes_examples[0])[0])
        .features.feature[spec.IMAGE]
        .bytes_list.value[0]
    )
    assert serve(image_bytes=tf.constant([good]))["probabilities"].shape == (1, 3)


def test_predict_reads_the_highest_version_of_a_serving_directory(shapes_examples, exported, tmp_path):
    from components.serving_pusher.push import push_directory
    from pipelines.predict import predict

    model, _, path = exported
    renamed = [f"v2 {label}" for label in shapes_examples[1]]  # Another model: other labels.
    newer = str(tmp_path / "newer")
    export.export_serving_model(model, renamed, newer, image_size=SIZE, channels=3)
    push_directory(newer, str(tmp_path / "serving"), "m", {}, version=2000)
    push_directory(path, str(tmp_path / "serving"), "m", {}, version=1000)  # Pushed last, but lower.
    image = sorted(glob.glob(os.path.join(shapes_examples[2], "circle", "*.jpg")))[0]
    (_, result), (_, bad) = predict(str(tmp_path / "serving" / "m"), [image, "/nonexistent.jpg"])
    assert result.label in renamed and 0 < result.score <= 1
    ((_, older),) = predict(str(tmp_path / "serving" / "m" / "1000"), [image])
    assert older.label in shapes_examples[1]
    assert bad.error and "cannot read" in bad.error


@pytest.mark.parametrize(
    "algorithm,expected",
    [
        ("random", "RandomSearch"),
        ("hyperband", "Hyperband"),
        ("bayesian", "BayesianOptimization"),
    ],
)
def test_tuning_algorithm_comes_from_the_config(tmp_path, algorithm, expected):
    from components.image_model.tuning import TuneSpec, make_tuner

    spec = TuneSpec(
        train_patterns=[],
        eval_patterns=[],
        labels=["a", "b"],
        directory=str(tmp_path),
        algorithm=algorithm,
        image_size=32,
        search_space={"width": [8], "depth": [1]},
    )
    tuner = make_tuner(spec, overwrite=True)
    assert expected in [cls.__name__ for cls in type(tuner).__mro__]
    assert set(tuner.oracle.hyperparameters.values) == {"width", "depth"}


def test_unknown_tuning_algorithm_is_rejected(tmp_path):
    from components.image_model.tuning import TuneSpec, make_tuner

    with pytest.raises(ValueError, match="tuning.algorithm"):
        make_tuner(TuneSpec([], [], ["a", "b"], str(tmp_path), algorithm="grid"), overwrite=True)


def _write_records(serialized, directory, shards):
    """``serialized`` spread round-robin over ``shards`` gzipped TFRecord files in ``directory``."""
    os.makedirs(directory)
    for shard in range(shards):
        path = os.path.join(directory, f"data_tfrecord-{shard:05d}-of-{shards:05d}.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in serialized[shard::shards]:
                writer.write(record)


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_training_batches_do_not_depend_on_the_order_beam_wrote_the_records_in(
    shapes_examples, tmp_path, task
):
    """Beam writes a split's records in another order and other files on every ingestion: the same
    examples and seed must still train on the same batches (a cached dataset sorts by path)."""
    examples_dir, labels, _ = shapes_examples
    serialized = records(examples_dir, "train")
    _write_records(serialized, str(tmp_path / "as_written"), shards=2)
    _write_records(serialized[::-1], str(tmp_path / "rewritten"), shards=3)

    def first_batches(directory):
        patterns = [str(tmp_path / directory / "*.gz")]
        tf.keras.utils.set_random_seed(0)  # As a fit does: the detector's augmentation draws too.
        if task == "detection":
            from components.image_model.detector import data as detection_data
            from components.image_model.detector.network import DetectorParams

            params = DetectorParams(num_classes=len(labels), image_size=64, width=8, head_width=16)
            dataset = detection_data.make_dataset(patterns, params, batch_size=8, training=True, seed=0)
        else:
            dataset = data.make_dataset(
                patterns, image_size=SIZE, channels=3, batch_size=8, training=True, seed=0
            )
        return [images.numpy() for images, _ in dataset.take(3)]

    for same, other in zip(first_batches("as_written"), first_batches("rewritten")):
        np.testing.assert_array_equal(same, other)


def test_training_datasets_run_without_the_autotuning_thread(shapes_examples):
    """tf.data's autotuning thread made deleting a fit's iterator wait out its sleep (8-17 s at the
    end of about every second fit and trial, TF 2.16): cvpipe's datasets run without it."""
    from components.image_model.detector import data as detection_data
    from components.image_model.detector.network import DetectorParams

    examples_dir, labels, _ = shapes_examples
    patterns = [f"{examples_dir}/Split-train/*"]
    for training in (True, False):
        classifier = data.make_dataset(patterns, image_size=SIZE, channels=3, batch_size=8, training=training)
        detector = detection_data.make_dataset(
            patterns, DetectorParams(num_classes=len(labels), image_size=64), batch_size=8, training=training
        )
        assert classifier.options().autotune.enabled is False
        assert detector.options().autotune.enabled is False


def test_a_small_training_split_trains_more_epochs_to_reach_min_steps():
    from components.image_model.detector.training import DetectionTrainSpec
    from components.image_model.training import TrainSpec, with_min_steps

    common = dict(
        train_patterns=[],
        eval_patterns=[],
        test_patterns=[],
        labels=["a"],
        serving_model_dir="s",
        model_run_dir="r",
        backup_dir="b",
    )
    small = DetectionTrainSpec(**common, epochs=24, min_steps=600)
    assert with_min_steps(small, steps_per_epoch=5).epochs == 120  # 160 photos at batch 32.
    assert with_min_steps(small, steps_per_epoch=7).epochs == 86  # Rounded up: at least 600 steps.
    assert with_min_steps(small, steps_per_epoch=25).epochs == 24  # Enough steps already.
    assert with_min_steps(TrainSpec(**common, epochs=15), steps_per_epoch=1).epochs == 15  # 0: off.
