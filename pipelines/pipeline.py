"""The one pipeline factory, used by the local Beam runner, the Kubeflow compiler and the tests.

config = load_config("my.yaml", {"input": {"images": "data/shapes"}})
pipeline = create_pipeline(config, pipeline_root="out/pipeline_root",
                           metadata_path="out/metadata.sqlite", push_root="out")

Everything that decides a result is a node of the graph, so a local run, Kubeflow Pipelines and
Vertex AI behave alike: InputFingerprint resolves the span and fingerprints its files, so caches
see new images; DataChecks compares with the last span kept in the statistics store; ServedModel
finds the model being served (the Evaluator's baseline and the warm start).
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma

# Not `tfx.v1`: it imports the Google Cloud AI Platform extension (about 5 s per process).
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.schema_gen.component import SchemaGen
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import trainer_pb2

import schemas
from components.data_checks.component import DataChecks, DataGate
from components.edge_pusher.component import EdgePusher
from components.image_example_gen import spec as example_spec
from components.image_example_gen.component import ImageExampleGen
from components.image_model.export import EXAMPLES_SIGNATURE
from components.image_model.trainer import Trainer
from components.image_model.tuner import Tuner
from components.input_fingerprint.component import InputFingerprint
from components.model_evaluator.component import ModelEvaluator
from components.model_review.component import ModelReviewGen
from components.served_model.component import ServedModel
from components.serving_pusher.component import ServingPusher
from components.tflite_exporter.component import TFLiteExporter
from components.validation_report.component import ValidationReportGen
from pipelines.config import Config, ConfigError

# Stable node ids (pipelines/nodes.py, which reading a run imports without TFX), re-exported here.
from pipelines.nodes import (  # noqa: F401
    DATA_CHECKS,
    DATA_GATE,
    EDGE_PUSHER,
    EVALUATOR,
    EXAMPLE_GEN,
    EXAMPLE_VALIDATOR,
    INPUT_FINGERPRINT,
    MODEL_REVIEW,
    PUSHER,
    SCHEMA_GEN,
    SERVED_MODEL,
    STATISTICS_GEN,
    TFLITE_EXPORTER,
    TRAINER,
    TUNER,
    VALIDATION_REPORT,
)

TRAINER_MODULE = "components.image_model.trainer_module"
ACCURACY = "sparse_categorical_accuracy"


IMAGE_SOURCE_DIR = "/cvpipe"  # Where deployment/Dockerfile puts the source in the pipeline image.
SERVING_DIR = "serving"  # push_root/serving/<model_name>/<version>/
EDGE_DIR = "edge"  # push_root/edge/<model_name>/<version>/
STATISTICS_DIR = "statistics"  # pipeline_root/<pipeline_name>/statistics/span-<N>/


def statistics_store(config: Config, pipeline_root: str) -> str:
    """Where DataChecks keeps each span's statistics (a stable place, compared across runs)."""
    return os.path.join(pipeline_root, config.pipeline_name, STATISTICS_DIR)


def schema_path(config: Config, kubeflow: bool = False) -> str | None:
    """The schema file the run imports, or None when the schema is inferred.

    ``default`` is the task's checked-in schema (``schemas.SCHEMAS``). On Kubeflow the file is read
    inside the pipeline image: the default schema is the image's copy, and any other path must be
    visible there (e.g. a /gcs/ mount).
    """
    schema = config.validation.schema
    if schema is None:
        return None
    default = schemas.SCHEMAS[config.task]  # The checked-in schema of the task's examples.
    if kubeflow:
        return f"{IMAGE_SOURCE_DIR}/schemas/{os.path.basename(default)}" if schema == "default" else schema
    path = default if schema == "default" else schema
    if not os.path.isfile(path):
        raise ConfigError(f"validation.schema: {path} does not exist")
    return os.path.abspath(path)


def eval_config(config: Config) -> tfma.EvalConfig:
    """Accuracy (a detector: COCO mAP@0.5) must clear the lower bound and not drop more than
    allowed against the baseline."""
    if config.task == "detection":
        from components.model_evaluator import detection

        evaluation = config.evaluation
        return detection.eval_config(
            evaluation.min_map, evaluation.max_map_drop, iou_range=evaluation.map_iou_range
        )
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.evaluation.min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.evaluation.max_accuracy_drop},
        ),
    )
    # The gate is on the whole eval split; per-class accuracy is computed for the report only.
    accuracy = tfma.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        per_slice_thresholds=[
            tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)
        ],
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE,
                label_key=example_spec.LABEL_INDEX,
                prediction_key="probabilities",
                # A generic SavedModel: TFMA would otherwise load each model as Keras once more to
                # find out, and load it as Keras to serve (6 s of a 17 s evaluation); it only
                # calls the signature.
                model_type=tfma.TF_GENERIC,
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[example_spec.LABEL])],
        metrics_specs=[tfma.MetricsSpec(metrics=[accuracy, tfma.MetricConfig(class_name="ExampleCount")])],
    )


def module_config(config: Config) -> dict:
    model = dataclasses.asdict(config.model)
    model["channels"] = config.ingest.channels
    return {
        "task": config.task,
        "model": model,
        "training": dataclasses.asdict(config.training),
        "tuning": dataclasses.asdict(config.tuning),
    }


def model_components(
    config: Config,
    example_gen,
    schema_gen,
    gate,
    push_root: str,
    model_config=None,
) -> list:
    """Tuner (optional) -> Trainer -> ModelEvaluator (against ServedModel) -> ServingPusher -> edge,
    and ModelReview (the model's review page) once the model is evaluated and exported; it tells a
    detector from a classifier by the model's params.

    Tuner and Trainer wait for the data gate, so data that fails validation is never trained on.
    ``model_config`` (a RuntimeParameter on Kubeflow) replaces the settings taken from ``config``.
    """
    serving_dir, edge_dir = os.path.join(push_root, SERVING_DIR), os.path.join(push_root, EDGE_DIR)
    examples = example_gen.outputs["examples"]
    custom_config = module_config(config)
    components = []
    hyperparameters = tuner_results = None
    if config.tuning.enabled:
        tuner = Tuner(
            tuner_fn=f"{TRAINER_MODULE}.tuner_fn",
            examples=examples,
            schema=schema_gen.outputs["schema"],
            train_args=trainer_pb2.TrainArgs(splits=["train"]),
            eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
            custom_config=custom_config,
        ).with_id(TUNER)
        if model_config is not None:  # The Tuner's constructor only takes a dict; the spec takes both.
            tuner.exec_properties["custom_config"] = model_config
        tuner.add_upstream_node(gate)
        components.append(tuner)
        hyperparameters, tuner_results = tuner.outputs["best_hyperparameters"], tuner.outputs["tuner_results"]
    served = ServedModel(
        examples=examples, base_directory=serving_dir, model_name=config.serving.model_name
    ).with_id(SERVED_MODEL)
    trainer = Trainer(
        run_fn=f"{TRAINER_MODULE}.run_fn",
        examples=examples,
        schema=schema_gen.outputs["schema"],
        hyperparameters=hyperparameters,
        tuner_results=tuner_results if config.training.from_best_trial else None,
        base_model=served.outputs["model"] if config.training.warm_start else None,
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config=custom_config if model_config is None else model_config,
    ).with_id(TRAINER)
    trainer.add_upstream_node(gate)
    evaluator = ModelEvaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=served.outputs["model"],
        example_splits=["eval"],
        eval_config=eval_config(config),
    ).with_id(EVALUATOR)
    if config.evaluation.beam_args:
        evaluator.with_beam_pipeline_args(list(config.evaluation.beam_args))
    pusher = ServingPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        model_run=trainer.outputs["model_run"],
        examples=examples,
        base_directory=serving_dir,
        model_name=config.serving.model_name,
    ).with_id(PUSHER)
    components += [served, trainer, evaluator, pusher]
    tflite_model = None
    if config.edge.enabled:
        exporter = TFLiteExporter(
            model=trainer.outputs["model"],
            examples=examples,
            modes=config.edge.modes,
            representative_count=config.edge.representative_count,
            max_accuracy_drop=config.edge.max_accuracy_drop,
            min_agreement=config.edge.min_agreement,
            max_map_drop=config.edge.max_map_drop,
            model_name=config.serving.model_name,
            author=config.edge.author,
        ).with_id(TFLITE_EXPORTER)
        edge_pusher = EdgePusher(
            tflite_model=exporter.outputs["tflite_model"],
            model_blessing=evaluator.outputs["blessing"],
            pushed_model=pusher.outputs["pushed_model"],
            base_directory=edge_dir,
            model_name=config.serving.model_name,
        ).with_id(EDGE_PUSHER)
        components += [exporter, edge_pusher]
        tflite_model = exporter.outputs["tflite_model"]
    review = ModelReviewGen(
        examples=examples,
        model=trainer.outputs["model"],
        model_run=trainer.outputs["model_run"],
        tflite_model=tflite_model,
        tuner_results=tuner_results,
        model_blessing=evaluator.outputs["blessing"],
        pipeline_name=config.pipeline_name,
    ).with_id(MODEL_REVIEW)
    return components + [review]


def create_components(
    config: Config,
    *,
    pipeline_root: str,
    push_root: str | None = None,
    runtime=None,
) -> list:
    """The pipeline's nodes; ``runtime`` (kubeflow.RuntimeParameters) makes run-to-run values parameters."""
    if not config.input.images:
        raise ConfigError("input.images: required (the image root, optionally with {SPAN})")
    input_base = runtime.input_base if runtime else config.input.images
    span = runtime.span if runtime else config.input.span
    fingerprint = InputFingerprint(input_base=input_base, manifest=config.input.manifest, span=span).with_id(
        INPUT_FINGERPRINT
    )
    example_gen = ImageExampleGen(
        input_base=input_base,
        manifest=config.input.manifest,
        span=span,
        options=config.ingest.to_options(),
        input_fingerprint=fingerprint.value,
    ).with_id(EXAMPLE_GEN)
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=tfdv.StatsOptions(enable_semantic_domain_stats=True),
    ).with_id(STATISTICS_GEN)
    imported = schema_path(config, kubeflow=runtime is not None)
    if imported:
        schema_gen = ImportSchemaGen(schema_file=imported).with_id(SCHEMA_GEN)
    else:
        schema_gen = SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
        ).with_id(SCHEMA_GEN)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
    ).with_id(EXAMPLE_VALIDATOR)
    data_inputs = dict(
        examples=example_gen.outputs["examples"],
        catalog=example_gen.outputs["catalog"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
    )
    checks = DataChecks(
        **data_inputs,
        anomalies=example_validator.outputs["anomalies"],
        options=config.validation.check_options(),
        baseline_statistics=runtime.baseline_statistics
        if runtime
        else config.validation.baseline_statistics or "",
        statistics_store=statistics_store(config, pipeline_root),
    ).with_id(DATA_CHECKS)
    report = ValidationReportGen(
        **data_inputs,
        checks=checks.outputs["checks"],
        pipeline_name=config.pipeline_name,
        thumbnails_per_class=config.validation.thumbnails_per_class,
    ).with_id(VALIDATION_REPORT)
    gate = DataGate(checks=checks.outputs["checks"], report=report.outputs["report"]).with_id(DATA_GATE)
    components = [
        fingerprint,
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        checks,
        report,
        gate,
    ]
    if push_root:
        components += model_components(
            config,
            example_gen,
            schema_gen,
            gate,
            push_root,
            model_config=runtime.model_config if runtime else None,
        )
    return components


def create_pipeline(
    config: Config,
    *,
    pipeline_root: str,
    metadata_path: str | None = None,
    push_root: str | None = None,
    runtime=None,
) -> tfx_pipeline.Pipeline:
    """Builds the cvpipe pipeline from a validated config.

    ``pipeline_root`` and ``push_root`` are any filesystem URIs TensorFlow knows (a local path,
    ``gs://``, ``s3://``). ``metadata_path`` selects a local SQLite ML Metadata store (None lets the
    orchestrator, e.g. Kubeflow, provide its own). ``push_root`` adds the model half (tuning,
    training, evaluation, push to ``push_root/serving/<model_name>/<version>`` and
    ``push_root/edge/...``); without it the pipeline stops after data validation. ``runtime``
    (kubeflow.RuntimeParameters) makes input, span, model settings and a drift baseline runtime
    parameters, for the Kubeflow compiler.
    """
    metadata = tfx_metadata.sqlite_metadata_connection_config(metadata_path) if metadata_path else None
    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=create_components(
            config, pipeline_root=pipeline_root, push_root=push_root, runtime=runtime
        ),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.beam.args),
    )
