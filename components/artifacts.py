"""cvpipe's custom TFX artifact types.

Their type names, keys and file names live in each component's ``spec`` module, which does not
import TFX, so that reading a run's files (``cvpipe lineage``, ``cvpipe report``) never loads
TensorFlow. Each ``spec`` module still answers its own class by name (``spec.DataCheckResults``),
loading this module then, and ``components.<TypeName>`` resolves through it (see
components/__init__.py): TFX's Kubeflow V2 entrypoint imports a TYPE_NAME as a class path.

    from components.artifacts import DataCheckResults
    ChannelParameter(type=DataCheckResults)
"""

from tfx import types

from components.data_checks import spec as checks_spec
from components.image_example_gen import spec as example_spec
from components.model_review import spec as review_spec
from components.tflite_exporter import spec as tflite_spec
from components.validation_report import spec as report_spec


class ImageCatalog(types.Artifact):
    """catalog.parquet (one row per input file), summary.json and labels.txt of one ingestion."""

    TYPE_NAME = example_spec.IMAGE_CATALOG_TYPE


class DataCheckResults(types.Artifact):
    """checks.json: every anomaly (cvpipe's, TFDV's, drift), the drift table and the verdict."""

    TYPE_NAME = checks_spec.DATA_CHECK_RESULTS_TYPE


class ValidationReport(types.Artifact):
    """index.html: the self-contained data-validation report."""

    TYPE_NAME = report_spec.VALIDATION_REPORT_TYPE


class TFLiteModel(types.Artifact):
    """model_<mode>.tflite files, labels.txt and parity.json; custom property ``blessed``."""

    TYPE_NAME = tflite_spec.TFLITE_MODEL_TYPE


class ModelReview(types.Artifact):
    """review.json and model_review.html: the model's review page and everything it shows."""

    TYPE_NAME = review_spec.MODEL_REVIEW_TYPE
