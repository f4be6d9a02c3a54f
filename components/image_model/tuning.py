"""Hyperparameter search with keras-tuner, sequential or with N parallel trial workers.

With ``parallel_trials: N > 1`` the process that runs the TFX Tuner serves its oracle over gRPC on
127.0.0.1 and starts N worker processes (keras-tuner's chief/worker protocol, ``tuner0..N-1``);
each worker asks the shared oracle for a trial, trains it and reports back, so N trials run at
once. On Kubeflow the same protocol runs the workers as pods (deployment/kubeflow/).
"""

from __future__ import annotations

import dataclasses
import json
from concurrent import futures
from typing import Any

import keras_tuner as kt

from components.image_model import data
from components.image_model.model import ModelParams, build_model

ALGORITHMS = ("random", "hyperband", "bayesian")
OBJECTIVE = "val_sparse_categorical_accuracy"
DEFAULT_SPACE = {
    "width": [16, 24, 32],
    "depth": [1, 2],
    "learning_rate": [0.001, 0.002, 0.004],
    "dropout": [0.1, 0.3],
}


@dataclasses.dataclass
class TuneSpec:
    train_patterns: list[str]
    eval_patterns: list[str]
    labels: list[str]
    directory: str
    project_name: str = "cvpipe_tuning"
    image_size: int = 64
    channels: int = 3
    flip: bool = True
    algorithm: str = "random"
    max_trials: int = 4
    parallel_trials: int = 1
    epochs: int = 4
    batch_size: int = 32
    steps_per_epoch: int = 0
    search_space: dict[str, list[Any]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SPACE))
    cache: bool = True
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TuneSpec":
        return cls(**json.loads(text))


def _hypermodel(spec: TuneSpec):
    def build(hp: kt.HyperParameters):
        values = {name: hp.Choice(name, choices) for name, choices in spec.search_space.items()}
        return build_model(
            ModelParams.from_hyperparameters(
                values,
                num_classes=len(spec.labels),
                image_size=spec.image_size,
                channels=spec.channels,
                flip=spec.flip,
            )
        )

    return build


def make_tuner(spec: TuneSpec, *, overwrite: bool) -> kt.Tuner:
    """The configured keras-tuner tuner; ``search`` fans out to workers when parallel_trials > 1."""
    if spec.algorithm not in ALGORITHMS:
        raise ValueError(f"tuning.algorithm must be one of {ALGORITHMS}, got {spec.algorithm!r}")
    base = {"random": kt.RandomSearch, "hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization}[
        spec.algorithm
    ]

    class CvpipeTuner(base):
        def run_trial(self, trial, *args, **kwargs):
            # Fresh input pipelines for every trial: an in-memory tf.data cache left half-written
            # by the previous trial's iterator must never be read again (it corrupts the heap).
            if "x" in kwargs:
                kwargs = {**kwargs, **_datasets(spec)}
            return super().run_trial(trial, *args, **kwargs)

        def search(self, *args, **kwargs):
            if spec.parallel_trials > 1 and not kt.distribute.utils.has_chief_oracle():
                return parallel_search(self, spec)
            return super().search(*args, **kwargs)

    common = dict(
        objective=kt.Objective(OBJECTIVE, "max"),
        directory=spec.directory,
        project_name=spec.project_name,
        overwrite=overwrite,
        seed=spec.seed,
    )
    if spec.algorithm == "hyperband":
        return CvpipeTuner(_hypermodel(spec), max_epochs=spec.epochs, factor=3, **common)
    return CvpipeTuner(_hypermodel(spec), max_trials=spec.max_trials, **common)


def _datasets(spec: TuneSpec) -> dict[str, Any]:
    common = dict(
        image_size=spec.image_size, channels=spec.channels, batch_size=spec.batch_size, cache=spec.cache
    )
    return {
        "x": data.make_dataset(spec.train_patterns, training=True, seed=spec.seed, **common),
        "validation_data": data.make_dataset(spec.eval_patterns, training=False, **common),
    }


def fit_kwargs(spec: TuneSpec) -> dict[str, Any]:
    steps = spec.steps_per_epoch or max(1, data.count_records(spec.train_patterns) // spec.batch_size)
    return {
        **_datasets(spec),
        "epochs": spec.epochs,
        "steps_per_epoch": steps,
        "verbose": 2,
    }


def parallel_search(tuner: kt.Tuner, spec: TuneSpec) -> None:
    """Serves ``tuner.oracle`` on loopback and runs ``spec.parallel_trials`` workers against it."""
    import grpc
    from keras_tuner import protos
    from keras_tuner.distribute import oracle_chief

    from components.image_model.workers import free_port, run_tuning_workers

    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max(4, spec.parallel_trials * 2)))
    protos.get_service_grpc().add_OracleServicer_to_server(oracle_chief.OracleServicer(tuner.oracle), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        run_tuning_workers(spec.to_json(), spec.parallel_trials, port)
    finally:
        server.stop(grace=None)
    tuner.oracle.save()


def run_worker(spec: TuneSpec) -> None:
    """One tuning worker (KERASTUNER_* variables set by run_tuning_workers)."""
    tuner = make_tuner(spec, overwrite=False)
    tuner.search(**fit_kwargs(spec))


def best_values(tuner: kt.Tuner) -> dict[str, Any]:
    best = tuner.get_best_hyperparameters(1)
    return dict(best[0].values) if best else {}
