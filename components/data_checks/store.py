"""Each span's statistics at a stable place, so the next span can be compared with them.

    <store>/span-<N>/Split-<split>/FeatureStats.pb   a copy of span N's statistics
    <store>/span-<N>/span.json                       span, verdict, source; written last

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

import tensorflow as tf

META_FILE = "span.json"
STATS_FILE = "FeatureStats.pb"


@dataclasses.dataclass(frozen=True)
class StoredSpan:
    span: int
    uri: str  # A statistics directory (Split-*/FeatureStats.pb), readable like the artifact.
    verdict: str


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
        found.append(StoredSpan(int(meta["span"]), os.path.join(store, name), meta.get("verdict", "")))
    return sorted(found, key=lambda s: s.span, reverse=True)


def baseline_for(store: str, span: int) -> StoredSpan | None:
    """The latest span before ``span`` whose data passed validation, if any."""
    for stored in stored_spans(store):
        if stored.span < span and stored.verdict != "fail":
            return stored
    return None


def publish(store: str, span: int, statistics_uri: str, verdict: str) -> str:
    """Copies the statistics artifact's splits to ``store/span-<span>``; the metadata goes last."""
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
    meta = {
        "span": span,
        "verdict": verdict,
        "statistics": statistics_uri,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tf.io.gfile.GFile(meta_path, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return target
