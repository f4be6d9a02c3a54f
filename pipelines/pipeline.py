"""The one pipeline factory, used by the local Beam runner, the Kubeflow compiler and the tests.

config = load_config("my.yaml", {"input": {"images": "data/shapes"}})
pipeline = create_pipeline(config, pipeline_root="out/pipeline_root",
                           metadata_path="out/metadata.sqlite")
"""

from __future__ import annotations

import os

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx

import schemas
from components.image_example_gen.component import ImageExampleGen
from pipelines.config import Config, ConfigError

# Stable node ids: ML Metadata contexts, caching and lineage are keyed on them.
EXAMPLE_GEN = "ImageExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "SchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"


def schema_path(config: Config) -> str | None:
    """The schema file the run imports, or None when the schema is inferred."""
    schema = config.validation.schema
    if schema is None:
        return None
    path = schemas.DEFAULT_SCHEMA if schema == "default" else schema
    if not os.path.isfile(path):
        raise ConfigError(f"validation.schema: {path} does not exist")
    return os.path.abspath(path)


def create_components(config: Config, *, input_fingerprint: str | None = None) -> list:
    if not config.input.images:
        raise ConfigError("input.images: required (the image root, optionally with {SPAN})")
    example_gen = ImageExampleGen(
        input_base=config.input.images,
        manifest=config.input.manifest,
        span=config.input.span,
        options=config.ingest.to_options(),
        input_fingerprint=input_fingerprint,
    ).with_id(EXAMPLE_GEN)
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=tfdv.StatsOptions(enable_semantic_domain_stats=True),
    ).with_id(STATISTICS_GEN)
    imported = schema_path(config)
    if imported:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=imported).with_id(SCHEMA_GEN)
    else:
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
        ).with_id(SCHEMA_GEN)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
    ).with_id(EXAMPLE_VALIDATOR)
    return [example_gen, statistics_gen, schema_gen, example_validator]


def create_pipeline(
    config: Config,
    *,
    pipeline_root: str,
    metadata_path: str | None = None,
    input_fingerprint: str | None = None,
) -> tfx.dsl.Pipeline:
    """Builds the cvpipe pipeline from a validated config.

    ``metadata_path`` selects a local SQLite ML Metadata store (None lets the orchestrator, e.g.
    Kubeflow, provide its own).
    """
    metadata = (
        tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path) if metadata_path else None
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=create_components(config, input_fingerprint=input_fingerprint),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.beam.args),
    )
