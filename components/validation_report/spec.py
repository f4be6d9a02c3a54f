"""Names shared by ValidationReportGen, its executor, the gate, the CLI and the tests."""

PIPELINE_NAME_KEY = "pipeline_name"
THUMBNAILS_PER_CLASS_KEY = "thumbnails_per_class"
MAX_THUMBNAIL_CLASSES_KEY = "max_thumbnail_classes"
REPORT_KEY = "report"
PAGE_KEY = "page"  # system.HTML: the same page, shown by the Kubeflow Pipelines UI.
VERDICT_KEY = "verdict"  # system.Markdown: the verdict and the blocking anomalies, for the UI.
REPORT_FILE = "index.html"
VERDICT_FILE = "verdict.md"


# The artifact type's name, read without TFX; its class is in components/artifacts.py.
VALIDATION_REPORT_TYPE = "components.ValidationReport"  # Also a class path: see components/__init__.py.


def __getattr__(name: str):
    """``ValidationReport``, loaded from components/artifacts.py (and so TFX) on first use."""
    if name == "ValidationReport":
        from components.artifacts import ValidationReport

        return ValidationReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
