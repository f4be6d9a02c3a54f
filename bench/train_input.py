"""Training input throughput: the pipeline's TFRecord input function versus batches in memory.

Same model, same batch size, same number of steps, in one process: (a) `make_dataset` reading the
gzipped TFRecords (decode + resize in tf.data, cached after the first pass) and (b) the same images
already decoded into a NumPy array fed through `from_tensor_slices`. Prints steps per second of
both, for the first epoch (cold: decoding) and the following ones (steady state), and the ratio.
Target: steady-state ratio >= 0.9.

    .venv/bin/python bench/train_input.py --count 2000 --epochs 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench._data import ingested_shapes  # noqa: E402
from components.image_model import data  # noqa: E402
from components.image_model.model import ModelParams, build_model  # noqa: E402


class EpochTimer(tf.keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def timed_fit(dataset, steps, epochs, params) -> list[float]:
    tf.keras.utils.set_random_seed(0)
    model = build_model(params)
    timer = EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=epochs, callbacks=[timer], verbose=0)
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cvpipe-bench"))
    args = parser.parse_args()

    examples, labels = ingested_shapes(args.workdir, args.count)
    patterns = [f"{examples}/Split-train/*"]
    params = ModelParams(num_classes=len(labels), image_size=args.image_size, width=16, depth=2)
    train_count = data.count_records(patterns)
    steps = train_count // args.batch_size

    pipeline = data.make_dataset(
        patterns, image_size=args.image_size, channels=3, batch_size=args.batch_size, training=True, seed=0
    )
    loaded = list(
        data.make_dataset(
            patterns, image_size=args.image_size, channels=3, batch_size=1024, training=False, cache=False
        )
    )
    images = np.concatenate([x.numpy() for x, _ in loaded])
    targets = np.concatenate([y.numpy() for _, y in loaded])
    memory = (
        tf.data.Dataset.from_tensor_slices((images, targets))
        .cache()
        .shuffle(4096, seed=0, reshuffle_each_iteration=True)
        .repeat()
        .batch(args.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )

    memory_times = timed_fit(memory, steps, args.epochs, params)
    pipeline_times = timed_fit(pipeline, steps, args.epochs, params)

    def rate(times):
        return steps / times[0], steps * (len(times) - 1) / sum(times[1:])

    (pipe_cold, pipe_warm), (mem_cold, mem_warm) = rate(pipeline_times), rate(memory_times)
    print(
        f"{train_count} training images {args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"{steps} steps/epoch, {args.epochs} epochs, {os.cpu_count()} cores"
    )
    print(f"{'':34}{'epoch 1 steps/s':>16}{'later steps/s':>16}")
    print(f"{'in-memory batches (baseline)':34}{mem_cold:>16.1f}{mem_warm:>16.1f}")
    print(f"{'pipeline input_fn (TFRecords)':34}{pipe_cold:>16.1f}{pipe_warm:>16.1f}")
    print(f"ratio epoch 1 (cold, decoding): {pipe_cold / mem_cold:.2f}")
    print(f"ratio steady state:             {pipe_warm / mem_warm:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
