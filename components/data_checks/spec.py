"""Names shared by DataChecks, DataGate, their executors, the report, the CLI and the tests."""

# DataChecks parameters and channels.
OPTIONS_KEY = "options"
BASELINE_STATISTICS_KEY = "baseline_statistics"  # A previous span's statistics URI; "" = none.
STATISTICS_STORE_KEY = "statistics_store"  # Where each span's statistics are kept (store.py).
EXAMPLES_KEY = "examples"
CATALOG_KEY = "catalog"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
ANOMALIES_KEY = "anomalies"
CHECKS_KEY = "checks"

# DataGate channels.
REPORT_KEY = "report"
GATE_KEY = "gate"

CHECKS_FILE = "checks.json"
GATE_MARKER = "cvpipe data gate:"  # First words of the gate's error, found in whatever wraps it.


# The artifact type's name, read without TFX; its class is in components/artifacts.py.
DATA_CHECK_RESULTS_TYPE = "components.DataCheckResults"  # Also a class path: see components/__init__.py.


def __getattr__(name: str):
    """``DataCheckResults``, loaded from components/artifacts.py (and so TFX) on first use."""
    if name == "DataCheckResults":
        from components.artifacts import DataCheckResults

        return DataCheckResults
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
