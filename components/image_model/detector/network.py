"""The detector network and its loss.

Backbone: the classifier's residual blocks (``model.conv_block`` / ``identity_block``) after a
stride-2 stem, one stage per stride (4, 8, 16, ...). Neck: a small top-down FPN to the head
levels (strides 8 and 16 by default). Head per level and branch: two 3x3 conv-BN-ReLU, then one 1x1
convolution giving, for each anchor of the cell, 4 box encodings (ty, tx, th, tw) and one logit
per class (sigmoid, no background class). Box and class branches are separate (a decoupled head,
as in YOLOX: with one shared branch the box loss took the features and classes were not learnt).

The model's single output ``raw`` is [B, A, 4 + num_classes] in anchor order (``boxes.make_anchors``):
``raw[..., :4]`` are the box encodings and ``sigmoid(raw[..., 4:])`` the class scores, exactly the
two tensors TFLite's ``TFLite_Detection_PostProcess`` op takes (with the anchors as a constant).

    >>> params = DetectorParams(num_classes=3, image_size=128, width=8, head_width=16)
    >>> build_detector(params)(tf.zeros([1, 128, 128, 3], tf.uint8)).shape
    TensorShape([1, 320, 7])
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import tensorflow as tf

from components.image_model.detector import boxes
from components.image_model.model import Scale, _conv_bn, conv_block, identity_block

keras = tf.keras
layers = tf.keras.layers


@dataclasses.dataclass(frozen=True)
class DetectorParams:
    """Everything that defines the network, its anchors, loss and post-processing (JSON-able)."""

    num_classes: int
    image_size: int = 128
    channels: int = 3
    width: int = 16  # Filters of the first stage (stride 4); doubles per stage.
    head_width: int = 48  # FPN and head filters.
    head_depth: int = 2  # 3x3 conv-BN-ReLU layers in each head branch (box and class, per level).
    strides: tuple[int, ...] = (8, 16)  # Head levels; the backbone's last stage is the coarsest.
    anchor_scale: float = 2.5  # Anchor side in strides.
    aspect_ratios: tuple[float, ...] = (1.0,)
    center_radius: float = 1.5  # Assignment: cells within this many strides of a box centre.
    learning_rate: float = 0.004  # Peak of the warm-up + cosine schedule.
    warmup_fraction: float = 0.05
    weight_decay: float = 5e-4
    box_weight: float = 2.0  # GIoU loss weight (the L1 loss on encodings has weight 1).
    quality_scores: bool = True  # Scores learn the IoU of their box (quality focal loss), not 1.
    gamma: float = 2.0  # Focal modulation.
    flip: bool = True
    scale_range: tuple[float, float] = (0.7, 1.4)  # Random zoom (>1 zooms in).
    shift: float = 0.15  # Random translation beyond the zoom's own, as a fraction of the image.
    max_boxes: int = 50  # Boxes kept per image (padding for batching).
    max_detections: int = 100
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    input_dtype: str = "uint8"

    @property
    def anchor_config(self) -> boxes.AnchorConfig:
        return boxes.AnchorConfig(
            strides=self.strides, scale=self.anchor_scale, aspect_ratios=self.aspect_ratios
        )

    def anchors(self) -> tf.Tensor:
        return boxes.make_anchors(self.anchor_config, self.image_size)

    def anchor_strides(self) -> tf.Tensor:
        return boxes.anchor_strides(self.anchor_config, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["anchors"] = dataclasses.asdict(self.anchor_config)  # For readers without this code.
        values["box_coder_scales"] = list(boxes.SCALE_FACTORS)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DetectorParams":
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        for key in ("strides", "aspect_ratios", "scale_range"):
            if key in kept:
                kept[key] = tuple(kept[key])
        return cls(**kept)

    @classmethod
    def from_hyperparameters(cls, values: dict[str, Any], **fixed) -> "DetectorParams":
        """Configured or tuned values (width, head_width, learning_rate, ...) plus fixed fields."""
        return cls.from_dict({**values, **fixed})


def _backbone(x, params: DetectorParams) -> dict[int, tf.Tensor]:
    """Feature maps by stride: stem (stride 2), then a residual stage per stride 4, 8, 16, ..."""
    x = _conv_bn(x, params.width, 3, strides=2, name="stem")
    features, stride, stage = {}, 2, 0
    while stride < max(params.strides):
        filters = params.width * 2**stage
        x = conv_block(x, filters, name=f"stage{stage}_conv")
        x = identity_block(x, filters, name=f"stage{stage}_identity")
        stride *= 2
        features[stride] = x
        stage += 1
    return features


def build_detector(params: DetectorParams) -> keras.Model:
    """The uncompiled detector: uint8 images [B, S, S, C] -> raw [B, A, 4 + num_classes]."""
    size = params.image_size
    for stride in params.strides:
        if size % stride:
            raise ValueError(f"image_size {size} must be a multiple of every stride, got {stride}")
    inputs = keras.Input((size, size, params.channels), dtype=params.input_dtype, name="image")
    x = layers.Activation("linear", dtype="float32", name="to_float")(tf.cast(inputs, tf.float32))
    x = layers.BatchNormalization(momentum=0.9, name="input_bn")(x)
    x = Scale(name="input_scale")(x)
    features = _backbone(x, params)

    # Top-down FPN from the deepest stage to the finest head level.
    pyramid, top = {}, None
    for stride in sorted(features, reverse=True):
        if stride < min(params.strides):
            break
        lateral = layers.Conv2D(params.head_width, 1, name=f"fpn_lateral{stride}")(features[stride])
        if top is not None:
            lateral = layers.Add(name=f"fpn_add{stride}")(
                [lateral, layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_up{stride}")(top)]
            )
        top = lateral
        pyramid[stride] = lateral

    per_cell = len(params.aspect_ratios)
    prior = 0.01  # Initial score: background everywhere, so the focal loss starts small.
    class_bias = [-math.log((1 - prior) / prior)] * params.num_classes
    raw = []
    for stride in params.strides:
        branches = []
        for branch, size_, init in (("box", 4, [0.0] * 4), ("class", params.num_classes, class_bias)):
            y = pyramid[stride]
            for layer in range(params.head_depth):
                y = _conv_bn(y, params.head_width, 3, name=f"head{stride}_{branch}{layer}")
            y = layers.Conv2D(
                per_cell * size_,
                1,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                bias_initializer=keras.initializers.Constant(init * per_cell),
                name=f"head{stride}_{branch}_out",
            )(y)
            branches.append(layers.Reshape((-1, size_), name=f"head{stride}_{branch}_flat")(y))
        raw.append(layers.Concatenate(axis=-1, name=f"head{stride}_raw")(branches))
    output = raw[0] if len(raw) == 1 else layers.Concatenate(axis=1, name="raw")(raw)
    return keras.Model(inputs, output, name="cvpipe_detector")


def detection_loss(params: DetectorParams):
    """Loss of raw outputs against targets [B, A, 5] (4 encodings, then the class or -1).

    Scores: focal-modulated BCE over every anchor and class; with ``quality_scores`` the positive
    class's target is the IoU of the predicted box with its ground truth (quality focal loss), so a
    score ranks boxes by how well they fit, which is what mAP at IoU 0.5-0.95 and NMS reward.
    Boxes: L1 on the encodings plus ``box_weight`` x GIoU on the decoded boxes, on positives only.
    Everything is divided by the batch's number of positive anchors. Returns (total, parts) where
    parts maps ``score_loss``, ``box_loss`` to their values.
    """
    anchors = params.anchors()
    num_classes = params.num_classes

    def parts(y_true, y_pred):
        encodings, logits = y_pred[..., :4], y_pred[..., 4:]
        target_encodings, target_class = y_true[..., :4], tf.cast(y_true[..., 4], tf.int32)
        positive = target_class >= 0
        positive_f = tf.cast(positive, tf.float32)
        num_positive = tf.maximum(tf.reduce_sum(positive_f), 1.0)

        predicted = boxes.decode(encodings, anchors)
        truth = boxes.decode(target_encodings, anchors)
        giou = boxes.iou(predicted, truth, generalized=True)
        l1 = tf.reduce_sum(tf.abs(encodings - target_encodings), axis=-1)
        box_loss = tf.reduce_sum((l1 + params.box_weight * (1.0 - giou)) * positive_f) / num_positive

        onehot = tf.one_hot(tf.maximum(target_class, 0), num_classes) * positive_f[..., None]
        if params.quality_scores:
            quality = tf.stop_gradient(tf.maximum(boxes.iou(predicted, truth), 0.0))
            target = onehot * quality[..., None]
        else:
            target = onehot
        probability = tf.sigmoid(logits)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
        score_loss = tf.reduce_sum(bce * tf.abs(target - probability) ** params.gamma) / num_positive
        return score_loss, box_loss

    def loss(y_true, y_pred):
        score_loss, box_loss = parts(y_true, y_pred)
        # Keras averages per-image values over the batch: hand it the batch total per image.
        return tf.fill([tf.shape(y_pred)[0]], score_loss + box_loss)

    def score_loss(y_true, y_pred):
        return parts(y_true, y_pred)[0]

    def box_loss(y_true, y_pred):
        return parts(y_true, y_pred)[1]

    return loss, [score_loss, box_loss]


def compile_detector(model: keras.Model, params: DetectorParams, total_steps: int) -> keras.Model:
    """Adam with decoupled weight decay on a linear warm-up then cosine decay over ``total_steps``."""
    warmup = max(1, int(total_steps * params.warmup_fraction))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=params.learning_rate / 10,
        decay_steps=max(1, total_steps - warmup),
        alpha=0.01,
        warmup_target=params.learning_rate,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=params.weight_decay)
    loss, metrics = detection_loss(params)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model
