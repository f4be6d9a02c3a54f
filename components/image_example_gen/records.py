"""The two records ingestion writes for an image: a tf.train.Example and a catalog row.

Also the deterministic split assignment. Pure functions, usable from a REPL:

    >>> assign_split("9f86d081884c7d65...", (("train", 80), ("eval", 10), ("test", 10)))
    'train'
"""

from __future__ import annotations

from typing import Any, Iterable

import pyarrow as pa
import tensorflow as tf

from components.image_example_gen import spec
from components.image_example_gen.discovery import safe_text
from components.image_example_gen.imaging import InspectedImage

_METADATA_STRINGS = (spec.CAMERA_MAKE, spec.CAMERA_MODEL, spec.CAPTURE_DATETIME)
_METADATA_FLOATS = (spec.GPS_LATITUDE, spec.GPS_LONGITUDE, spec.GPS_ALTITUDE)


def assign_split(sha256_hex: str, splits: Iterable[tuple[str, int]]) -> str:
    """Maps a content hash to a split by cumulative weight.

    The bucket depends only on the image's bytes, so adding images never moves existing ones and a
    re-ingested image lands where it did before.
    """
    splits = list(splits)
    total = sum(weight for _, weight in splits)
    position = int(sha256_hex[:15], 16) / float(16**15) * total
    cumulative = 0
    for name, weight in splits:
        cumulative += weight
        if position < cumulative:
            return name
    return splits[-1][0]


def _bytes(*values: str | bytes) -> tf.train.Feature:
    return tf.train.Feature(
        bytes_list=tf.train.BytesList(
            value=[v if isinstance(v, bytes) else v.encode("utf-8") for v in values]
        )
    )


def _int(*values: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _float(*values: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def label_features(label: str, label_index: int) -> dict[str, tf.train.Feature]:
    """Classification's targets: the class name and its line in labels.txt."""
    return {spec.LABEL: _bytes(label), spec.LABEL_INDEX: _int(label_index)}


def box_features(boxes: Iterable[Any], index: dict[str, int]) -> dict[str, tf.train.Feature]:
    """Detection's targets, as the TF Object Detection API writes them: one value per box in each list.

    ``boxes`` have xmin, ymin, xmax, ymax (normalised to [0, 1]) and category; ``index`` maps a
    category to its 0-based line in labels.txt. No boxes (a negative) gives empty lists.
    """
    boxes = list(boxes)
    return {
        spec.OBJECT_XMIN: _float(*(b.xmin for b in boxes)),
        spec.OBJECT_YMIN: _float(*(b.ymin for b in boxes)),
        spec.OBJECT_XMAX: _float(*(b.xmax for b in boxes)),
        spec.OBJECT_YMAX: _float(*(b.ymax for b in boxes)),
        spec.OBJECT_LABEL: _int(*(index[b.category] for b in boxes)),
        spec.OBJECT_TEXT: _bytes(*(b.category for b in boxes)),
    }


def encode_example(
    image: InspectedImage,
    *,
    targets: dict[str, tf.train.Feature],
    path: str,
    sha256: str,
    byte_size: int,
    extras: Iterable[tuple[str, Any]] = (),
) -> tf.train.Example:
    """Builds the documented example (schemas/README.md); absent Exif fields are left out.

    ``targets`` are the task's features: ``label_features`` or ``box_features``.
    """
    features = {
        spec.IMAGE: _bytes(image.encoded),
        **targets,
        spec.WIDTH: _int(image.width),
        spec.HEIGHT: _int(image.height),
        spec.CHANNELS: _int(image.channels),
        spec.FORMAT: _bytes(image.format),
        spec.ORIGINAL_FORMAT: _bytes(image.original_format),
        spec.PATH: _bytes(safe_text(path)),
        spec.SHA256: _bytes(sha256),
        spec.BYTE_SIZE: _int(byte_size),
        spec.ORIENTATION: _int(int(image.metadata.get(spec.ORIENTATION, 1))),
    }
    for key in _METADATA_STRINGS:
        if image.metadata.get(key):
            features[key] = _bytes(image.metadata[key])
    for key in _METADATA_FLOATS:
        if image.metadata.get(key) is not None:
            features[key] = _float(image.metadata[key])
    if image.pixels is not None:
        for key, value in image.pixels.features().items():
            features[key] = _bytes(value) if key == spec.PHASH else _float(value)
    for name, value in extras:
        if isinstance(value, bool) or isinstance(value, int):
            features[name] = _int(int(value))
        elif isinstance(value, float):
            features[name] = _float(value)
        else:
            features[name] = _bytes(str(value))
    return tf.train.Example(features=tf.train.Features(feature=features))


def catalog_schema(
    extra_columns: dict[str, str], task_fields: Iterable[tuple[str, pa.DataType]] = ()
) -> pa.Schema:
    """The catalog table: one row per input file, whatever happened to it.

    ``task_fields``: the task's own columns (detection: box_count, box_classes, box_issues).
    """
    fields = [
        (spec.PATH, pa.string()),
        (spec.STATUS, pa.string()),
        (spec.REASON, pa.string()),
        (spec.DETAIL, pa.string()),
        (spec.SPLIT, pa.string()),
        (spec.SPAN, pa.int64()),
        (spec.LABEL, pa.string()),
        (spec.LABEL_INDEX, pa.int64()),
        (spec.SHA256, pa.string()),
        (spec.BYTE_SIZE, pa.int64()),
        (spec.DUPLICATE_OF, pa.string()),
        (spec.WIDTH, pa.int64()),
        (spec.HEIGHT, pa.int64()),
        (spec.CHANNELS, pa.int64()),
        (spec.FORMAT, pa.string()),
        (spec.ORIGINAL_FORMAT, pa.string()),
        (spec.TRANSCODED, pa.bool_()),
        (spec.CAMERA_MAKE, pa.string()),
        (spec.CAMERA_MODEL, pa.string()),
        (spec.CAPTURE_DATETIME, pa.string()),
        (spec.ORIENTATION, pa.int64()),
        (spec.GPS_LATITUDE, pa.float64()),
        (spec.GPS_LONGITUDE, pa.float64()),
        (spec.GPS_ALTITUDE, pa.float64()),
        *((name, pa.float64()) for name in spec.PIXEL_PROPERTIES),
        (spec.PHASH, pa.string()),
        *((name, pa.bool_()) for name in spec.FLAGS),
        (spec.NEAR_DUPLICATE_OF, pa.string()),
        (spec.NEAR_DUPLICATE_DISTANCE, pa.int64()),
        (spec.FLAG_REASONS, pa.string()),
        *task_fields,
    ]
    arrow_types = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    fields += [(name, arrow_types[kind]) for name, kind in extra_columns.items()]
    return pa.schema(fields)


def catalog_row(schema: pa.Schema, **values: Any) -> dict[str, Any]:
    """A row with every schema column present (None where unknown)."""
    row = {name: None for name in schema.names}
    unknown = set(values) - set(row)
    if unknown:
        raise KeyError(f"not catalog columns: {sorted(unknown)}")
    row.update({k: safe_text(v) if isinstance(v, str) else v for k, v in values.items()})
    return row
