"""Training one model from a plain, JSON-serialisable spec: in process or in a worker process.

The TFX Trainer's ``run_fn`` builds a :class:`TrainSpec` and either calls :func:`train` directly
(``single`` and ``mirrored`` strategies) or starts N local worker processes that each call it
under ``MultiWorkerMirroredStrategy`` (``multi_worker``); the chief (worker 0) exports the model.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import tempfile
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from components.image_model import data, export, speed
from components.image_model.model import ModelParams, build_model
from components.image_model.settings import STRATEGIES

HISTORY_FILE = "history.json"  # In model_run: per-epoch metrics of the fit (learning curves).


@dataclasses.dataclass
class TrainSpec:
    """One training run. Defaults serve direct callers (tests, benchmarks); ``run_fn`` sets every
    field from the run's config, and tests/test_config.py pins these defaults to default.yaml."""

    train_patterns: list[str]
    eval_patterns: list[str]
    test_patterns: list[str]
    labels: list[str]
    serving_model_dir: str
    model_run_dir: str
    backup_dir: str
    image_size: int = 64
    channels: int = 3
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    flip: bool = True
    epochs: int = 15
    min_steps: int = 0  # More epochs when ``epochs`` would make fewer optimizer steps (small splits).
    batch_size: int = 32
    steps_per_epoch: int = 0  # 0: one pass over the training split.
    strategy: str = "single"
    warm_start_dir: str | None = None
    initial_checkpoint: str | None = None  # Weights to continue from (the best tuning trial's),
    initial_epoch: int = 0  # and the epochs already behind them: fit trains the rest.
    cache: bool = True
    seed: int = 0
    weights_dump_dir: str | None = None  # Each worker saves its final weights here (for checks).

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TrainSpec":
        return cls(**json.loads(text))

    def model_params(self) -> ModelParams:
        return ModelParams.from_hyperparameters(
            self.hyperparameters,
            num_classes=len(self.labels),
            image_size=self.image_size,
            channels=self.channels,
            flip=self.flip,
        )


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "single":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief() -> bool:
    """Worker 0 (or the only process) is the chief; TF_CONFIG tells under multi-worker training."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    return task.get("type", "worker") in ("chief", "worker") and int(task.get("index", 0)) == 0


def train(spec: TrainSpec, *, log_dir: str | None = None) -> dict[str, float]:
    """Trains, exports (chief only) and returns test-split metrics of the trained model."""
    strategy = make_strategy(spec.strategy)
    tf.keras.utils.set_random_seed(spec.seed)
    replicas = strategy.num_replicas_in_sync
    global_batch = spec.batch_size * replicas
    train_count = data.count_records(spec.train_patterns)
    steps = spec.steps_per_epoch or max(1, train_count // global_batch)
    spec = with_min_steps(spec, steps)

    common = dict(image_size=spec.image_size, channels=spec.channels, batch_size=global_batch)
    train_ds = data.make_dataset(
        spec.train_patterns, training=True, cache=spec.cache, seed=spec.seed, **common
    )
    eval_ds = data.make_dataset(spec.eval_patterns, training=False, cache=spec.cache, **common)
    train_ds, eval_ds = _shard_by_data(train_ds), _shard_by_data(eval_ds)

    with strategy.scope():
        model = build_model(spec.model_params())
        if spec.warm_start_dir:
            warm = tf.keras.models.load_model(spec.warm_start_dir, compile=False)
            if warm.output_shape[-1] == model.output_shape[-1]:
                model.set_weights(warm.get_weights())
        elif spec.initial_checkpoint:
            continue_from(model, spec.initial_checkpoint)

    meter = speed.Throughput(global_batch)
    history = model.fit(
        train_ds,
        steps_per_epoch=steps,
        initial_epoch=spec.initial_epoch if spec.initial_checkpoint else 0,
        epochs=spec.epochs,
        validation_data=eval_ds,
        callbacks=fit_callbacks(spec.backup_dir, meter, log_dir),
        verbose=2,
    )

    metrics: dict[str, float] = {}
    if spec.test_patterns and _has_records(spec.test_patterns):
        test_ds = data.make_dataset(spec.test_patterns, training=False, cache=False, **common)
        loss, accuracy = model.evaluate(_shard_by_data(test_ds), verbose=0)
        metrics = {"test_loss": float(loss), "test_accuracy": float(accuracy)}
    if spec.weights_dump_dir:
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
        _write_weights(model, os.path.join(spec.weights_dump_dir, f"worker-{task.get('index', 0)}.npz"))
    export_args = dict(
        image_size=spec.image_size, channels=spec.channels, params=dataclasses.asdict(spec.model_params())
    )
    if not is_chief():
        # Under multi-worker training every worker must save (the save is a collective); only the
        # chief's copy is kept. The others' copies go to a local scratch directory, removed after.
        with tempfile.TemporaryDirectory(prefix="cvpipe-worker-export-") as scratch:
            export.export_serving_model(model, spec.labels, scratch, **export_args)
        return metrics
    export.export_serving_model(model, spec.labels, spec.serving_model_dir, **export_args)
    summary = {
        **metrics,
        **speed.summarise(meter.rates),
        "hyperparameters": spec.hyperparameters,
        "epochs": spec.epochs,
        **continued(spec),
        "image_size": spec.image_size,
        "batch_size": global_batch,
        "strategy": spec.strategy,
        "replicas": replicas,
    }
    finish_run(spec.model_run_dir, spec.backup_dir, summary, history)
    return metrics


def with_min_steps(spec, steps_per_epoch: int):
    """``spec`` with more epochs when its ``epochs`` would make fewer than ``min_steps`` optimizer
    steps: a small training split (160 photos: 5 steps an epoch) otherwise stops long before a
    network trained from scratch has learnt it."""
    if not spec.min_steps or spec.epochs * steps_per_epoch >= spec.min_steps:
        return spec
    epochs = math.ceil(spec.min_steps / steps_per_epoch)
    logging.info(
        "cvpipe: %d epochs, not %d: min_steps %d at %d steps an epoch",
        epochs,
        spec.epochs,
        spec.min_steps,
        steps_per_epoch,
    )
    return dataclasses.replace(spec, epochs=epochs)


def continue_from(model: tf.keras.Model, checkpoint: str) -> None:
    """Restores a tuning trial's checkpoint into ``model`` (built and compiled for the same
    network): its weights now, its optimizer's step count and moments as the optimizer builds them."""
    model.load_weights(checkpoint).assert_existing_objects_matched()


def continued(spec) -> dict[str, Any]:
    """What ``metrics.json`` says about a run that continued from a tuning trial's weights."""
    if not spec.initial_checkpoint:
        return {}
    return {"continued_from": {"checkpoint": spec.initial_checkpoint, "epochs": spec.initial_epoch}}


def fit_callbacks(backup_dir: str, meter: speed.Throughput, log_dir: str | None) -> list:
    """A run's callbacks: resumable from its last epoch, throughput, TensorBoard when logging."""
    callbacks = [tf.keras.callbacks.BackupAndRestore(backup_dir), meter]
    if log_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir, update_freq="epoch"))
    return callbacks


def finish_run(model_run_dir: str, backup_dir: str, summary: dict, history) -> None:
    """The chief's end of a completed run: ``metrics.json``, the learning curves, no backup left."""
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, "metrics.json"), "w") as f:
        f.write(json.dumps(summary, indent=2))
    # Learning curves: every epoch's training and validation metrics (and images/s), by name.
    curves = {name: [float(v) for v in values] for name, values in history.history.items()}
    with tf.io.gfile.GFile(os.path.join(model_run_dir, HISTORY_FILE), "w") as f:
        f.write(json.dumps({"epoch": list(history.epoch), **curves}, indent=2))
    try:
        tf.io.gfile.rmtree(backup_dir)  # Finished: nothing left to resume.
    except tf.errors.NotFoundError:
        pass


def _write_weights(model: tf.keras.Model, path: str) -> None:
    """The model's weights as an .npz file (np.load reads it back), written through tf.io.gfile."""
    buffer = io.BytesIO()
    np.savez(buffer, *model.get_weights())
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Each worker reads every file and keeps every N-th batch, so shards stay disjoint even when a
    split has fewer files than there are workers (file sharding would fail then)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _has_records(patterns: list[str]) -> bool:
    try:
        return data.count_records(patterns) > 0
    except FileNotFoundError:
        return False
