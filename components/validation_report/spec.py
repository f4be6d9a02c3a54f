"""Names shared by ValidationReportGen, its executor, the gate, the CLI and the tests."""

from tfx import types

PIPELINE_NAME_KEY = "pipeline_name"
THUMBNAILS_PER_CLASS_KEY = "thumbnails_per_class"
MAX_THUMBNAIL_CLASSES_KEY = "max_thumbnail_classes"
REPORT_KEY = "report"
PAGE_KEY = "page"  # system.HTML: the same page, shown by the Kubeflow Pipelines UI.
VERDICT_KEY = "verdict"  # system.Markdown: the verdict and the blocking anomalies, for the UI.
REPORT_FILE = "index.html"
VERDICT_FILE = "verdict.md"


class ValidationReport(types.Artifact):
    """index.html: the self-contained data-validation report."""

    TYPE_NAME = "components.ValidationReport"  # Importable: see components/__init__.py.
