"""Names shared by ServingPusher, its executor, the EdgePusher, the CLI and the tests."""

# ServingPusher parameters and channels.
BASE_DIRECTORY_KEY = "base_directory"
MODEL_NAME_KEY = "model_name"
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"
MODEL_RUN_KEY = "model_run"
EXAMPLES_KEY = "examples"
PUSHED_MODEL_KEY = "pushed_model"

# Custom properties read from the blessing and written on the PushedModel artifact.
BLESSED = "blessed"  # On the Evaluator's ModelBlessing.
PUSHED = "pushed"  # 1 when a version was pushed (or was already there), else 0.
PUSHED_DESTINATION = "pushed_destination"  # The version directory.
PUSHED_VERSION = "pushed_version"  # Its number.

METRICS_FILE = "metrics.json"  # In the Trainer's ModelRun: copied into the manifest.
