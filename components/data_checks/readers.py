"""Reading the data half's artifacts back: local paths, or any URI tf.io.gfile knows.

Through components.fileio, so that reading a local run (`cvpipe report`) does not import TensorFlow.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from components import fileio
from components.image_example_gen import spec

CATALOG_COLUMNS = [
    spec.PATH, spec.STATUS, spec.REASON, spec.DETAIL, spec.SPLIT, spec.LABEL, spec.SHA256,
    spec.WIDTH, spec.HEIGHT, spec.FORMAT, spec.ORIGINAL_FORMAT, spec.DUPLICATE_OF,
    *spec.PIXEL_PROPERTIES, spec.PHASH, *spec.FLAG_COLUMNS, *spec.DETECTION_COLUMNS,
]  # fmt: skip
# The columns of a span's pixel table in the statistics store (store.py).
PIXEL_COLUMNS = [spec.PATH, spec.SPLIT, spec.LABEL, spec.SHA256, *spec.PIXEL_PROPERTIES, spec.PHASH]


def read_catalog(uri: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """The catalog's rows; a column a catalog written before it existed lacks reads as None."""
    with fileio.open(os.path.join(uri, spec.CATALOG_FILE), "rb") as f:
        return _read_rows(f.read(), columns or CATALOG_COLUMNS)


def read_pixels(path: str) -> list[dict[str, Any]]:
    """A pixel table (path, split, label, sha256, the properties, phash) of the statistics store."""
    with fileio.open(path, "rb") as f:
        return _read_rows(f.read(), PIXEL_COLUMNS)


def _read_rows(data: bytes, columns: list[str]) -> list[dict[str, Any]]:
    # One file: ParquetFile, not read_table, whose dataset layer imports pandas (0.6 s of `cvpipe report`).
    parquet = pq.ParquetFile(pa.BufferReader(data))
    present = [c for c in columns if c in parquet.schema_arrow.names]
    rows = parquet.read(columns=present).to_pylist()
    missing = [c for c in columns if c not in present]
    for row in rows if missing else ():
        row.update(dict.fromkeys(missing))
    return rows


def read_summary(uri: str) -> dict[str, Any]:
    with fileio.open(os.path.join(uri, spec.SUMMARY_FILE)) as f:
        return json.load(f)


def split_names(uri: str) -> list[str]:
    """The Split-* directories of an artifact, in name order."""
    return sorted(
        entry.rstrip("/")[len("Split-") :] for entry in fileio.listdir(uri) if entry.startswith("Split-")
    )


def read_statistics(uri: str, split: str) -> statistics_pb2.DatasetFeatureStatisticsList | None:
    path = os.path.join(uri, f"Split-{split}", "FeatureStats.pb")
    if not fileio.exists(path):
        return None
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with fileio.open(path, "rb") as f:
        stats.ParseFromString(f.read())
    return stats


def schema_text(uri: str) -> str:
    """The text of a Schema artifact's schema (ImportSchemaGen or SchemaGen), or of a .pbtxt file."""
    path = uri if uri.endswith(".pbtxt") else os.path.join(uri, "schema.pbtxt")
    with fileio.open(path) as f:
        return f.read()


def read_schema(uri: str) -> schema_pb2.Schema:
    return text_format.Parse(schema_text(uri), schema_pb2.Schema())


def read_schema_diffs(uri: str) -> dict[str, anomalies_pb2.Anomalies]:
    """Split -> Anomalies of an ExampleValidator artifact."""
    found = {}
    for split in split_names(uri):
        path = os.path.join(uri, f"Split-{split}", "SchemaDiff.pb")
        if fileio.exists(path):
            anomalies = anomalies_pb2.Anomalies()
            with fileio.open(path, "rb") as f:
                anomalies.ParseFromString(f.read())
            found[split] = anomalies
    return found
