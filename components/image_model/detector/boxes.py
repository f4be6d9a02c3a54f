"""Anchors, the SSD box coder and target assignment, all in normalised image coordinates.

Boxes are ``(ymin, xmin, ymax, xmax)`` fractions of the image; anchors are center-size
``(ycenter, xcenter, h, w)``, the layout TFLite's ``TFLite_Detection_PostProcess`` op takes. The
coder is the TF Object Detection API's ``FasterRcnnBoxCoder`` with scale factors (10, 10, 5, 5):

    ty = (y - ya) / ha * 10,  tx = (x - xa) / wa * 10,  th = log(h / ha) * 5,  tw = log(w / wa) * 5

    >>> anchors = make_anchors(AnchorConfig(strides=(8, 16)), image_size=128)
    >>> anchors.shape  # 16x16 cells at stride 8, then 8x8 at stride 16
    TensorShape([320, 4])
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w: the TF OD API's (and TFLite's) defaults.


@dataclasses.dataclass(frozen=True)
class AnchorConfig:
    """One anchor per aspect ratio in every cell of every level; its size ``scale * stride``."""

    strides: tuple[int, ...] = (8, 16)
    scale: float = 2.5  # Anchor side in strides: 20 and 40 px at strides 8 and 16.
    aspect_ratios: tuple[float, ...] = (1.0,)  # Width / height.

    @property
    def per_cell(self) -> int:
        return len(self.aspect_ratios)

    @classmethod
    def from_dict(cls, values: dict) -> "AnchorConfig":
        return cls(
            strides=tuple(int(s) for s in values["strides"]),
            scale=float(values["scale"]),
            aspect_ratios=tuple(float(a) for a in values["aspect_ratios"]),
        )


def grid_size(image_size: int, stride: int) -> int:
    return math.ceil(image_size / stride)


def make_anchors(config: AnchorConfig, image_size: int) -> tf.Tensor:
    """[A, 4] float32 (ycenter, xcenter, h, w): levels in order, then rows, columns, aspect ratios.

    The order matches the network's output (each level's [n, n, per_cell] map flattened), so
    anchor *i* is the anchor of prediction *i*.
    """
    levels = []
    for stride in config.strides:
        n = grid_size(image_size, stride)
        centers = (tf.range(n, dtype=tf.float32) + 0.5) * stride / image_size
        cy, cx = tf.meshgrid(centers, centers, indexing="ij")
        side = config.scale * stride / image_size
        shapes = [(side / math.sqrt(a), side * math.sqrt(a)) for a in config.aspect_ratios]
        hw = tf.constant(shapes, tf.float32)  # [K, 2]
        center = tf.stack([cy, cx], axis=-1)[:, :, None, :]  # [n, n, 1, 2]
        level = tf.concat(
            [tf.broadcast_to(center, [n, n, len(shapes), 2]), tf.broadcast_to(hw, [n, n, len(shapes), 2])],
            axis=-1,
        )
        levels.append(tf.reshape(level, [-1, 4]))
    return tf.concat(levels, axis=0)


def anchor_strides(config: AnchorConfig, image_size: int) -> tf.Tensor:
    """[A] float32: the stride of each anchor's level, as a fraction of the image."""
    parts = [
        tf.fill([grid_size(image_size, s) ** 2 * config.per_cell], s / image_size) for s in config.strides
    ]
    return tf.concat(parts, axis=0)


def to_center(boxes: tf.Tensor) -> tf.Tensor:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=-1)


def to_corners(boxes: tf.Tensor) -> tf.Tensor:
    cy, cx, h, w = tf.unstack(boxes, axis=-1)
    return tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def encode(boxes: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
    """Corner boxes [..., A, 4] -> SSD encodings (ty, tx, th, tw) against anchors [A, 4]."""
    sy, sx, sh, sw = SCALE_FACTORS
    cy, cx, h, w = tf.unstack(to_center(boxes), axis=-1)
    ay, ax, ah, aw = tf.unstack(anchors, axis=-1)
    h, w = tf.maximum(h, 1e-8), tf.maximum(w, 1e-8)
    return tf.stack(
        [(cy - ay) / ah * sy, (cx - ax) / aw * sx, tf.math.log(h / ah) * sh, tf.math.log(w / aw) * sw],
        axis=-1,
    )


def decode(encodings: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
    """SSD encodings [..., A, 4] against anchors [A, 4] -> corner boxes (what TFLite's op does)."""
    sy, sx, sh, sw = SCALE_FACTORS
    ty, tx, th, tw = tf.unstack(encodings, axis=-1)
    ay, ax, ah, aw = tf.unstack(anchors, axis=-1)
    # exp of a wild early prediction must not overflow the loss: cap at e^4.
    h = tf.exp(tf.minimum(th / sh, 4.0)) * ah
    w = tf.exp(tf.minimum(tw / sw, 4.0)) * aw
    return to_corners(tf.stack([ty / sy * ah + ay, tx / sx * aw + ax, h, w], axis=-1))


def iou(a: tf.Tensor, b: tf.Tensor, *, generalized: bool = False) -> tf.Tensor:
    """Elementwise IoU (or GIoU) of corner boxes with broadcastable shapes [..., 4]."""
    ymin = tf.maximum(a[..., 0], b[..., 0])
    xmin = tf.maximum(a[..., 1], b[..., 1])
    ymax = tf.minimum(a[..., 2], b[..., 2])
    xmax = tf.minimum(a[..., 3], b[..., 3])
    inter = tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)
    area_a = tf.maximum(a[..., 2] - a[..., 0], 0.0) * tf.maximum(a[..., 3] - a[..., 1], 0.0)
    area_b = tf.maximum(b[..., 2] - b[..., 0], 0.0) * tf.maximum(b[..., 3] - b[..., 1], 0.0)
    union = area_a + area_b - inter
    result = inter / tf.maximum(union, 1e-10)
    if not generalized:
        return result
    hull = (tf.maximum(a[..., 2], b[..., 2]) - tf.minimum(a[..., 0], b[..., 0])) * (
        tf.maximum(a[..., 3], b[..., 3]) - tf.minimum(a[..., 1], b[..., 1])
    )
    return result - (hull - union) / tf.maximum(hull, 1e-10)


def assign_targets(
    boxes: tf.Tensor,
    classes: tf.Tensor,
    anchors: tf.Tensor,
    strides: tf.Tensor,
    *,
    radius: float = 1.5,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Which anchors learn which box: (encoded targets [B, A, 4], class [B, A] int32, -1 = background).

    ``boxes`` [B, G, 4] corners, ``classes`` [B, G] (-1 = padding). Each box goes to the anchors
    whose shape fits it best (the level and aspect ratio with the highest centred IoU), and there
    to the cells whose centres lie within ``radius`` strides of its centre and inside the box, plus
    always the nearest cell (so a tiny box still has one). An anchor claimed by two boxes learns the
    one whose centre is nearer (in strides).
    """
    valid = classes >= 0  # [B, G]
    g = to_center(boxes)[:, :, None, :]  # [B, G, 1, 4]
    a = anchors[None, None, :, :]  # [1, 1, A, 4]
    # Centred IoU of shapes: which anchor size fits each box.
    inter = tf.minimum(g[..., 2], a[..., 2]) * tf.minimum(g[..., 3], a[..., 3])
    shape_iou = inter / (g[..., 2] * g[..., 3] + a[..., 2] * a[..., 3] - inter)  # [B, G, A]
    best_shape = shape_iou >= tf.reduce_max(shape_iou, axis=-1, keepdims=True) - 1e-6
    stride = strides[None, None, :]
    dy, dx = tf.abs(a[..., 0] - g[..., 0]), tf.abs(a[..., 1] - g[..., 1])
    inside = (dy <= tf.minimum(radius * stride, g[..., 2] / 2)) & (
        dx <= tf.minimum(radius * stride, g[..., 3] / 2)
    )
    distance = tf.maximum(dy, dx) / stride  # Chebyshev, in strides.
    big = tf.constant(1e9, tf.float32)
    nearest_distance = tf.reduce_min(tf.where(best_shape, distance, big), axis=-1, keepdims=True)
    nearest = distance <= nearest_distance + 1e-6
    candidate = valid[:, :, None] & best_shape & (inside | nearest)  # [B, G, A]
    cost = tf.where(candidate, distance, big)
    owner = tf.argmin(cost, axis=1, output_type=tf.int32)  # [B, A]
    positive = tf.reduce_any(candidate, axis=1)
    matched_boxes = tf.gather(boxes, owner, batch_dims=1)  # [B, A, 4]
    matched_classes = tf.gather(classes, owner, batch_dims=1)
    targets = tf.where(positive[..., None], encode(matched_boxes, anchors), 0.0)
    return targets, tf.where(positive, tf.cast(matched_classes, tf.int32), -1)
