"""Detection input pipeline: gzipped TFRecords -> (uint8 images, targets [B, A, 5]).

Per example (cached after the first pass): decode and resize to the model size (``decode_and_resize``,
the same function serving uses; normalised boxes stay valid through a resize), boxes padded to
``max_boxes`` with class -1. Per batch: box-aware augmentation (one ``crop_and_resize`` per image
doing the flip, zoom and shift, the boxes moved by the same map, clipped, and dropped when less
than half of them stays in view), then target assignment (``boxes.assign_targets``).

    dataset = make_dataset(["out/examples/Split-train/*.gz"], params, batch_size=32, training=True)
"""

from __future__ import annotations

import tensorflow as tf

from components.image_example_gen import spec
from components.image_model.data import read_records, without_autotuning
from components.image_model.detector import boxes
from components.image_model.detector.network import DetectorParams
from components.image_model.model import decode_and_resize

BOX_KEYS = (spec.OBJECT_YMIN, spec.OBJECT_XMIN, spec.OBJECT_YMAX, spec.OBJECT_XMAX)
FEATURES = {
    spec.IMAGE: tf.io.FixedLenFeature([], tf.string),
    **{key: tf.io.VarLenFeature(tf.float32) for key in BOX_KEYS},
    spec.OBJECT_LABEL: tf.io.VarLenFeature(tf.int64),
}
MIN_VISIBLE = 0.5  # A box keeps its label while at least this share of its area stays in view.


def parse_boxes(parsed: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Parsed VarLen features -> (boxes [N, 4] ymin, xmin, ymax, xmax; classes [N] int32)."""
    corners = tf.stack([tf.sparse.to_dense(parsed[key]) for key in BOX_KEYS], axis=-1)
    classes = tf.cast(tf.sparse.to_dense(parsed[spec.OBJECT_LABEL]), tf.int32)
    return tf.reshape(corners, [-1, 4]), classes


def pad_boxes(corners: tf.Tensor, classes: tf.Tensor, max_boxes: int) -> tuple[tf.Tensor, tf.Tensor]:
    corners, classes = corners[:max_boxes], classes[:max_boxes]
    pad = max_boxes - tf.shape(classes)[0]
    corners = tf.pad(corners, [[0, pad], [0, 0]])
    classes = tf.pad(classes, [[0, pad]], constant_values=-1)
    return tf.ensure_shape(corners, [max_boxes, 4]), tf.ensure_shape(classes, [max_boxes])


def random_windows(batch: tf.Tensor, params: DetectorParams, seed: tf.Tensor) -> tf.Tensor:
    """[B, 4] crop windows (y1, x1, y2, x2) in normalised input coordinates: zoom, shift, flip.

    A window larger than the image zooms out (the rest is black), smaller zooms in; x1 > x2
    mirrors the image (``tf.image.crop_and_resize`` samples it right to left). ``seed`` (shape
    [2]) fixes the draw: a stateful random op in a parallel map draws in whichever order the
    batches' calls run, so the same seed would augment differently on every run.
    """
    zoom_seed, center_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    low, high = params.scale_range
    log_zoom = tf.random.stateless_uniform(
        [batch, 1], zoom_seed, minval=tf.math.log(low), maxval=tf.math.log(high)
    )
    side = 1.0 / tf.exp(log_zoom)  # Window side, as a fraction of the image.
    lo = tf.minimum(side / 2, 1 - side / 2) - params.shift
    hi = tf.maximum(side / 2, 1 - side / 2) + params.shift
    center = lo + (hi - lo) * tf.random.stateless_uniform([batch, 2], center_seed)
    y1x1, y2x2 = center - side / 2, center + side / 2
    windows = tf.concat([y1x1, y2x2], axis=-1)
    if params.flip:
        flip = tf.random.stateless_uniform([batch, 1], flip_seed) < 0.5
        windows = tf.where(flip, tf.gather(windows, [0, 3, 2, 1], axis=1), windows)
    return windows


def warp(
    images: tf.Tensor, corners: tf.Tensor, classes: tf.Tensor, windows: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Crops ``windows`` [B, 4] out of ``images`` [B, H, W, C] (same output size) and moves the
    boxes [B, G, 4] with the pixels; boxes mostly out of view become padding (class -1)."""
    shape = tf.shape(images)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    warped = tf.image.crop_and_resize(
        tf.cast(images, tf.float32), windows, tf.range(shape[0]), shape[1:3], method="bilinear"
    )
    warped = tf.cast(tf.clip_by_value(tf.round(warped), 0.0, 255.0), images.dtype)

    def axis_map(values, start, end, size):
        # crop_and_resize samples output pixel i at input index start*(size-1) + i*k, with
        # k = (end-start)*(size-1)/(size-1) for an output as large as the input. Pixel edges
        # (normalised b, pixel b*size) map through the same affine map in continuous coordinates.
        k = (end - start)[:, None]
        pixel = values * size - 0.5 - start[:, None] * (size - 1)
        return (pixel / k + 0.5) / size

    y1, x1, y2, x2 = tf.unstack(windows, axis=-1)
    ya = axis_map(corners[..., 0], y1, y2, height)
    yb = axis_map(corners[..., 2], y1, y2, height)
    xa = axis_map(corners[..., 1], x1, x2, width)
    xb = axis_map(corners[..., 3], x1, x2, width)
    moved = tf.stack([tf.minimum(ya, yb), tf.minimum(xa, xb), tf.maximum(ya, yb), tf.maximum(xa, xb)], -1)
    clipped = tf.clip_by_value(moved, 0.0, 1.0)

    def area(b):
        return tf.maximum(b[..., 2] - b[..., 0], 0.0) * tf.maximum(b[..., 3] - b[..., 1], 0.0)

    keep = (classes >= 0) & (area(clipped) >= MIN_VISIBLE * area(moved)) & (area(clipped) > 0)
    return warped, tf.where(keep[..., None], clipped, 0.0), tf.where(keep, classes, -1)


def make_dataset(
    patterns: list[str],
    params: DetectorParams,
    *,
    batch_size: int,
    training: bool,
    cache: bool = True,
    seed: int | None = None,
    with_targets: bool = True,
) -> tf.data.Dataset:
    """Batches of (uint8 images, targets [B, A, 5]); training data augmented, shuffled, repeated.

    ``with_targets=False`` yields (images, padded boxes, padded classes) instead (tests, debugging).
    """
    dataset = read_records(patterns, stable_order=training and cache)

    def parse(record):
        parsed = tf.io.parse_single_example(record, FEATURES)
        image = decode_and_resize(parsed[spec.IMAGE], params.image_size, params.channels)
        return (image, *pad_boxes(*parse_boxes(parsed), params.max_boxes))

    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=False)
    if training:

        def augment(batch, seed):
            images, corners, classes = batch
            return warp(images, corners, classes, random_windows(tf.shape(images)[0], params, seed))

        seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)  # One pair a batch.
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    if with_targets:
        anchors, strides = params.anchors(), params.anchor_strides()

        def targets(images, corners, classes):
            encoded, target_class = boxes.assign_targets(
                corners, classes, anchors, strides, radius=params.center_radius
            )
            return images, tf.concat([encoded, tf.cast(target_class, tf.float32)[..., None]], axis=-1)

        dataset = dataset.map(targets, num_parallel_calls=tf.data.AUTOTUNE)
    return without_autotuning(dataset.prefetch(tf.data.AUTOTUNE))
