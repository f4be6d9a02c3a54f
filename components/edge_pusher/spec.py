"""Names shared by EdgePusher, its executor, the CLI and the tests."""

from components.serving_pusher.spec import (  # noqa: F401  The same properties as a serving push.
    BLESSED,
    PUSHED,
    PUSHED_DESTINATION,
    PUSHED_VERSION,
)

# EdgePusher parameters and channels.
BASE_DIRECTORY_KEY = "base_directory"
MODEL_NAME_KEY = "model_name"
TFLITE_MODEL_KEY = "tflite_model"  # TFLiteExporter's output.
MODEL_BLESSING_KEY = "model_blessing"  # The Evaluator's blessing.
PUSHED_MODEL_KEY = "pushed_model"  # ServingPusher's output: the version number to push under.
PUSHED_EDGE_MODEL_KEY = "pushed_edge_model"

# Custom property of the output when nothing was pushed.
REASON = "reason"
