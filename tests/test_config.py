"""The typed config: defaults, overrides and errors that name the field."""

import pytest

from pipelines.config import ConfigError, load_config


def test_defaults_load_and_convert_to_ingest_options():
    config = load_config()
    options = config.ingest.to_options()
    assert options.splits == (("train", 80), ("eval", 10), ("test", 10))
    assert options.image.channels == 3 and config.enable_cache


def test_user_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  min_width: 32\n  splits: {train: 9, eval: 1}\n")
    config = load_config(str(path), {"input": {"images": "data"}})
    assert config.ingest.min_width == 32 and config.ingest.min_height == 16
    assert config.ingest.splits == {"train": 9, "eval": 1}
    assert config.input.images == "data"


@pytest.mark.parametrize(
    "text,message",
    [
        ("ingest:\n  min_widht: 3\n", r"ingest\.min_widht: unknown field"),
        ("ingest:\n  channels: three\n", r"ingest\.channels: expected an integer"),
        ("ingest:\n  channels: 2\n", r"ingest\.channels: must be 1 or 3"),
        ("ingest:\n  splits: {eval: 1}\n", r"ingest\.splits: a 'train' split is required"),
        ("enable_cache: maybe\n", r"enable_cache: expected true or false"),
        ("beam:\n  args: --runner\n", r"beam\.args: expected a list"),
        ("- a\n- b\n", r"top level must be a mapping"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


def test_missing_config_file_is_a_clear_error():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/cvpipe.yaml")


def test_cluster_example_override_is_valid():
    import os

    from pipelines.config import CONFIG_DIR

    config = load_config(os.path.join(CONFIG_DIR, "cluster.yaml"))
    assert "--runner=DataflowRunner" in config.beam.args


def _config_classes(cls=None, seen=None):
    """Config and every dataclass it nests."""
    import dataclasses
    import typing

    from pipelines.config import Config

    cls, seen = cls or Config, seen if seen is not None else []
    seen.append(cls)
    for hint in typing.get_type_hints(cls).values():
        if dataclasses.is_dataclass(hint) and hint not in seen:
            _config_classes(hint, seen)
    return seen


def test_config_classes_declare_no_defaults_so_default_yaml_is_the_only_source():
    import dataclasses

    from components.image_model.settings import ModuleConfig

    classes = set(_config_classes()) | set(_config_classes(ModuleConfig))  # The Trainer module's too.
    assert len(classes) == 14  # AnnotationsConfig (ingest.annotations) is the 14th.
    with_defaults = [
        f"{cls.__name__}.{f.name}"
        for cls in classes
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert with_defaults == []


def test_a_field_missing_from_the_defaults_is_an_error_naming_it():
    from pipelines.config import TrainingConfig, build

    data = {"epochs": 3, "batch_size": 8, "strategy": "single", "workers": 1, "cache": True}
    with pytest.raises(ConfigError, match=r"training\.warm_start: missing"):
        build(TrainingConfig, data, "training")


def test_component_option_defaults_equal_default_yaml():
    """The components' option classes keep defaults for direct callers; they must be default.yaml's."""
    from components.data_checks import checks
    from components.image_example_gen.imaging import ImageOptions
    from components.image_example_gen.ingest import IngestOptions
    from components.image_model.training import TrainSpec
    from components.image_model.tuning import DEFAULT_SPACE, TuneSpec

    config = load_config()
    assert ImageOptions() == config.ingest.to_options().image
    assert IngestOptions() == config.ingest.to_options()
    assert checks.CheckOptions() == config.validation.check_options()
    assert checks.DEFAULT_DRIFT_FEATURES == config.validation.drift_features
    assert checks.DEFAULT_SEVERITIES == config.validation.severities
    assert DEFAULT_SPACE == config.tuning.search_space
    tune = TuneSpec([], [], ["a", "b"], "")
    assert (tune.algorithm, tune.max_trials, tune.epochs, tune.parallel_trials) == (
        config.tuning.algorithm,
        config.tuning.max_trials,
        config.tuning.epochs,
        config.tuning.parallel_trials,
    )
    assert tune.search_space == config.tuning.search_space
    train = TrainSpec([], [], [], ["a", "b"], "", "", "")
    for spec in (tune, train):
        assert (spec.batch_size, spec.cache) == (config.training.batch_size, config.training.cache)
        assert (spec.channels, spec.flip) == (config.ingest.channels, config.model.flip)
    assert (train.epochs, train.strategy) == (config.training.epochs, config.training.strategy)


def test_module_config_parses_the_pipeline_sections_and_their_json():
    import json

    from components.image_model.settings import ModuleConfig
    from pipelines.pipeline import module_config

    sections = module_config(load_config())
    parsed = ModuleConfig.from_dict(sections)
    assert parsed.training.epochs == 15 and parsed.model.channels == 3
    assert parsed.tuning.search_space["depth"] == [1, 2]
    assert parsed.to_dict() == sections
    # On Kubeflow the sections are the model_config runtime parameter, a JSON string.
    assert ModuleConfig.from_dict(json.dumps(sections)) == parsed


def _edited(section: str, key: str, value):
    from pipelines.pipeline import module_config

    sections = module_config(load_config())
    if value is _DROP:
        del sections[section][key]
    else:
        sections[section][key] = value
    return sections


_DROP = object()


@pytest.mark.parametrize(
    "section,key,value,message",
    [
        ("training", "epoch", 3, r"model_config\.training\.epoch: unknown field \(known: epochs,"),
        ("training", "epochs", _DROP, r"model_config\.training\.epochs: missing"),
        ("training", "epochs", "ten", r"model_config\.training\.epochs: expected an integer, got 'ten'"),
        ("training", "epochs", 0, r"model_config\.training\.epochs: must be positive"),
        (
            "training",
            "strategy",
            "tpu",
            r"model_config\.training\.strategy: single, mirrored or multi_worker",
        ),
        ("tuning", "search_space", {"widht": [8]}, r"model_config\.tuning\.search_space: unknown"),
        ("tuning", "parallel_trials", True, r"model_config\.tuning\.parallel_trials: expected an integer"),
        ("model", "channels", 2, r"model_config\.model\.channels: must be 1 or 3"),
        ("model", "hyperparameters", {"widht": 8}, r"model_config\.model\.hyperparameters: unknown"),
        ("model", "backup_dir", "/tmp/b", r"model_config\.model\.backup_dir: unknown field"),
    ],
)
def test_module_config_errors_name_the_field(section, key, value, message):
    from components.image_model.settings import ModuleConfig, ModuleConfigError

    with pytest.raises(ModuleConfigError, match=message):
        ModuleConfig.from_dict(_edited(section, key, value))


@pytest.mark.parametrize(
    "data,message",
    [
        (None, r"model_config: expected a mapping, got NoneType"),
        ('{"model": ', r"model_config: not valid JSON"),
        ({"task": "classification", "model": {}, "training": {}}, r"model_config\.tuning: missing"),
        ({"model": {}, "training": {}, "tuning": {}}, r"model_config\.task: missing"),
    ],
)
def test_module_config_rejects_a_missing_or_broken_config(data, message):
    from components.image_model.settings import ModuleConfig, ModuleConfigError

    with pytest.raises(ModuleConfigError, match=message):
        ModuleConfig.from_dict(data)


def test_hyperparameter_names_in_the_config_are_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  hyperparameters: {widht: 8}\n")
    with pytest.raises(ConfigError, match=r"model\.hyperparameters: unknown hyperparameters \['widht'\]"):
        load_config(str(path))


def _fn_args(root, custom_config, execution: int = 7):
    """What the TFX Trainer hands run_fn: output URIs of a local run, one execution of the node."""
    import types

    examples = root / "examples"
    (examples / "Split-train").mkdir(parents=True, exist_ok=True)
    (examples / "labels.txt").write_text("circle\nsquare\n")
    trainer = root / "pipeline_root" / "Trainer"
    return types.SimpleNamespace(
        train_files=[f"{examples}/Split-train/*"],
        eval_files=[f"{examples}/Split-eval/*"],
        custom_config=custom_config,
        hyperparameters=None,
        base_model=None,
        working_dir=str(root / "pipeline_root" / "Tuner" / ".temp" / str(execution)),
        serving_model_dir=str(trainer / "model" / str(execution) / "Format-Serving"),
        model_run_dir=str(trainer / "model_run" / str(execution)),
    )


@pytest.mark.parametrize("fn", ["tuner_fn", "run_fn"])
def test_tuner_and_trainer_reject_a_bad_custom_config_naming_the_field(tmp_path, fn):
    from components.image_model import trainer_module
    from components.image_model.settings import ModuleConfigError

    fn_args = _fn_args(tmp_path, _edited("training", "batch_size", "32"))
    with pytest.raises(ModuleConfigError, match=r"model_config\.training\.batch_size: expected an integer"):
        getattr(trainer_module, fn)(fn_args)


def test_trainer_backup_is_inside_the_pipeline_root_and_found_again_by_a_new_execution(tmp_path, monkeypatch):
    from components.image_model import trainer_module
    from components.image_model.training import TrainSpec

    specs = []

    def fit_in_fresh_process(spec_json, log_dir, kind):  # What run_fn hands the worker process.
        specs.append(TrainSpec.from_json(spec_json))
        return []

    monkeypatch.setattr(trainer_module, "run_training_process", fit_in_fresh_process)
    config = _edited("model", "image_size", 32)
    trainer_module.run_fn(_fn_args(tmp_path, config, execution=7))
    trainer_module.run_fn(_fn_args(tmp_path, config, execution=8))  # Restarted: a new model_run URI.
    config["training"]["epochs"] = 3
    trainer_module.run_fn(_fn_args(tmp_path, config, execution=9))

    first, restarted, changed = (spec.backup_dir for spec in specs)
    trainer_dir = str(tmp_path / "pipeline_root" / "Trainer")
    assert first == restarted and first.startswith(f"{trainer_dir}/.backup/")
    assert changed != first and changed.startswith(f"{trainer_dir}/.backup/")
    assert specs[0].epochs == 15 and specs[2].epochs == 3 and specs[0].image_size == 32


def _trial_results(root, hyperparameters: dict, epochs: int) -> str:
    """A tuner_results artifact as the Tuner leaves it: best_trial.json beside best_trial/."""
    import json

    results = root / "tuner_results"
    (results / "best_trial").mkdir(parents=True)
    record = {"trial_id": "02", "hyperparameters": hyperparameters, "score": 0.9, "epochs": epochs}
    (results / "best_trial.json").write_text(json.dumps({**record, "checkpoint": "best_trial/checkpoint"}))
    return str(results)


@pytest.mark.parametrize(
    "trial, edit, continues",
    [
        ({"width": 24, "depth": 1, "learning_rate": 0.002, "dropout": 0.1}, {}, True),
        ({"width": 24, "depth": 1, "learning_rate": 0.002, "dropout": 0.3}, {}, False),  # Another network.
        (
            {"width": 24, "depth": 1, "learning_rate": 0.002, "dropout": 0.1},
            {"epochs": 4},
            False,
        ),  # Not fewer.
        (
            {"width": 24, "depth": 1, "learning_rate": 0.002, "dropout": 0.1},
            {"from_best_trial": False},
            False,
        ),
    ],
)
def test_trainer_continues_from_the_best_trial_only_for_the_same_network(
    tmp_path, monkeypatch, trial, edit, continues
):
    from components.image_model import trainer_module
    from components.image_model.trainer import TUNER_RESULTS_CONFIG
    from components.image_model.training import TrainSpec

    specs = []
    monkeypatch.setattr(
        trainer_module,
        "run_training_process",
        lambda spec_json, **_: specs.append(TrainSpec.from_json(spec_json)) or [],
    )
    config = _edited("model", "image_size", 32)
    config["training"].update(edit)
    fn_args = _fn_args(tmp_path, {**config, TUNER_RESULTS_CONFIG: _trial_results(tmp_path, trial, 4)})
    fn_args.hyperparameters = {"values": {"width": 24, "depth": 1, "learning_rate": 0.002, "dropout": 0.1}}
    trainer_module.run_fn(fn_args)

    (spec,) = specs
    if continues:
        assert spec.initial_checkpoint == str(tmp_path / "tuner_results" / "best_trial" / "checkpoint")
        assert (spec.initial_epoch, spec.epochs) == (4, 15)
    else:
        assert (spec.initial_checkpoint, spec.initial_epoch) == (None, 0)


def test_kubeflow_trainer_backup_is_under_the_runs_trainer_directory():
    from components.image_model.trainer_module import backup_dir

    model_run = "gs://bucket/root/cvpipe/run-42/Trainer/3f2a/model_run"
    assert backup_dir(model_run, {"a": 1}).startswith("gs://bucket/root/cvpipe/run-42/Trainer/.backup/")
    assert backup_dir(model_run, {"a": 1}) == backup_dir(model_run.replace("3f2a", "9c1d"), {"a": 1})


def test_detection_takes_its_own_defaults_under_the_users_config(tmp_path):
    from components.image_model.tuning import DETECTION_SPACE

    detection = load_config(None, {"task": "detection"})
    assert detection.tuning.search_space == DETECTION_SPACE
    assert detection.training.epochs != load_config().training.epochs
    path = tmp_path / "c.yaml"
    path.write_text("task: detection\ntraining: {epochs: 3}\ntuning: {search_space: {width: [8]}}\n")
    mine = load_config(str(path))
    assert (mine.training.epochs, mine.tuning.search_space) == (3, {"width": [8]})
    assert mine.tuning.max_trials == detection.tuning.max_trials  # The rest stays detection's.
    assert load_config().tuning.search_space["depth"] == [1, 2]  # Classification is unchanged.


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            {"model": {"hyperparameters": {"dropout": 0.1}}},
            r"model\.hyperparameters: unknown hyperparameters \['dropout'\] for task detection",
        ),
        (
            {"tuning": {"search_space": {"depth": [1]}}},
            r"tuning\.search_space: unknown hyperparameters \['depth'\]",
        ),
        ({"edge": {"modes": ["float16"]}}, r"edge\.modes: a detector exports float32 and int8 only"),
    ],
)
def test_detection_settings_are_checked_against_the_detector(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, {"task": "detection", **overrides})


def test_the_module_config_carries_the_task_and_checks_names_against_it():
    from components.image_model.settings import ModuleConfig, ModuleConfigError
    from pipelines.pipeline import module_config

    data = module_config(load_config(None, {"task": "detection"}))
    assert ModuleConfig.from_dict(data).task == "detection"
    data["tuning"]["search_space"] = {"dropout": [0.1]}
    with pytest.raises(ModuleConfigError, match=r"model_config\.tuning\.search_space: unknown .*head_width"):
        ModuleConfig.from_dict(data)


def test_a_run_starts_a_standby_process_for_each_tuning_worker_and_the_trainer():
    from pipelines.runner import standby_count

    assert standby_count(load_config()) == 3  # Two tuning workers, then the Trainer's process.
    assert standby_count(load_config(None, {"tuning": {"enabled": False}})) == 1
    assert standby_count(load_config(None, {"tuning": {"parallel_trials": 0}})) == 1
    assert standby_count(load_config(None, {"training": {"strategy": "multi_worker", "workers": 3}})) == 5
    assert standby_count(load_config(None, {"training": {"fresh_process": False}})) == 2
