"""Checked-in schemas and the documented example format (see README.md)."""

import os

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(SCHEMA_DIR, "schema.pbtxt")
