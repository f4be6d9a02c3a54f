"""The names a run is read back by: the pipeline's node ids and the files of its output directory.

Imports nothing, so that reading a run (`cvpipe lineage`, `cvpipe report`) does not load the
pipeline factory and TFX; pipelines.pipeline and pipelines.runner use (and re-export) these.

    outputs[nodes.DATA_CHECKS]["checks"]              # After metadata.latest_outputs(...).
    os.path.join(output_dir, nodes.METADATA_FILE)     # The run's ML Metadata (SQLite).
"""

# Stable node ids: ML Metadata contexts, caching and lineage are keyed on them.
INPUT_FINGERPRINT = "InputFingerprint"
EXAMPLE_GEN = "ImageExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "SchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
DATA_CHECKS = "DataChecks"
VALIDATION_REPORT = "ValidationReport"
DATA_GATE = "DataGate"
TUNER = "Tuner"
TRAINER = "Trainer"
SERVED_MODEL = "ServedModel"
EVALUATOR = "Evaluator"
PUSHER = "ServingPusher"
TFLITE_EXPORTER = "TFLiteExporter"
EDGE_PUSHER = "EdgePusher"
MODEL_REVIEW = "ModelReview"

# A local run's output directory (`cvpipe run --output`).
METADATA_FILE = "metadata.sqlite"  # ML Metadata, written by the Beam DAG runner.
PIPELINE_ROOT = "pipeline_root"  # The artifacts, unless --pipeline-root puts them elsewhere.
