"""Each span's statistics at a stable place, so the next span can be compared with them.

    <store>/span-<N>/Split-<split>/FeatureStats.pb   a copy of span N's statistics
    <store>/span-<N>/pixels.parquet                  path, split, label, sha256, pixel properties
                                                     and pHash of each ingested image
    <store>/span-<N>/boxes.json                      detection: each split's box distributions
                                                     (boxes.distributions)
    <store>/span-<N>/span.json                       span, verdict, sources; written last

DataChecks publishes the span it checked and reads the latest earlier span from here, so drift is
compared the same way on a local run, on Kubeflow Pipelines and on Vertex AI (no orchestrator
metadata is consulted). A re-ingested span replaces its entry. Spans whose data failed validation
are kept (the report of the next span says which span it was compared with) but are not used as a
baseline: the next span is compared with the last span that passed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from components.data_checks import readers
from components.image_example_gen import spec

META_FILE = "span.json"
STATS_FILE = "FeatureStats.pb"
PIXELS_FILE = "pixels.parquet"
BOXES_FILE = "boxes.json"


@dataclasses.dataclass(frozen=True)
class StoredSpan:
    span: int
    uri: str  # A statistics directory (Split-*/FeatureStats.pb), readable like the artifact.
    verdict: str
    pixels: str = ""  # The span's pixel table, when it has one.
    examples: str = ""  # The span's Examples artifact (the report's thumbnails of its images).
    boxes: str = ""  # Detection: the span's box distributions (boxes.json), when it has them.


def stored_spans(store: str) -> list[StoredSpan]:
    """Every complete entry, newest span first."""
    if not store or not tf.io.gfile.isdir(store):
        return []
    found = []
    for entry in tf.io.gfile.listdir(store):
        name = entry.rstrip("/")
        if not name.startswith("span-") or not name[5:].lstrip("-").isdigit():
            continue
        try:
            with tf.io.gfile.GFile(os.path.join(store, name, META_FILE)) as f:
                meta = json.load(f)
        except (tf.errors.NotFoundError, ValueError):
            continue  # Being written, or not ours.
        uri = os.path.join(store, name)
        pixels = os.path.join(uri, PIXELS_FILE) if meta.get("pixels") else ""
        boxes = os.path.join(uri, BOXES_FILE) if meta.get("boxes") else ""
        found.append(
            StoredSpan(
                int(meta["span"]), uri, meta.get("verdict", ""), pixels, meta.get("examples", ""), boxes
            )
        )
    return sorted(found, key=lambda s: s.span, reverse=True)


def baseline_for(store: str, span: int) -> StoredSpan | None:
    """The latest span before ``span`` whose data passed validation, if any."""
    for stored in stored_spans(store):
        if stored.span < span and stored.verdict != "fail":
            return stored
    return None


def publish(
    store: str,
    span: int,
    statistics_uri: str,
    verdict: str,
    catalog_uri: str = "",
    examples_uri: str = "",
    boxes: dict | None = None,
) -> str:
    """Copies the statistics artifact's splits to ``store/span-<span>``; the metadata goes last.

    With ``catalog_uri``, the pixel table of the span's ingested images goes there too; with
    ``boxes`` (detection), the box distributions per split.
    """
    target = os.path.join(store, f"span-{span}")
    tf.io.gfile.makedirs(target)
    meta_path = os.path.join(target, META_FILE)
    if tf.io.gfile.exists(meta_path):
        tf.io.gfile.remove(meta_path)  # Incomplete until rewritten.
    for entry in tf.io.gfile.listdir(statistics_uri):
        split = entry.rstrip("/")
        source = os.path.join(statistics_uri, split, STATS_FILE)
        if split.startswith("Split-") and tf.io.gfile.exists(source):
            tf.io.gfile.makedirs(os.path.join(target, split))
            tf.io.gfile.copy(source, os.path.join(target, split, STATS_FILE), overwrite=True)
    pixels = _pixel_table(catalog_uri) if catalog_uri else None
    if pixels is not None:
        buffer = pa.BufferOutputStream()
        pq.write_table(pixels, buffer)
        with tf.io.gfile.GFile(os.path.join(target, PIXELS_FILE), "wb") as f:
            f.write(buffer.getvalue().to_pybytes())
    boxes_path = os.path.join(target, BOXES_FILE)
    if boxes:
        with tf.io.gfile.GFile(boxes_path, "w") as f:
            json.dump(boxes, f, indent=1, sort_keys=True)
    elif tf.io.gfile.exists(boxes_path):
        tf.io.gfile.remove(boxes_path)  # A re-ingested span without boxes.
    meta = {
        "span": span,
        "verdict": verdict,
        "statistics": statistics_uri,
        "examples": examples_uri,
        "pixels": pixels is not None,
        "boxes": bool(boxes),
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tf.io.gfile.GFile(meta_path, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return target


def _pixel_table(catalog_uri: str) -> pa.Table | None:
    """The ingested rows' pixel columns, or None when the span has no pixel properties."""
    rows = readers.read_catalog(catalog_uri, [spec.STATUS, *readers.PIXEL_COLUMNS])
    kept = [
        {name: r[name] for name in readers.PIXEL_COLUMNS}
        for r in rows
        if r[spec.STATUS] == spec.INGESTED and r[spec.BRIGHTNESS] is not None
    ]
    if not kept:
        return None
    fields = [
        (name, pa.float64() if name in spec.PIXEL_PROPERTIES else pa.string())
        for name in readers.PIXEL_COLUMNS
    ]
    return pa.Table.from_pylist(kept, schema=pa.schema(fields))
