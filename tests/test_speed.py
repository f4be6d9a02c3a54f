"""What keeps training fast: AutoGraph stays out of Keras, throughput is measured, trials stop early
only when their score cannot change."""

import collections
import random

import numpy as np
import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.impl import api as autograph_api

from components.image_model import speed, tuning
from components.image_model.model import ModelParams, build_model, skip_keras_autograph


def _converted_modules(monkeypatch) -> collections.Counter:
    """Counts, by top-level package, the functions AutoGraph converts while it is patched."""
    converted: collections.Counter = collections.Counter()
    real = autograph_api._convert_actual

    def spy(entity, program_ctx):
        converted[getattr(entity, "__module__", "?").split(".")[0]] += 1
        return real(entity, program_ctx)

    monkeypatch.setattr(autograph_api, "_convert_actual", spy)
    return converted


def _one_step(model_params: ModelParams) -> None:
    model = build_model(model_params)
    images = np.zeros((4, model_params.image_size, model_params.image_size, 3), np.uint8)
    model.fit(images, np.array([0, 1, 0, 1]), batch_size=4, epochs=1, verbose=0)


def test_keras_functions_are_not_transpiled_but_ours_are(monkeypatch):
    converted = _converted_modules(monkeypatch)
    _one_step(ModelParams(num_classes=2, image_size=16, width=4, depth=1))
    # Only the entry points Keras wraps in tf.function itself (train_function, step_function),
    # which AutoGraph converts whatever the list says; none of what they call.
    assert converted["tf_keras"] <= 2
    assert converted["components"] >= 1  # The Scale layer's call is cvpipe's own code.


def test_without_the_rule_autograph_transpiles_keras(monkeypatch):
    """The failure the rule prevents: TF 2.16's do-not-convert list misses tf_keras."""
    rules = tuple(r for r in autograph_config.CONVERSION_RULES if str(r) != "DoNotConvert rule for tf_keras")
    monkeypatch.setattr(autograph_config, "CONVERSION_RULES", rules)
    converted = _converted_modules(monkeypatch)
    _one_step(ModelParams(num_classes=2, image_size=16, width=4, depth=1, flip=False))
    assert converted["tf_keras"] > 50
    skip_keras_autograph()  # Idempotent: adds the rule once.
    skip_keras_autograph()
    assert sum(str(r) == "DoNotConvert rule for tf_keras" for r in autograph_config.CONVERSION_RULES) == 1


def test_throughput_counts_training_batches_and_summarises_the_steady_state():
    model = build_model(ModelParams(num_classes=2, image_size=16, width=4, depth=1))
    meter = speed.Throughput(batch_size=4)
    images = np.zeros((16, 16, 16, 3), np.uint8)
    history = model.fit(
        images,
        np.zeros(16),
        batch_size=4,
        epochs=3,
        validation_data=(images, np.zeros(16)),
        callbacks=[meter],
    )
    assert len(meter.rates) == 3 and all(rate > 0 for rate in meter.rates)
    assert history.history[speed.METRIC] == meter.rates  # In the epoch logs, so in History and trials.
    summary = speed.summarise([10.0, 100.0, 300.0, 200.0])
    assert summary == {speed.METRIC: 200.0, speed.FIRST_EPOCH_METRIC: 10.0}
    assert speed.summarise([]) == {}


def test_a_trial_stops_only_at_a_perfect_objective():
    callback = tuning.StopAtPerfectScore()
    callback.set_model(tf.keras.Sequential([tf.keras.layers.Dense(1)]))
    callback.on_epoch_end(0, {tuning.OBJECTIVE: 0.99})
    assert not callback.model.stop_training
    callback.on_epoch_end(1, {tuning.OBJECTIVE: 1.0})
    assert callback.model.stop_training


def test_equal_scores_go_to_the_smaller_network(tmp_path):
    from keras_tuner.engine import trial as trial_module

    spec = tuning.TuneSpec(
        train_patterns=[], eval_patterns=[], labels=["a", "b"], directory=str(tmp_path), parallel_trials=0
    )
    tuner = tuning.make_tuner(spec, overwrite=True)
    space = tuner.oracle.get_space()
    for trial_id, (width, depth, score) in enumerate(
        [(32, 2, 1.0), (16, 2, 1.0), (16, 1, 0.98), (24, 1, 1.0)]
    ):
        hp = space.copy()
        hp.values = {"width": width, "depth": depth, "learning_rate": 0.001, "dropout": 0.1}
        trial = trial_module.Trial(hp, trial_id=str(trial_id), status="COMPLETED")
        trial.score = score
        tuner.oracle.trials[str(trial_id)] = trial
    best = [(hp.values["width"], hp.values["depth"]) for hp in tuner.get_best_hyperparameters(4)]
    assert best == [(24, 1), (16, 2), (32, 2), (16, 1)]  # Perfect first, smallest of those first.
    assert tuning.best_values(tuner)["width"] == 24


def test_a_trial_starts_from_its_own_seed_whatever_ran_before(shapes_examples, tmp_path, monkeypatch):
    """Same trial, same initial weights, even after the process drew random numbers elsewhere
    (another trial, another worker): tuning results do not depend on the order of trials."""
    examples_dir, labels, _ = shapes_examples
    initial, trained = [], []
    build = tuning.build_model

    def recording_build(params):
        model = build(params)
        initial.append(next(w.copy() for w in model.get_weights() if w.ndim == 4))  # A conv kernel.
        return model

    monkeypatch.setattr(tuning, "build_model", recording_build)
    spec = tuning.TuneSpec(
        train_patterns=[f"{examples_dir}/Split-train/*"],
        eval_patterns=[f"{examples_dir}/Split-eval/*"],
        labels=labels,
        directory=str(tmp_path / "tuning"),
        image_size=32,
        max_trials=1,
        parallel_trials=0,
        epochs=1,
        steps_per_epoch=1,
        search_space={"width": [8], "depth": [1]},
    )
    for draw in (0, 1000):
        # Every global random state moves on, as an earlier trial in the same worker moves it.
        random.random() if draw else None
        np.random.rand(draw + 1)
        tf.random.uniform([draw + 1])
        tuner = tuning.make_tuner(spec, overwrite=True)
        tuner.search(**tuning.fit_kwargs(spec))
        trained.append(initial[-1])  # The trial's model is the search's last build.
    np.testing.assert_array_equal(trained[0], trained[1])
    assert tuning.trial_seed(0, "0") != tuning.trial_seed(0, "1") != tuning.trial_seed(1, "1")


def test_the_same_search_proposes_the_same_trials(tmp_path):
    """keras-tuner draws a random oracle seed for seed 0 (cvpipe's default): not here."""
    from components.image_model import tuning

    proposals = []
    for run in ("a", "b"):
        spec = tuning.TuneSpec([], [], ["a", "b"], str(tmp_path / run), seed=0)
        oracle = tuning.make_tuner(spec, overwrite=True).oracle
        proposals.append([dict(oracle.create_trial(f"tuner{i}").hyperparameters.values) for i in range(4)])
    assert proposals[0] == proposals[1]
    assert len({tuple(sorted(p.items())) for p in proposals[0]}) == 4


def test_checkpoint_epochs_count_the_best_epoch_and_the_epochs_resumed_from():
    import types

    import keras_tuner as kt

    from components.image_model.tuning import checkpoint_epochs

    def history(epochs, values):
        return types.SimpleNamespace(epoch=epochs, history={"val_acc": values})

    highest, lowest = kt.Objective("val_acc", "max"), kt.Objective("val_acc", "min")
    assert checkpoint_epochs(history([0, 1, 2, 3], [0.5, 0.9, 0.9, 0.8]), highest) == 2  # First best.
    assert checkpoint_epochs(history([0, 1, 2, 3], [0.5, 0.9, 0.9, 0.8]), lowest) == 1
    assert checkpoint_epochs(history([2, 3], [0.7, 0.6]), highest) == 3  # Hyperband: resumed after 2.
    assert checkpoint_epochs(history([0, 1, 2], []), highest) == 3  # No objective: every epoch saved.
