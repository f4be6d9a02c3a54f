"""The TFX module file of the Tuner and the Trainer: ``tuner_fn`` and ``run_fn``.

Both parse cvpipe's settings once from ``fn_args.custom_config`` (the ``task`` and the ``model``,
``training`` and ``tuning`` sections of the run's config, put there by the pipeline factory; on
Kubeflow the ``model_config`` runtime parameter) into a :class:`ModuleConfig`, and read the label
vocabulary that ImageExampleGen wrote beside the splits. The task picks the model: the classifier
(``training.train``) or the detector (``detector.training.train``), tuned by the same tuner.
Nothing is written outside the pipeline root: the Trainer's resumable backup is at
:func:`backup_dir`, worker scratch space is removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import tensorflow as tf
from absl import logging
from tfx.components.tuner.component import TunerFnResult

from components.image_example_gen import spec as example_spec
from components.image_model import data
from components.image_model.detector.training import DetectionTrainSpec
from components.image_model.detector.training import train as train_detector
from components.image_model.settings import ModuleConfig
from components.image_model.trainer import TUNER_RESULTS_CONFIG
from components.image_model.training import TrainSpec, train
from components.image_model.tuning import TuneSpec, default_space, fit_kwargs, make_tuner, read_best_trial
from components.image_model.workers import WorkerError, run_training_process, run_training_workers


def _split_patterns(files: list[str], split: str) -> list[str]:
    """Sibling split of the given split's file patterns (…/Split-train/* -> …/Split-test/*)."""
    out = []
    for pattern in files:
        split_dir = os.path.dirname(pattern)
        out.append(os.path.join(os.path.dirname(split_dir), f"Split-{split}", os.path.basename(pattern)))
    return out


def _labels(files: list[str], task: str = "classification") -> list[str]:
    examples_dir = os.path.dirname(os.path.dirname(files[0]))
    with tf.io.gfile.GFile(os.path.join(examples_dir, example_spec.LABELS_FILE)) as f:
        labels = [line.rstrip("\n") for line in f if line.strip()]
    if task == "detection":
        if not labels:
            raise ValueError("no object classes in labels.txt: the annotations named no category")
    elif len(labels) < 2:
        raise ValueError(f"need at least two classes to train a classifier, found {labels}")
    return labels


def _image_size(configured: int, patterns: list[str], task: str = "classification", sample: int = 256) -> int:
    """``model.image_size`` or, when 0, the median short side of a sample: a multiple of 8 in
    32-128 for the classifier, of 16 (the detector's coarsest stride) in 64-160 for the detector
    (photos are larger: at 256 px a step cost 2.5 times one at 160 on 2 cores)."""
    if configured:
        if task == "detection" and configured % 16:
            raise ValueError(f"model.image_size: a detector needs a multiple of 16, got {configured}")
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
    if task == "detection":
        return int(min(160, max(64, round(median / 16) * 16)))
    return int(min(128, max(32, round(median / 8) * 8)))


def settings(fn_args) -> ModuleConfig:
    """The module's typed settings from ``fn_args.custom_config``; errors name the bad field."""
    custom = {k: v for k, v in (fn_args.custom_config or {}).items() if k != TUNER_RESULTS_CONFIG}
    return ModuleConfig.from_dict(custom)


def tuner_fn(fn_args) -> TunerFnResult:
    config = settings(fn_args)
    spec = TuneSpec(
        train_patterns=list(fn_args.train_files),
        eval_patterns=list(fn_args.eval_files),
        labels=_labels(fn_args.train_files, config.task),
        directory=fn_args.working_dir,
        image_size=_image_size(config.model.image_size, fn_args.train_files, config.task),
        channels=config.model.channels,
        flip=config.model.flip,
        algorithm=config.tuning.algorithm,
        max_trials=config.tuning.max_trials,
        parallel_trials=config.tuning.parallel_trials,
        epochs=config.tuning.epochs,
        batch_size=config.training.batch_size,
        search_space=dict(config.tuning.search_space or default_space(config.task)),
        cache=config.training.cache,
        task=config.task,
    )
    logging.info("cvpipe tuner: %s", spec)
    return TunerFnResult(tuner=make_tuner(spec, overwrite=True), fit_kwargs=fit_kwargs(spec))


BACKUP_DIR = ".backup"


def backup_dir(model_run_dir: str, fingerprint: dict) -> str:
    """Where BackupAndRestore keeps a Trainer's progress: stable across executions, inside the root.

    Every execution of the Trainer gets a new ``model_run`` URI, so a killed and restarted Trainer
    finds its backup by what it trains (``fingerprint``: inputs and settings), under the directory
    two levels above ``model_run_dir``:

    - local runs: ``<pipeline_root>/Trainer/model_run/<execution_id>`` ->
      ``<pipeline_root>/Trainer/.backup/<key>``; a rerun of the pipeline resumes.
    - Kubeflow: ``<root>/<pipeline>/<run_id>/Trainer/<uuid>/model_run`` ->
      ``<root>/<pipeline>/<run_id>/Trainer/.backup/<key>``; a retry of the task within the same
      run resumes, a new run starts from the first epoch (its run directory is new).

    Training that completes removes its backup; a killed run's backup stays until a run with the
    same fingerprint completes (or the pipeline root is cleaned).
    """
    key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    trainer_dir = os.path.dirname(os.path.dirname(model_run_dir.rstrip("/")))
    return "/".join([trainer_dir, BACKUP_DIR, key])


def run_fn(fn_args) -> None:
    config = settings(fn_args)
    hyperparameters = dict(config.model.hyperparameters)
    if fn_args.hyperparameters:
        hyperparameters.update(fn_args.hyperparameters.get("values", {}))
    train_files = list(fn_args.train_files)
    warm_start_dir = _warm_start_dir(fn_args) if config.training.warm_start else None
    tuner_results = (fn_args.custom_config or {}).get(TUNER_RESULTS_CONFIG)
    trial = read_best_trial(tuner_results) if tuner_results and not warm_start_dir else None
    fingerprint = {
        "task": config.task,
        "train_files": train_files,
        "hyperparameters": hyperparameters,
        "model": dataclasses.asdict(config.model),
        "training": dataclasses.asdict(config.training),
        "tuner_results": tuner_results,
    }
    detection = config.task == "detection"
    spec = (DetectionTrainSpec if detection else TrainSpec)(
        train_patterns=train_files,
        eval_patterns=list(fn_args.eval_files),
        test_patterns=_split_patterns(train_files, "test"),
        labels=_labels(train_files, config.task),
        serving_model_dir=fn_args.serving_model_dir,
        model_run_dir=fn_args.model_run_dir,
        backup_dir=backup_dir(fn_args.model_run_dir, fingerprint),
        image_size=_image_size(config.model.image_size, train_files, config.task),
        channels=config.model.channels,
        hyperparameters=hyperparameters,
        flip=config.model.flip,
        epochs=config.training.epochs,
        min_steps=config.training.min_steps,
        batch_size=config.training.batch_size,
        strategy=config.training.strategy,
        warm_start_dir=warm_start_dir,
        cache=config.training.cache,
    )
    if trial and config.training.from_best_trial:
        spec = _continue_from_trial(spec, trial)
    logging.info("cvpipe trainer: %s", spec)
    kind = "detect" if detection else "train"
    if config.training.strategy == "multi_worker":
        run_training_workers(
            spec.to_json(), config.training.workers, log_dir=fn_args.model_run_dir, kind=kind
        )
    elif config.training.fresh_process:
        try:
            restarts = run_training_process(spec.to_json(), log_dir=fn_args.model_run_dir, kind=kind)
        except WorkerError as e:
            raise RuntimeError(training_failure(e, spec, config.task)) from None
        for note in restarts:
            logging.warning("cvpipe trainer: %s (resumed from its last completed epoch)", note)
    elif detection:
        train_detector(spec, log_dir=fn_args.model_run_dir)
    else:
        train(spec, log_dir=fn_args.model_run_dir)


def training_failure(error: WorkerError, spec, task: str) -> str:
    """A failed training process in a few lines: how it ended (e.g. killed by a signal again after
    its one restart), what it was training, where its log is, and the log's last lines."""
    settings = (
        f"task {task}, hyperparameters {spec.hyperparameters}, image_size {spec.image_size}, "
        f"batch_size {spec.batch_size}, epochs {spec.epochs}, strategy {spec.strategy}"
    )
    where = f"log: {', '.join(error.logs)}" if error.logs else "no log kept"
    tail = "".join(f"    {line}\n" for line in error.tail.splitlines()[-10:])
    head = f"Trainer: the training process failed: {error.reason}"
    return f"{head}\n  {settings}\n  {where}\n  last lines:\n{tail}"


def _continue_from_trial(spec, trial: dict):
    """``spec`` continuing from the tuning trial's weights when they are the same network and
    fewer epochs than the Trainer's; else ``spec`` unchanged (from scratch), and the log says why."""
    as_trial = dataclasses.replace(spec, hyperparameters=trial["hyperparameters"])
    if as_trial.model_params() != spec.model_params():
        reason = f"trial {trial['trial_id']} built another network ({trial['hyperparameters']})"
    elif trial["epochs"] >= spec.epochs:
        reason = f"trial {trial['trial_id']} trained {trial['epochs']} epochs, not fewer than {spec.epochs}"
    else:
        logging.info(
            "cvpipe trainer: continuing from trial %s after its %d epochs", trial["trial_id"], trial["epochs"]
        )
        return dataclasses.replace(
            spec, initial_checkpoint=trial["checkpoint"], initial_epoch=trial["epochs"]
        )
    logging.warning("cvpipe trainer: training from scratch: %s", reason)
    return spec


def _warm_start_dir(fn_args) -> str | None:
    base = getattr(fn_args, "base_model", None)
    return base if base and tf.io.gfile.exists(base) else None
