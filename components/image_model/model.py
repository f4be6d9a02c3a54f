"""The image classifier: a residual CNN whose input is a resized uint8 image batch.

Everything between encoded bytes and that tensor is ``decode_and_resize``, shared by the training
input pipeline and the exported serving signature, so the two cannot disagree. Scaling happens in
the model (batch normalisation, then a trainable scale), so the dataset stays uint8.

    >>> model = build_model(ModelParams(num_classes=3, image_size=64, channels=3))
    >>> model(tf.zeros([1, 64, 64, 3], tf.uint8)).shape
    TensorShape([1, 3])
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config

keras = tf.keras
layers = tf.keras.layers


def skip_keras_autograph() -> None:
    """Keeps AutoGraph out of Keras' own code, as TensorFlow means to.

    AutoGraph transpiles every Python function a ``tf.function`` calls unless its module is on a
    do-not-convert list. TF 2.16's list names ``keras`` but not ``tf_keras``, the Keras 2 package
    that TF_USE_LEGACY_KERAS selects, so the first ``fit`` of each process transpiled about 150 of
    Keras' own functions (Layer.__call__, the optimizer's update...): 43 of its 48 s here, and again
    part of it for every tuning trial. Keras' code is written for graph mode and needs no
    conversion (the ``keras`` package is skipped for that reason); cvpipe's own functions still are.
    """
    rule = autograph_config.DoNotConvert("tf_keras")
    if not any(str(r) == str(rule) for r in autograph_config.CONVERSION_RULES):
        autograph_config.CONVERSION_RULES = (rule, *autograph_config.CONVERSION_RULES)


skip_keras_autograph()


@dataclasses.dataclass(frozen=True)
class ModelParams:
    num_classes: int
    image_size: int = 64
    channels: int = 3
    width: int = 32  # Filters of the first stage; doubles per stage.
    depth: int = 2  # Residual stages after the stem.
    dropout: float = 0.2
    learning_rate: float = 0.002
    flip: bool = True  # Horizontal flips as augmentation (off where a flip changes the class).
    shift: float = 0.1  # Random translation as a fraction of the size (pad + random crop).
    input_dtype: str = "uint8"  # float32 for TFLite conversion (pixel values 0-255 either way).

    @classmethod
    def from_hyperparameters(cls, values: dict, **fixed) -> "ModelParams":
        """Tuned or configured values (width, depth, dropout, learning_rate) plus fixed fields."""
        defaults = cls(num_classes=fixed.get("num_classes", 2))
        return cls(
            width=int(values.get("width", defaults.width)),
            depth=int(values.get("depth", defaults.depth)),
            dropout=float(values.get("dropout", defaults.dropout)),
            learning_rate=float(values.get("learning_rate", defaults.learning_rate)),
            **fixed,
        )


def decode_and_resize(image_bytes: tf.Tensor, image_size: int, channels: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes -> uint8 [image_size, image_size, channels]."""
    image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    resized = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


@keras.utils.register_keras_serializable(package="cvpipe")
class Scale(layers.Layer):
    """Multiplies by one trainable scalar: lets the network pick the input range after BN.

    Registered: the SavedModel is written without Keras' layer traces (export.save_model), so
    ``tf.keras.models.load_model`` rebuilds this layer from its class, found once this module is
    imported."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones", trainable=True)

    def call(self, inputs):
        return inputs * self.scale


@keras.utils.register_keras_serializable(package="cvpipe")
class Subsample(layers.Layer):
    """Keeps every ``stride``-th row and column, starting at the first: exactly what a strided 1x1
    convolution samples, done before the convolution instead of inside it.

    oneDNN (3.3.4 in TF 2.16, still in its main branch) writes past a scratch buffer in the
    backward-weights pass of a 1x1 convolution with stride > 1 on NHWC input whose channels are
    fewer than its vector block (16 with AVX-512, 8 with AVX2): uxlfoundation/oneDNN#6035. That
    corrupted the heap at widths 8 and 12 on AVX-512 machines (issue 22). A stride-1 1x1
    convolution after this layer computes the same outputs with the same weights, and no
    configuration reaches that kernel.
    """

    def __init__(self, stride: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, inputs):
        return inputs[:, :: self.stride, :: self.stride, :]

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


def _conv_bn(x, filters, kernel, strides=1, activation=True, name=None):
    if kernel == 1 and strides > 1:  # Never a strided 1x1 convolution: see Subsample.
        x = Subsample(strides, name=f"{name}_subsample")(x)
        strides = 1
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(
        x
    )
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if activation else x


def identity_block(x, filters, name):
    """Two 3x3 convolutions added back onto the input."""
    y = _conv_bn(x, filters, 3, name=f"{name}_a")
    y = _conv_bn(y, filters, 3, activation=False, name=f"{name}_b")
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def conv_block(x, filters, name, strides=2):
    """Downsampling residual block with a projected shortcut."""
    shortcut = _conv_bn(x, filters, 1, strides=strides, activation=False, name=f"{name}_proj")
    y = _conv_bn(x, filters, 3, strides=strides, name=f"{name}_a")
    y = _conv_bn(y, filters, 3, activation=False, name=f"{name}_b")
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def build_model(params: ModelParams) -> keras.Model:
    inputs = keras.Input(
        (params.image_size, params.image_size, params.channels), dtype=params.input_dtype, name="image"
    )
    x = layers.Activation("linear", dtype="float32", name="to_float")(tf.cast(inputs, tf.float32))
    if params.flip:
        x = layers.RandomFlip("horizontal", name="augment_flip")(x)
    if params.shift > 0:
        x = layers.RandomTranslation(params.shift, params.shift, fill_mode="reflect", name="augment_shift")(x)
    x = layers.BatchNormalization(momentum=0.9, name="input_bn")(x)
    x = Scale(name="input_scale")(x)
    x = _conv_bn(x, params.width, 3, name="stem")
    for stage in range(params.depth):
        filters = params.width * 2**stage
        x = conv_block(x, filters, name=f"stage{stage}_conv")
        x = identity_block(x, filters, name=f"stage{stage}_identity")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(params.dropout, name="dropout")(x)
    outputs = layers.Dense(params.num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="cvpipe_resnet")
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model
