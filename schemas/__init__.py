"""Checked-in schemas and the documented example format (see README.md)."""

import os

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(SCHEMA_DIR, "schema.pbtxt")
DETECTION_SCHEMA = os.path.join(SCHEMA_DIR, "detection_schema.pbtxt")
# The checked-in schema of each task's examples (config ``task``).
SCHEMAS = {"classification": DEFAULT_SCHEMA, "detection": DETECTION_SCHEMA}
