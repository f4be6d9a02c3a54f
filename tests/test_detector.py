"""The detector: box coding, target assignment, box-aware augmentation, NMS, export and a tiny run."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from components.image_example_gen import spec
from components.image_model.detector import boxes, data, evaluation, export
from components.image_model.detector.network import DetectorParams
from components.image_model.detector.training import DetectionTrainSpec, train
from components.image_model.export import EXAMPLES_SIGNATURE, SERVING_SIGNATURE
from tests.conftest import encode

PARAMS = DetectorParams(num_classes=3, image_size=128)


def corners(*pixel_boxes, size=128):
    """(ymin, xmin, ymax, xmax) in pixels -> normalised float32 [N, 4]."""
    return tf.constant(np.array(pixel_boxes, np.float32) / size)


# --- Anchors, box coder, assignment ------------------------------------------------------------


def test_anchors_are_center_size_cells_of_each_level_in_output_order():
    anchors = PARAMS.anchors().numpy()
    assert anchors.shape == (16 * 16 + 8 * 8, 4)
    np.testing.assert_allclose(anchors[0], np.array([4, 4, 20, 20]) / 128)  # Row 0, column 0 at stride 8.
    np.testing.assert_allclose(anchors[1], np.array([4, 12, 20, 20]) / 128)  # Then along the row.
    np.testing.assert_allclose(anchors[256], np.array([8, 8, 40, 40]) / 128)  # Stride 16 follows.
    strides = PARAMS.anchor_strides().numpy()
    assert set(strides[:256]) == {8 / 128} and set(strides[256:]) == {16 / 128}
    wide = boxes.make_anchors(boxes.AnchorConfig(strides=(16,), aspect_ratios=(1.0, 2.0)), 128).numpy()
    assert wide.shape == (128, 4) and wide[1, 3] / wide[1, 2] == pytest.approx(2.0)


def test_encoding_a_box_against_anchors_and_decoding_it_gives_the_box_back():
    rng = np.random.default_rng(0)
    anchors = PARAMS.anchors()
    ymin, xmin = rng.uniform(0, 0.8, size=(2, 320))
    h, w = rng.uniform(0.05, 0.4, size=(2, 320))
    truth = tf.constant(np.stack([ymin, xmin, ymin + h, xmin + w], -1), tf.float32)
    encoded = boxes.encode(truth, anchors)
    np.testing.assert_allclose(boxes.decode(encoded, anchors).numpy(), truth.numpy(), atol=1e-6)
    # The SSD coder with the TF OD API's scales: a box equal to its anchor encodes as zeros, one
    # twice as high and shifted by half the anchor's height as (5, 0, 5 log 2, 0).
    anchor = anchors[:1]
    cy, cx, ah, aw = anchor.numpy()[0]
    shifted = tf.constant([[cy + ah / 2 - ah, cx - aw / 2, cy + ah / 2 + ah, cx + aw / 2]], tf.float32)
    np.testing.assert_allclose(
        boxes.encode(shifted, anchor).numpy(), [[5.0, 0.0, 5 * np.log(2.0), 0.0]], atol=1e-5
    )


def test_assignment_gives_small_boxes_to_stride_8_large_to_stride_16_and_targets_decode_to_them():
    small, large = (20, 30, 34, 44), (60, 50, 104, 94)  # 14 and 44 pixels.
    truth = corners(small, large, (0, 0, 0, 0))[None]
    classes = tf.constant([[2, 0, -1]])
    anchors, strides = PARAMS.anchors(), PARAMS.anchor_strides()
    targets, target_class = boxes.assign_targets(truth, classes, anchors, strides)
    target_class = target_class.numpy()[0]
    positive = np.nonzero(target_class >= 0)[0]
    small_anchors = positive[target_class[positive] == 2]
    large_anchors = positive[target_class[positive] == 0]
    assert len(small_anchors) >= 1 and all(small_anchors < 256)
    assert len(large_anchors) >= 4 and all(large_anchors >= 256)
    decoded = boxes.decode(targets[0], anchors).numpy()
    np.testing.assert_allclose(
        decoded[small_anchors], np.repeat(truth[0, :1], len(small_anchors), 0), atol=1e-6
    )
    np.testing.assert_allclose(
        decoded[large_anchors], np.repeat(truth[0, 1:2], len(large_anchors), 0), atol=1e-6
    )
    # Every positive anchor's centre is inside its box; the negatives' targets are zero.
    centres = anchors.numpy()[large_anchors, :2]
    assert np.all((centres >= truth[0, 1, :2]) & (centres <= truth[0, 1, 2:]))
    assert not targets.numpy()[0][target_class < 0].any()


def test_an_image_without_boxes_has_no_positive_anchor():
    truth, classes = data.pad_boxes(tf.zeros([0, 4]), tf.zeros([0], tf.int32), 5)
    _, target_class = boxes.assign_targets(
        truth[None], classes[None], PARAMS.anchors(), PARAMS.anchor_strides()
    )
    assert (target_class.numpy() == -1).all()


# --- Augmentation ------------------------------------------------------------------------------


def red_rectangle(top=20, left=30, bottom=50, right=70, size=128):
    """A dark image with a red rectangle (pixel rows top..bottom-1, columns left..right-1)."""
    pixels = np.full((size, size, 3), 30, np.uint8)
    pixels[top:bottom, left:right] = (255, 0, 0)
    return tf.constant(pixels), corners((top, left, bottom, right), size=size)


def red_extent(image):
    pixels = image.numpy().astype(int)
    red = (pixels[..., 0] > 140) & (pixels[..., 1] < 100)
    rows, cols = np.nonzero(red)
    size = pixels.shape[0]
    return np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]) / size


@pytest.mark.parametrize(
    "window",
    [
        (0.0, 0.0, 1.0, 1.0),  # Identity.
        (0.0, 1.0, 1.0, 0.0),  # Horizontal flip.
        (0.1, 0.2, 0.8, 0.9),  # Zoom in and shift.
        (-0.2, 1.1, 1.1, -0.2),  # Zoom out, shift and flip.
    ],
)
def test_a_warp_moves_the_box_with_the_pixels(window):
    image, box = red_rectangle()
    warped, moved, classes = data.warp(image[None], box[None], tf.constant([[1]]), tf.constant([window]))
    assert classes.numpy().tolist() == [[1]]
    np.testing.assert_allclose(moved.numpy()[0, 0], red_extent(warped[0]), atol=1.5 / 128)


def test_random_augmentation_keeps_every_visible_box_on_its_rectangle_and_drops_boxes_out_of_view():
    tf.random.set_seed(1)
    image, box = red_rectangle(top=40, left=40, bottom=80, right=90)
    batch = 16
    windows = data.random_windows(batch, PARAMS, tf.constant([1, 2]))
    images = tf.repeat(image[None], batch, 0)
    warped, moved, classes = data.warp(
        images, tf.repeat(box[None], batch, 0), tf.ones([batch, 1], tf.int32), windows
    )
    assert (classes.numpy() == 1).sum() >= batch // 2
    flipped = windows.numpy()[:, 1] > windows.numpy()[:, 3]
    assert 0 < flipped.sum() < batch
    for i in range(batch):
        if classes[i, 0] == 1:
            np.testing.assert_allclose(moved.numpy()[i, 0], red_extent(warped[i]), atol=1.5 / 128)
    # A window that keeps only a sliver of the box: the box goes (it would teach a wrong target).
    _, gone, gone_class = data.warp(
        image[None], box[None], tf.constant([[1]]), tf.constant([[0.0, 0.0, 0.33, 0.33]])
    )
    assert gone_class.numpy().tolist() == [[-1]] and not gone.numpy().any()


# --- Post-processing and evaluation -------------------------------------------------------------


def test_nms_keeps_one_of_duplicate_boxes_and_labels_each_detection():
    anchors = PARAMS.anchors()
    num_anchors = anchors.shape[0]
    target = corners((20, 20, 50, 50), (80, 80, 110, 110))
    raw = np.zeros([1, num_anchors, 4 + 3], np.float32)
    raw[..., 4:] = -10.0  # Background everywhere.
    for index, (box, cls, logit) in enumerate([(0, 1, 3.0), (0, 1, 2.0), (1, 2, 1.0)]):
        anchor = [17 * 16 + 4, 17 * 16 + 5, 200][index]  # Two anchors see the first box, one the second.
        raw[0, anchor, :4] = boxes.encode(target[box : box + 1], anchors[anchor : anchor + 1]).numpy()[0]
        raw[0, anchor, 4 + cls] = logit
    out = export.postprocess(tf.constant(raw), anchors, PARAMS, tf.constant(["circle", "square", "triangle"]))
    assert out["num_detections"].numpy().tolist() == [2.0]
    np.testing.assert_allclose(out["detection_boxes"][0, :2].numpy(), target.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        out["detection_scores"][0, :2].numpy(), 1 / (1 + np.exp([-3.0, -1.0])), rtol=1e-5
    )
    assert out["detection_classes"][0, :3].numpy().tolist() == [1.0, 2.0, 0.0]
    assert out["detection_labels"][0, :3].numpy().tolist() == [b"square", b"triangle", b""]


def test_coco_map_is_one_for_perfect_detections_and_drops_for_a_wrong_class():
    truth = [
        {"width": 128, "height": 64, "boxes": [[0.1, 0.1, 0.4, 0.3], [0.5, 0.5, 0.9, 0.8]], "classes": [0, 1]}
    ]
    found = [{"boxes": truth[0]["boxes"], "scores": [0.9, 0.8], "classes": [0, 1]}]
    assert evaluation.coco_map(truth, found, 2)["map"] == pytest.approx(1.0)
    wrong = [{"boxes": truth[0]["boxes"], "scores": [0.9, 0.8], "classes": [0, 0]}]
    assert evaluation.coco_map(truth, wrong, 2)["map50"] == pytest.approx(0.5)


def test_train_spec_and_params_survive_json():
    spec_ = DetectionTrainSpec(["a"], ["b"], [], ["x"], "s", "r", "k", hyperparameters={"width": 8})
    assert DetectionTrainSpec.from_json(spec_.to_json()) == spec_
    params = spec_.model_params()
    assert params.width == 8 and DetectorParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


# --- A tiny run: ingest, train a few steps, export, load, answer --------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from components.image_example_gen.discovery import discover
    from components.image_example_gen.imaging import ImageOptions
    from components.image_example_gen.ingest import IngestOptions, ingest
    from pipelines.sample_data import write_sample_data

    root = tmp_path_factory.mktemp("detector")
    write_sample_data(str(root / "scenes"), kind="scenes", count=30, seed=2)
    options = IngestOptions(
        image=ImageOptions(pixel_properties=False), splits=(("train", 4), ("eval", 1)), task="detection"
    )
    ingest(
        discover(str(root / "scenes")),
        options,
        span=0,
        examples_dir=str(root / "examples"),
        catalog_dir=str(root),
    )
    with open(root / "examples" / spec.LABELS_FILE) as f:
        labels = f.read().split()
    train_spec = DetectionTrainSpec(
        train_patterns=[str(root / "examples" / "Split-train" / "*.gz")],
        eval_patterns=[str(root / "examples" / "Split-eval" / "*.gz")],
        test_patterns=[str(root / "examples" / "Split-eval" / "*.gz")],
        labels=labels,
        serving_model_dir=str(root / "serving"),
        model_run_dir=str(root / "model_run"),
        backup_dir=str(root / "backup"),
        hyperparameters={"width": 8, "head_width": 16},
        epochs=2,
        steps_per_epoch=2,
        batch_size=8,
    )
    metrics = train(train_spec)
    return train_spec, metrics, root


def test_a_tiny_training_run_exports_a_model_with_the_od_api_outputs(tiny_run):
    train_spec, metrics, root = tiny_run
    assert 0.0 <= metrics["test_map"] <= 1.0 and 0.0 <= metrics["test_map50"] <= 1.0
    assert os.path.exists(os.path.join(train_spec.model_run_dir, "metrics.json"))
    assert not os.path.exists(train_spec.backup_dir)
    serving = train_spec.serving_model_dir
    assert export.read_params(serving) == train_spec.model_params()
    with open(os.path.join(serving, "assets", "labels.txt")) as f:
        assert f.read().split() == ["circle", "square", "triangle"]

    loaded = tf.saved_model.load(serving)
    assert set(loaded.signatures) == {SERVING_SIGNATURE, EXAMPLES_SIGNATURE}
    serve = loaded.signatures[SERVING_SIGNATURE]
    assert list(serve.structured_input_signature[1]) == ["image_bytes"]
    # A non-square, non-model-size image: boxes stay fractions of it.
    photo = encode(Image.new("RGB", (96, 64), (20, 20, 20)), "PNG")
    with open(root / "scenes" / "scene_00000.jpg", "rb") as f:
        scene = f.read()
    out = serve(image_bytes=tf.constant([scene, photo]))
    assert set(out) == set(export.OUTPUT_KEYS)
    expected = {
        "detection_boxes": ([2, 100, 4], tf.float32),
        "detection_scores": ([2, 100], tf.float32),
        "detection_classes": ([2, 100], tf.float32),
        "detection_labels": ([2, 100], tf.string),
        "num_detections": ([2], tf.float32),
    }
    assert {k: (v.shape.as_list(), v.dtype) for k, v in out.items()} == expected
    count = int(out["num_detections"][0])
    assert set(out["detection_labels"][0, :count].numpy()) <= {b"circle", b"square", b"triangle"}
    assert not out["detection_labels"][0, count:].numpy().any()
    boxes_ = out["detection_boxes"].numpy()
    assert boxes_.min() >= 0.0 and boxes_.max() <= 1.0

    # The tf.Example signature (for TFMA) answers the same for the same image.
    example = tf.train.Example()
    example.features.feature[spec.IMAGE].bytes_list.value.append(scene)
    by_example = loaded.signatures[EXAMPLES_SIGNATURE](examples=tf.constant([example.SerializeToString()]))
    np.testing.assert_allclose(
        by_example["detection_scores"][0].numpy(), out["detection_scores"][0].numpy(), atol=1e-5
    )


def test_the_training_input_is_augmented_images_and_targets_for_every_anchor(tiny_run):
    train_spec, _, _ = tiny_run
    params = train_spec.model_params()
    dataset = data.make_dataset(train_spec.train_patterns, params, batch_size=4, training=True, seed=0)
    images, targets = next(iter(dataset))
    assert images.dtype == tf.uint8 and images.shape == (4, 128, 128, 3)
    assert targets.shape == (4, 320, 5)
    classes = targets[..., 4].numpy()
    assert set(np.unique(classes)) <= {-1.0, 0.0, 1.0, 2.0}


def test_a_drawn_scene_is_read_with_its_boxes_on_the_shapes(tmp_path):
    """Examples -> padded boxes: the parsed boxes cover the drawn pixels (no axis swapped)."""
    image = Image.new("RGB", (128, 128), (10, 10, 10))
    ImageDraw.Draw(image).rectangle([30, 20, 69, 49], fill=(255, 0, 0))  # x 30-69, y 20-49.
    example = tf.train.Example()
    feature = example.features.feature
    feature[spec.IMAGE].bytes_list.value.append(encode(image, "PNG"))
    for key, value in zip(data.BOX_KEYS, (20 / 128, 30 / 128, 50 / 128, 70 / 128)):
        feature[key].float_list.value.append(value)
    feature[spec.OBJECT_LABEL].int64_list.value.append(1)
    path = str(tmp_path / "one.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        writer.write(example.SerializeToString())
    dataset = data.make_dataset([path], PARAMS, batch_size=1, training=False, with_targets=False)
    images, padded, classes = next(iter(dataset))
    assert classes.numpy()[0, :2].tolist() == [1, -1]
    np.testing.assert_allclose(padded.numpy()[0, 0], red_extent(images[0]), atol=1e-6)
