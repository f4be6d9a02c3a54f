"""Training throughput, recorded beside the metrics of every tuning trial and of the Trainer.

``Throughput`` times the training part of each epoch (from its first batch to its last, so
neither validation nor the epoch's callbacks count) and adds ``images_per_second`` to the epoch's
logs, where Keras' History, keras-tuner's trial metrics and TensorBoard pick it up. The first
epoch also pays for tracing and for filling the decoded-image cache; :func:`summarise` reports it
apart from the steady state (the median of the later epochs).

    meter = Throughput(batch_size=32)
    model.fit(dataset, epochs=4, callbacks=[meter])
    summarise(meter.rates)  # {"images_per_second": 812.4, "first_epoch_images_per_second": 95.1}
"""

from __future__ import annotations

import statistics
import time

import tensorflow as tf

METRIC = "images_per_second"
FIRST_EPOCH_METRIC = f"first_epoch_{METRIC}"


class Throughput(tf.keras.callbacks.Callback):
    """Images per second of each epoch's training batches (validation excluded)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.rates: list[float] = []

    def __deepcopy__(self, memo):
        # keras-tuner deep-copies a trial's callbacks for each execution; the rates must stay here.
        return self

    def on_epoch_begin(self, epoch, logs=None):
        self._started = None
        self._steps = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._started is None:
            self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self._ended = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._started is None or not self._steps:
            return
        rate = self._steps * self.batch_size / max(self._ended - self._started, 1e-9)
        self.rates.append(rate)
        if logs is not None:
            logs[METRIC] = rate


def summarise(rates: list[float]) -> dict[str, float]:
    """Steady-state images/s (median of the epochs after the first) and the first epoch's."""
    if not rates:
        return {}
    steady = rates[1:] or rates
    return {METRIC: round(statistics.median(steady), 1), FIRST_EPOCH_METRIC: round(rates[0], 1)}
