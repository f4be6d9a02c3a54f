"""What the oneDNN fix costs in training speed: the residual blocks' shortcut as it is now
(``Subsample`` then a stride-1 1x1 convolution) against the strided 1x1 convolution it replaced.

Both arms fit the same network (the demo's classifier, width 32, depth 2, 64 px; and the detector's
default, width 16, head 48, 128 px) on the same random uint8 images, each run in a fresh process,
the arms alternating (A B A B ...) so that load on the machine falls on both alike. The ``old`` arm
rebuilds the strided convolution by patching ``model._conv_bn`` in its process. Widths of 16 and
more never reached the faulty kernel, so the old arm runs safely. ``--onednn default`` leaves
oneDNN as TensorFlow ships it for this CPU; ``on`` forces it (``TF_ENABLE_ONEDNN_OPTS=1``).

Prints steps per second (median of the steady epochs) per arm and the ratio new / old.

    .venv/bin/python bench/shortcut_speed.py
    .venv/bin/python bench/shortcut_speed.py --onednn on --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = """
import json, sys, time
import numpy as np
import tensorflow as tf
from components.image_model import model as model_lib

arm, task = sys.argv[1], sys.argv[2]
if arm == "old":
    layers = tf.keras.layers

    def conv_bn(x, filters, kernel, strides=1, activation=True, name=None):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                          name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if activation else x

    model_lib._conv_bn = conv_bn
rng = np.random.default_rng(0)
if task == "detection":
    from components.image_model.detector import network
    if arm == "old":
        network._conv_bn = model_lib._conv_bn
    params = network.DetectorParams(num_classes=3, image_size=128, width=16, head_width=48)
    model = network.compile_detector(network.build_detector(params), params, total_steps=100)
    anchors = int(params.anchors().shape[0])
    x = rng.integers(0, 256, (256, 128, 128, 3), dtype=np.uint8)
    y = np.concatenate([rng.normal(size=(256, anchors, 4)), rng.integers(-1, 3, (256, anchors, 1))], -1)
    y = y.astype("float32")
else:
    model = model_lib.build_model(model_lib.ModelParams(num_classes=3, image_size=64, width=32, depth=2))
    x = rng.integers(0, 256, (1024, 64, 64, 3), dtype=np.uint8)
    y = rng.integers(0, 3, (1024,))
strided = [l.name for l in model.layers if isinstance(l, tf.keras.layers.Conv2D)
           and l.kernel_size == (1, 1) and l.strides != (1, 1)]
assert bool(strided) == (arm == "old"), strided


class Timer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        rates.append(steps / (time.perf_counter() - self.started))


rates, steps = [], len(x) // 32
model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[Timer()])
print(json.dumps({"steps_per_second": sorted(rates[1:])[len(rates[1:]) // 2]}))
"""


def run(arm: str, task: str, onednn: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_ENABLE_ONEDNN")}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    if onednn == "on":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, arm, task], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"{arm} {task} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["steps_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--onednn", choices=["default", "on"], default="default")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=["classification", "detection"])
    args = parser.parse_args()
    print(f"oneDNN: {args.onednn}")
    for task in args.tasks:
        rates = {"old": [], "new": []}
        for _ in range(args.repeats):
            for arm in ("old", "new"):
                rates[arm].append(run(arm, task, args.onednn))
        old, new = statistics.median(rates["old"]), statistics.median(rates["new"])
        print(
            f"{task:15} old {old:7.2f} steps/s  new {new:7.2f} steps/s  new/old {new / old:.3f}"
            f"   (runs: old {[round(r, 2) for r in rates['old']]}, "
            f"new {[round(r, 2) for r in rates['new']]})",
            flush=True,
        )


if __name__ == "__main__":
    main()
