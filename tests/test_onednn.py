"""The oneDNN heap corruption of issue 22: cvpipe's networks never run a strided 1x1 convolution.

oneDNN's backward-weights kernel for a 1x1 convolution with stride > 1 on NHWC input writes past
its scratch buffer when the input has fewer channels than its vector block (16 with AVX-512, 8
with AVX2; uxlfoundation/oneDNN#6035). TensorFlow turns oneDNN on by default only on CPUs with
AVX512_VNNI / AVX512_BF16 / AMX, where widths 8 and 12 crashed; ``TF_ENABLE_ONEDNN_OPTS=1`` turns
it on anywhere, and on an AVX2 CPU widths 4 and 6 crashed the same way before the fix. So the
fresh-process test below forces oneDNN on: on an AVX-512 machine it covers the widths that crashed
there, on an AVX2 machine the ones that crash with AVX2's block.
"""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from components.image_model.model import ModelParams, Subsample, build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each line: task, image size, width, head width. The detector and classifier configurations that
# aborted or segfaulted in fit with oneDNN on (issue 22's table, and their AVX2 counterparts).
CRASHED = [
    ("classification", 128, 4, 0),
    ("classification", 224, 6, 0),
    ("classification", 128, 8, 0),
    ("classification", 96, 12, 0),
    ("detection", 128, 4, 16),
    ("detection", 128, 8, 16),
    ("detection", 128, 12, 32),
    ("detection", 256, 12, 32),
]

_FIT = """
import sys
import numpy as np
from components.image_model.detector.network import DetectorParams, build_detector, compile_detector
from components.image_model.model import ModelParams, Subsample, build_model

rng = np.random.default_rng(0)
for line in sys.argv[1:]:
    task, size, width, head = line.split(",")
    size, width, head = int(size), int(width), int(head)
    x = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    if task == "detection":
        params = DetectorParams(num_classes=3, image_size=size, width=width, head_width=head)
        model = compile_detector(build_detector(params), params, total_steps=4)
        anchors = int(params.anchors().shape[0])
        boxes = rng.normal(size=(16, anchors, 4))
        y = np.concatenate([boxes, rng.integers(-1, 3, (16, anchors, 1))], -1).astype("float32")
    else:
        model = build_model(ModelParams(num_classes=3, image_size=size, width=width))
        y = rng.integers(0, 3, (16,))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    print("fitted", line, flush=True)
"""


def test_configurations_that_corrupted_the_heap_train_with_onednn_on(tmp_path):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_USE_LEGACY_KERAS="1", PYTHONPATH=ROOT)
    env.pop("ONEDNN_MAX_CPU_ISA", None)  # The CPU's own kernels, whatever the caller chose.
    lines = [",".join(map(str, point)) for point in CRASHED]
    result = subprocess.run(
        [sys.executable, "-c", _FIT, *lines],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    fitted = [line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("fitted ")]
    assert result.returncode == 0 and fitted == lines, (result.returncode, fitted, result.stderr[-3000:])


def test_no_network_has_a_strided_pointwise_convolution():
    from components.image_model.detector.network import DetectorParams, build_detector

    models = [
        build_model(ModelParams(num_classes=3, image_size=64, width=8, depth=3)),
        build_detector(DetectorParams(num_classes=3, image_size=128, width=8, head_width=16)),
    ]
    for model in models:
        convolutions = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]
        assert convolutions
        strided = [c.name for c in convolutions if c.kernel_size == (1, 1) and c.strides != (1, 1)]
        assert strided == [], model.name
        assert any(isinstance(layer, Subsample) for layer in model.layers)


def test_subsample_then_pointwise_convolution_equals_the_strided_one():
    rng = np.random.default_rng(1)
    for size in (64, 65):  # Even and odd sizes: "same" padding samples from the first pixel in both.
        x = tf.constant(rng.normal(size=(2, size, size, 8)), tf.float32)
        strided = tf.keras.layers.Conv2D(16, 1, strides=2, padding="same", use_bias=False)
        pointwise = tf.keras.layers.Conv2D(16, 1, padding="same", use_bias=False)
        expected = strided(x)
        pointwise.build(x.shape)
        pointwise.set_weights(strided.get_weights())
        got = pointwise(Subsample(2)(x))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
