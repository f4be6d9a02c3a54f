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
