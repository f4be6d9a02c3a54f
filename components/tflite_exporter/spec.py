"""Names shared by TFLiteExporter, its executor, the EdgePusher and the tests."""

# TFLiteExporter parameters and channels.
MODES_KEY = "modes"  # JSON list of convert.MODES.
REPRESENTATIVE_COUNT_KEY = "representative_count"
MAX_ACCURACY_DROP_KEY = "max_accuracy_drop"
MIN_AGREEMENT_KEY = "min_agreement"
MAX_MAP_DROP_KEY = "max_map_drop"  # Detectors: the largest COCO mAP@0.5 drop a variant may show.
MODEL_NAME_KEY = "model_name"
AUTHOR_KEY = "author"  # The metadata's author.
MODEL_KEY = "model"
EXAMPLES_KEY = "examples"
TFLITE_MODEL_KEY = "tflite_model"

DEFAULT_AUTHOR = "cvpipe"
DEFAULT_MAX_MAP_DROP = 0.02
# The modes a detector exports to (TFLite_Detection_PostProcess needs float outputs): for config
# validation without importing TensorFlow.
DETECTION_MODES = ("float32", "int8")
# The metadata version of an exported variant: the EdgePusher stamps the pushed version in.
UNPUSHED_VERSION = "unpushed"

# Custom properties of the TFLiteModel artifact.
BLESSED = "blessed"  # 1 when every variant passed the parity gate.
SOURCE_MODEL = "source_model"  # The Trainer output the variants were converted from.

# Files of the TFLiteModel artifact.
PARITY_FILE = "parity.json"
LABELS_FILE = "labels.txt"
MODEL_FILE = "model_{mode}.tflite"
TFLITE_SUFFIX = ".tflite"


# The artifact type's name, read without TFX; its class is in components/artifacts.py.
TFLITE_MODEL_TYPE = "components.TFLiteModel"  # Also a class path: see components/__init__.py.


def __getattr__(name: str):
    """``TFLiteModel``, loaded from components/artifacts.py (and so TFX) on first use."""
    if name == "TFLiteModel":
        from components.artifacts import TFLiteModel

        return TFLiteModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
