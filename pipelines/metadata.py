"""Reading a run's ML Metadata (the local SQLite store the Beam DAG runner writes).

store = open_store("out/run/metadata.sqlite", readonly=True)
for node, executions in node_executions(store, "cvpipe").items():
    outputs = artifacts_by_key(store, executions[-1].id, OUTPUT)
states, outputs = latest_outputs("out/run/metadata.sqlite", "cvpipe")

Only ml_metadata, not TFX: `cvpipe lineage` and `cvpipe report` start without TensorFlow.
"""

from __future__ import annotations

import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

OUTPUT = metadata_store_pb2.Event.OUTPUT
INPUT = metadata_store_pb2.Event.INPUT
COMPLETE = metadata_store_pb2.Execution.COMPLETE
CACHED = metadata_store_pb2.Execution.CACHED


def open_store(path: str, *, readonly: bool = False) -> mlmd.MetadataStore:
    """The store at ``path``; ``readonly`` never creates or migrates it (safe beside a running pipeline)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    if readonly:
        config.sqlite.connection_mode = config.sqlite.READONLY
    else:  # As TFX's sqlite_metadata_connection_config: the file and its directory are created.
        config.sqlite.connection_mode = config.sqlite.READWRITE_OPENCREATE
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return mlmd.MetadataStore(config)


def node_executions(store: mlmd.MetadataStore, pipeline_name: str) -> dict[str, list]:
    """Node id -> its executions in id order (TFX names a node's context PIPELINE.NODE)."""
    prefix = f"{pipeline_name}."
    return {
        context.name[len(prefix) :]: sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
        for context in store.get_contexts_by_type("node")
        if context.name.startswith(prefix)
    }


def artifacts_by_key(store: mlmd.MetadataStore, execution_id: int, event_type) -> dict[str, list]:
    """An execution's input or output artifacts, grouped by their channel key."""
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type == event_type]
    found = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    by_key: dict[str, list] = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else ""
        by_key.setdefault(key, []).append(found[event.artifact_id])
    return by_key


def latest_outputs(metadata_path: str, pipeline_name: str):
    """For each node of the pipeline, its latest successful execution's state and output URIs."""
    store = open_store(metadata_path)
    states, outputs = {}, {}
    for node, executions in node_executions(store, pipeline_name).items():
        done = [e for e in executions if e.last_known_state in (COMPLETE, CACHED)]
        if not done:
            continue
        latest = done[-1]
        states[node] = "cached" if latest.last_known_state == CACHED else "ran"
        by_key = artifacts_by_key(store, latest.id, OUTPUT)
        outputs[node] = {key: [a.uri for a in artifacts] for key, artifacts in by_key.items()}
    return states, outputs
