"""Names shared by ValidationReportGen, its executor, the gate, the CLI and the tests."""

from tfx import types

PIPELINE_NAME_KEY = "pipeline_name"
THUMBNAILS_PER_CLASS_KEY = "thumbnails_per_class"
MAX_THUMBNAIL_CLASSES_KEY = "max_thumbnail_classes"
REPORT_KEY = "report"
REPORT_FILE = "index.html"


class ValidationReport(types.Artifact):
    """index.html: the self-contained data-validation report."""

    TYPE_NAME = "cvpipe.ValidationReport"
