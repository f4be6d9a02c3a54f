"""Training the detector from a plain, JSON-serialisable spec (like ``image_model.training``).

    spec = DetectionTrainSpec(train_patterns=[...], eval_patterns=[...], test_patterns=[...],
                              labels=["circle", "square", "triangle"], serving_model_dir="serving",
                              model_run_dir="model_run", backup_dir="backup")
    metrics = train(spec)  # Trains, exports (chief only), returns test-split COCO mAP.

Strategies as for the classifier (``single``, ``mirrored``, ``multi_worker``: every worker runs
``train`` under TF_CONFIG; the chief exports). Only ``single`` is tested so far.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from typing import Any

import tensorflow as tf
from absl import logging

from components.image_model import data as classification_data
from components.image_model import speed
from components.image_model.detector import data, evaluation, export
from components.image_model.detector.network import DetectorParams, build_detector, compile_detector
from components.image_model.training import (
    _has_records,
    _shard_by_data,
    continue_from,
    continued,
    finish_run,
    fit_callbacks,
    is_chief,
    make_strategy,
    with_min_steps,
)


@dataclasses.dataclass
class DetectionTrainSpec:
    """One detector training run; ``hyperparameters`` are any ``DetectorParams`` fields."""

    train_patterns: list[str]
    eval_patterns: list[str]
    test_patterns: list[str]
    labels: list[str]
    serving_model_dir: str
    model_run_dir: str
    backup_dir: str
    image_size: int = 128
    channels: int = 3
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    flip: bool = True
    epochs: int = 24  # About 5 minutes for 800 training scenes on 2 cores (bench/detection.py).
    min_steps: int = 0  # More epochs when ``epochs`` would make fewer optimizer steps (small splits).
    batch_size: int = 32
    steps_per_epoch: int = 0  # 0: one pass over the training split.
    strategy: str = "single"
    warm_start_dir: str | None = None  # A detector SavedModel to start from (same network only).
    initial_checkpoint: str | None = None  # Weights to continue from (the best tuning trial's),
    initial_epoch: int = 0  # and the epochs already behind them: fit trains the rest.
    cache: bool = True
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "DetectionTrainSpec":
        return cls(**json.loads(text))

    def model_params(self) -> DetectorParams:
        return DetectorParams.from_hyperparameters(
            self.hyperparameters,
            num_classes=len(self.labels),
            image_size=self.image_size,
            channels=self.channels,
            flip=self.flip,
        )


def _warm_start(model: tf.keras.Model, saved_model_dir: str) -> None:
    """Starts from the weights of a served detector of the same network; another one is skipped."""
    warm = tf.keras.models.load_model(saved_model_dir, compile=False)
    shapes = [w.shape for w in model.get_weights()]
    if [w.shape for w in warm.get_weights()] == shapes:
        model.set_weights(warm.get_weights())
        logging.info("cvpipe detector: warm start from %s", saved_model_dir)
    else:
        logging.warning("cvpipe detector: %s is another network; training from scratch", saved_model_dir)


def train(spec: DetectionTrainSpec, *, log_dir: str | None = None) -> dict[str, Any]:
    """Trains, exports (chief only) and returns the test split's COCO mAP (``map``, ``map50``)."""
    strategy = make_strategy(spec.strategy)
    tf.keras.utils.set_random_seed(spec.seed)
    params = spec.model_params()
    global_batch = spec.batch_size * strategy.num_replicas_in_sync
    train_count = classification_data.count_records(spec.train_patterns)
    steps = spec.steps_per_epoch or max(1, train_count // global_batch)
    spec = with_min_steps(spec, steps)

    train_ds = data.make_dataset(
        spec.train_patterns, params, batch_size=global_batch, training=True, cache=spec.cache, seed=spec.seed
    )
    eval_ds = None
    if spec.eval_patterns and _has_records(spec.eval_patterns):
        eval_ds = _shard_by_data(
            data.make_dataset(
                spec.eval_patterns, params, batch_size=global_batch, training=False, cache=spec.cache
            )
        )

    with strategy.scope():
        model = compile_detector(build_detector(params), params, total_steps=steps * spec.epochs)
        if spec.warm_start_dir:
            _warm_start(model, spec.warm_start_dir)
        elif spec.initial_checkpoint:
            # With the optimizer's step count, so the learning-rate schedule goes on from there.
            continue_from(model, spec.initial_checkpoint)

    meter = speed.Throughput(global_batch)
    started = time.monotonic()
    history = model.fit(
        _shard_by_data(train_ds),
        steps_per_epoch=steps,
        initial_epoch=spec.initial_epoch if spec.initial_checkpoint else 0,
        epochs=spec.epochs,
        validation_data=eval_ds,
        callbacks=fit_callbacks(spec.backup_dir, meter, log_dir),
        verbose=2,
    )
    train_seconds = time.monotonic() - started

    if not is_chief():
        with tempfile.TemporaryDirectory(prefix="cvpipe-worker-export-") as scratch:
            export.export_detector(model, spec.labels, scratch, params)
        return {}
    export.export_detector(model, spec.labels, spec.serving_model_dir, params)
    metrics: dict[str, Any] = {}
    if spec.test_patterns and _has_records(spec.test_patterns):
        test = evaluation.evaluate_saved_model(spec.serving_model_dir, spec.test_patterns)
        metrics = {"test_map": test["map"], "test_map50": test["map50"]}
    summary = {
        **metrics,
        **speed.summarise(meter.rates),
        "train_seconds": round(train_seconds, 1),
        "hyperparameters": spec.hyperparameters,
        "params": params.to_dict(),
        "epochs": spec.epochs,
        **continued(spec),
        "batch_size": global_batch,
        "strategy": spec.strategy,
    }
    finish_run(spec.model_run_dir, spec.backup_dir, summary, history)
    return {**metrics, "train_seconds": summary["train_seconds"]}
