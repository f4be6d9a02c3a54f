"""The Tuner's and Trainer's settings, parsed once from the module's ``custom_config``.

The pipeline factory puts the ``model``, ``training`` and ``tuning`` sections of the run's config
(``pipelines.pipeline.module_config``; ``model`` also carries ``ingest.channels``) into the custom
config of the Tuner and the Trainer. On Kubeflow the same mapping is the ``model_config`` runtime
parameter, a JSON string a user may edit, so every field is checked here and an error names it:

    >>> ModuleConfig.from_dict({"model": {...}, "training": {"epochs": "ten", ...}, "tuning": {...}})
    ModuleConfigError: model_config.training.epochs: expected an integer, got 'ten'

There are no defaults here: ``pipelines/configs/default.yaml`` holds them all. The training and
tuning sections are the very classes the pipeline config uses for those sections
(``pipelines.config.TrainingConfig`` and ``TuningConfig``), so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

STRATEGIES = ("single", "mirrored", "multi_worker")
ALGORITHMS = ("random", "hyperband", "bayesian")
TASKS = ("classification", "detection")
# What ``model.hyperparameters`` and ``tuning.search_space`` may name, by task: fields of
# ``model.ModelParams`` (classifier) and ``detector.network.DetectorParams`` (detector).
HYPERPARAMETERS = {
    "classification": ("width", "depth", "learning_rate", "dropout"),
    "detection": ("width", "head_width", "head_depth", "learning_rate"),
}


def check_hyperparameters(task: str, names, where: str) -> None:
    """Every name is a hyperparameter of the task's model; the error names the known ones."""
    known = HYPERPARAMETERS[task]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ModuleConfigError(
            f"{where}: unknown hyperparameters {unknown} for task {task} (known: {', '.join(known)})"
        )


class ModuleConfigError(ValueError):
    """A setting is missing, unknown or of the wrong type; the message names it."""


@dataclasses.dataclass
class TrainingSettings:
    epochs: int
    batch_size: int
    strategy: str  # single | mirrored | multi_worker
    workers: int  # Local worker processes for multi_worker.
    warm_start: bool  # Start from the served model (incremental spans).
    from_best_trial: bool  # With tuning: continue from the best trial's weights (remaining epochs).
    cache: bool  # Keep decoded images in memory after the first epoch.
    fresh_process: bool  # single/mirrored: fit in a fresh worker process (restarted if killed).
    min_steps: int  # At least this many optimizer steps: more epochs on a small training split.

    def validate(self, where: str) -> None:
        if self.strategy not in STRATEGIES:
            raise ModuleConfigError(
                f"{where}.strategy: single, mirrored or multi_worker, got {self.strategy!r}"
            )
        if self.min_steps < 0:
            raise ModuleConfigError(f"{where}.min_steps: 0 (off) or positive, got {self.min_steps}")
        for name in ("epochs", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ModuleConfigError(f"{where}.{name}: must be positive, got {getattr(self, name)}")


@dataclasses.dataclass
class TuningSettings:
    enabled: bool
    algorithm: str  # random | hyperband | bayesian
    max_trials: int
    epochs: int  # Per trial (hyperband: the maximum).
    parallel_trials: int  # Worker processes sharing one oracle; 0 = trials in the Tuner's process.
    search_space: dict[str, list[Any]]

    def validate(self, where: str) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ModuleConfigError(
                f"{where}.algorithm: random, hyperband or bayesian, got {self.algorithm!r}"
            )
        for name in ("max_trials", "epochs"):
            if getattr(self, name) < 1:
                raise ModuleConfigError(f"{where}.{name}: must be positive, got {getattr(self, name)}")
        if self.parallel_trials < 0:
            raise ModuleConfigError(f"{where}.parallel_trials: must be 0 or more, got {self.parallel_trials}")
        if any(not isinstance(v, list) or not v for v in self.search_space.values()):
            raise ModuleConfigError(f"{where}.search_space: each hyperparameter needs a non-empty list")


@dataclasses.dataclass
class ModelSettings:
    image_size: int  # Square input size; 0 = the median short side of the images (32-128).
    channels: int  # ingest.channels: the layout every example was converted to.
    flip: bool  # Horizontal-flip augmentation.
    hyperparameters: dict[str, Any]  # Used when not tuning; tuned values replace them.

    def validate(self, where: str) -> None:
        if self.image_size and not 16 <= self.image_size <= 512:
            raise ModuleConfigError(f"{where}.image_size: 0 (auto) or 16-512, got {self.image_size}")
        if self.channels not in (1, 3):
            raise ModuleConfigError(f"{where}.channels: must be 1 or 3, got {self.channels}")


@dataclasses.dataclass
class ModuleConfig:
    """What ``tuner_fn`` and ``run_fn`` are configured with.

    config = ModuleConfig.from_dict(fn_args.custom_config)
    config.task, config.training.epochs, config.tuning.search_space, config.model.channels
    """

    task: str  # classification | detection: which model tuner_fn and run_fn build.
    model: ModelSettings
    training: TrainingSettings
    tuning: TuningSettings

    def validate(self, where: str) -> None:
        if self.task not in TASKS:
            raise ModuleConfigError(f"{where}.task: one of {', '.join(TASKS)}, got {self.task!r}")
        check_hyperparameters(self.task, self.model.hyperparameters, f"{where}.model.hyperparameters")
        check_hyperparameters(self.task, self.tuning.search_space, f"{where}.tuning.search_space")

    @classmethod
    def from_dict(cls, data: dict | str | None, where: str = "model_config") -> "ModuleConfig":
        """Parses the custom config (a mapping, or its JSON text); errors name the field."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise ModuleConfigError(f"{where}: not valid JSON: {e}") from None
        return build(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build(cls, data: Any, where: str, missing: str = "missing"):
    """Dataclass ``cls`` from plain data: every field present, none unknown, each of its type.

    The one typed reader of cvpipe's settings: ``pipelines.config`` builds the whole config with
    it too (``missing`` is its message for a field absent from default.yaml).
    """
    if not isinstance(data, dict):
        raise ModuleConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in fields:
            raise ModuleConfigError(f"{_join(where, key)}: unknown field (known: {', '.join(fields)})")
    for name in fields:
        if name not in data:
            raise ModuleConfigError(f"{_join(where, name)}: {missing}")
    obj = cls(**{name: _check(hints[name], data[name], _join(where, name), missing) for name in fields})
    if hasattr(obj, "validate"):
        obj.validate(where or "config")
    return obj


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check(hint, value, where: str, missing: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check(inner, value, where, missing)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where, missing)
    if hint is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ModuleConfigError(f"{where}: expected a list, got {value!r}")
        return [_check(args[0], v, f"{where}[{i}]", missing) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ModuleConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            _check(args[0], k, where, missing): _check(args[1], v, f"{where}.{k}", missing)
            for k, v in value.items()
        }
    if hint is bool:
        if not isinstance(value, bool):
            raise ModuleConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModuleConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModuleConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ModuleConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ModuleConfigError(f"{where}: unsupported type {hint}")
