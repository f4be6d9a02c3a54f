"""The TFX module file of the Tuner and the Trainer: ``tuner_fn`` and ``run_fn``.

Both read cvpipe's settings from ``fn_args.custom_config`` (the ``model``, ``training`` and
``tuning`` sections of the run's config, put there by the pipeline factory) and the label
vocabulary that ImageExampleGen wrote beside the splits.
"""

from __future__ import annotations

import hashlib
import json
import os

import tensorflow as tf
from absl import logging
from tfx import v1 as tfx

from components.image_example_gen import spec as example_spec
from components.image_model import data
from components.image_model.training import TrainSpec, train
from components.image_model.tuning import TuneSpec, fit_kwargs, make_tuner
from components.image_model.workers import run_training_workers


def _split_patterns(files: list[str], split: str) -> list[str]:
    """Sibling split of the given split's file patterns (…/Split-train/* -> …/Split-test/*)."""
    out = []
    for pattern in files:
        split_dir = os.path.dirname(pattern)
        out.append(os.path.join(os.path.dirname(split_dir), f"Split-{split}", os.path.basename(pattern)))
    return out


def _labels(files: list[str]) -> list[str]:
    examples_dir = os.path.dirname(os.path.dirname(files[0]))
    with tf.io.gfile.GFile(os.path.join(examples_dir, example_spec.LABELS_FILE)) as f:
        labels = [line.rstrip("\n") for line in f if line.strip()]
    if len(labels) < 2:
        raise ValueError(f"need at least two classes to train a classifier, found {labels}")
    return labels


def _image_size(configured: int, patterns: list[str], sample: int = 256) -> int:
    """``model.image_size`` or, when 0, the median short side of a sample, clamped to 32-128."""
    if configured:
        return configured
    files = data.list_files(patterns)
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(sample)
    sides = []
    for record in dataset:
        example = tf.train.Example.FromString(record.numpy())
        width = example.features.feature[example_spec.WIDTH].int64_list.value[0]
        height = example.features.feature[example_spec.HEIGHT].int64_list.value[0]
        sides.append(min(width, height))
    median = sorted(sides)[len(sides) // 2]
    return int(min(128, max(32, round(median / 8) * 8)))


def _settings(fn_args) -> dict:
    config = dict(fn_args.custom_config or {})
    for key in ("model", "training", "tuning"):
        config.setdefault(key, {})
    return config


def tuner_fn(fn_args) -> tfx.components.TunerFnResult:
    config = _settings(fn_args)
    model, tuning = config["model"], config["tuning"]
    spec = TuneSpec(
        train_patterns=list(fn_args.train_files),
        eval_patterns=list(fn_args.eval_files),
        labels=_labels(fn_args.train_files),
        directory=fn_args.working_dir,
        image_size=_image_size(model.get("image_size", 0), fn_args.train_files),
        channels=int(model.get("channels", 3)),
        flip=bool(model.get("flip", True)),
        algorithm=tuning.get("algorithm", "random"),
        max_trials=int(tuning.get("max_trials", 4)),
        parallel_trials=int(tuning.get("parallel_trials", 1)),
        epochs=int(tuning.get("epochs", 4)),
        batch_size=int(config["training"].get("batch_size", 32)),
        cache=bool(config["training"].get("cache", True)),
    )
    if tuning.get("search_space"):
        spec.search_space = dict(tuning["search_space"])
    logging.info("cvpipe tuner: %s", spec)
    return tfx.components.TunerFnResult(tuner=make_tuner(spec, overwrite=True), fit_kwargs=fit_kwargs(spec))


def run_fn(fn_args) -> None:
    config = _settings(fn_args)
    model, training = config["model"], config["training"]
    hyperparameters = dict(model.get("hyperparameters") or {})
    if fn_args.hyperparameters:
        hyperparameters.update(fn_args.hyperparameters.get("values", {}))
    train_files = list(fn_args.train_files)
    strategy = training.get("strategy", "single")
    key = hashlib.sha256(json.dumps([train_files, hyperparameters, training], sort_keys=True).encode())
    backup_root = training.get("backup_dir") or os.path.join(
        os.path.dirname(fn_args.model_run_dir), ".backup"
    )
    spec = TrainSpec(
        train_patterns=train_files,
        eval_patterns=list(fn_args.eval_files),
        test_patterns=_split_patterns(train_files, "test"),
        labels=_labels(train_files),
        serving_model_dir=fn_args.serving_model_dir,
        model_run_dir=fn_args.model_run_dir,
        # Keyed by inputs and settings, so a killed run resumes from its last epoch when re-run.
        backup_dir=os.path.join(backup_root, key.hexdigest()[:16]),
        image_size=_image_size(model.get("image_size", 0), train_files),
        channels=int(model.get("channels", 3)),
        hyperparameters=hyperparameters,
        flip=bool(model.get("flip", True)),
        epochs=int(training.get("epochs", 15)),
        batch_size=int(training.get("batch_size", 32)),
        strategy=strategy,
        warm_start_dir=_warm_start_dir(fn_args) if training.get("warm_start") else None,
        cache=bool(training.get("cache", True)),
    )
    logging.info("cvpipe trainer: %s", spec)
    if strategy == "multi_worker":
        run_training_workers(spec.to_json(), int(training.get("workers", 2)))
    else:
        train(spec, log_dir=fn_args.model_run_dir)


def _warm_start_dir(fn_args) -> str | None:
    base = getattr(fn_args, "base_model", None)
    return base if base and tf.io.gfile.exists(base) else None
