"""Names shared by TFLiteExporter, its executor, the EdgePusher and the tests."""

from tfx import types

PARITY_FILE = "parity.json"
LABELS_FILE = "labels.txt"


class TFLiteModel(types.Artifact):
    """model_<mode>.tflite files, labels.txt and parity.json; custom property ``blessed``."""

    TYPE_NAME = "components.TFLiteModel"  # Importable: see components/__init__.py.
