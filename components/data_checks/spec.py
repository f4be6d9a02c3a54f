"""Names shared by DataChecks, DataGate, their executors, the report, the CLI and the tests."""

from tfx import types

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


class DataCheckResults(types.Artifact):
    """checks.json: every anomaly (cvpipe's, TFDV's, drift), the drift table and the verdict."""

    TYPE_NAME = "components.DataCheckResults"  # Importable: see components/__init__.py.
