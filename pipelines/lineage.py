"""Lineage of a pushed model, read from ML Metadata: which data, schema, statistics, validation,
hyperparameters and evaluation produced it.

info = lineage("out/run")                          # the latest pushed model of a run
info = lineage("out/run/serving/cvpipe/1700000000")  # or one pushed version (serving or edge)
print(format_lineage(info))

Reads ML Metadata and the artifacts' JSON files only: no TFX, no TensorFlow (artifacts on an
object store such as gs:// are read through TensorFlow's filesystems, imported then).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ml_metadata import errors as mlmd_errors

from components import fileio
from components.data_checks.spec import DATA_CHECK_RESULTS_TYPE
from components.validation_report.spec import REPORT_FILE, VALIDATION_REPORT_TYPE
from pipelines import metadata
from pipelines.metadata import INPUT, OUTPUT
from pipelines.nodes import EDGE_PUSHER, METADATA_FILE, PUSHER

DATA_TYPES = {
    "ExampleStatistics": "statistics",
    "ExampleAnomalies": "anomalies",
    DATA_CHECK_RESULTS_TYPE: "checks",
    VALIDATION_REPORT_TYPE: "report",
}


class _Graph:
    """Small helpers over one ML Metadata store."""

    def __init__(self, metadata_path: str):
        self.store = metadata.open_store(metadata_path)
        self.type_names = {t.id: t.name for t in self.store.get_artifact_types()}

    def type_name(self, artifact) -> str:
        return self.type_names.get(artifact.type_id, "")

    def producer(self, artifact):
        events = [e for e in self.store.get_events_by_artifact_ids([artifact.id]) if e.type == OUTPUT]
        if not events:
            return None
        (execution,) = self.store.get_executions_by_id([events[0].execution_id])
        return execution

    def consumers(self, artifact) -> list:
        ids = sorted(
            {e.execution_id for e in self.store.get_events_by_artifact_ids([artifact.id]) if e.type == INPUT}
        )
        return self.store.get_executions_by_id(ids) if ids else []

    def artifacts(self, execution, event_type) -> dict[str, list]:
        return metadata.artifacts_by_key(self.store, execution.id, event_type)

    def node(self, execution) -> str:
        """The pipeline node id of an execution (its "node" context is named PIPELINE.NODE)."""
        node_type = self.store.get_context_type("node").id
        for context in self.store.get_contexts_by_execution(execution.id):
            if context.type_id == node_type:
                return context.name.split(".", 1)[1]
        return ""


def _find_metadata(target: str) -> str:
    path = os.path.abspath(target)
    for _ in range(5):
        candidate = os.path.join(path, METADATA_FILE)
        if os.path.exists(candidate):
            return candidate
        path = os.path.dirname(path)
    raise FileNotFoundError(
        f"no {METADATA_FILE} in {target} or its parents: not a cvpipe run or pushed model"
    )


def _served(model) -> str:
    """A ServedModel artifact as the pushed version it copied."""
    return f"served version {_prop(model, 'served_version')} ({_prop(model, 'served_path')})"


def _prop(artifact, name: str):
    for props in (artifact.custom_properties, artifact.properties):
        if name in props:
            value = props[name]
            which = value.WhichOneof("value")
            return getattr(value, which) if which else None
    return None


def _pushed(graph: _Graph, target: str):
    """The PushedModel artifact of ``target`` (a pushed directory), or the run's latest serving push."""
    try:
        pushed_type = graph.store.get_artifact_type("PushedModel")
    except mlmd_errors.NotFoundError:  # Nothing was ever pushed (a --validate-only run).
        raise FileNotFoundError(f"{target}: no pushed model recorded in ML Metadata") from None
    pushed = [a for a in graph.store.get_artifacts_by_type(pushed_type.name) if _prop(a, "pushed") == 1]
    real = _canonical(target)
    exact = [a for a in pushed if _canonical(str(_prop(a, "pushed_destination") or "")) == real]
    if exact:
        return max(exact, key=lambda a: a.id)
    serving = [a for a in pushed if graph.node(graph.producer(a)) == PUSHER]
    if not serving:
        raise FileNotFoundError(f"{target}: no pushed model recorded in ML Metadata")
    if os.path.exists(os.path.join(target, METADATA_FILE)):
        return max(serving, key=lambda a: a.id)
    raise FileNotFoundError(f"{target}: not a pushed model directory of this run")


def _canonical(path: str) -> str:
    """A local path resolved (symlinks, relative parts); a URI (gs://...) without a trailing slash."""
    return path.rstrip("/") if "://" in path else os.path.realpath(path)


def _read_json(path: str) -> Any:
    """A JSON artifact file (local or any URI, see components.fileio), or None when there is none."""
    if not fileio.exists(path):
        return None
    with fileio.open(path) as f:
        return json.load(f)


def lineage(target: str) -> dict[str, Any]:
    graph = _Graph(_find_metadata(target))
    pushed = _pushed(graph, target)
    push = graph.producer(pushed)
    info: dict[str, Any] = {}
    if graph.node(push) == EDGE_PUSHER:
        info["edge_model"] = _prop(pushed, "pushed_destination")
        inputs = graph.artifacts(push, INPUT)
        serving = inputs["pushed_model"][0]
        info["tflite"] = _tflite(inputs["tflite_model"][0])
    else:
        serving = pushed
    info["serving_model"] = _prop(serving, "pushed_destination")
    serving_push = graph.producer(serving)
    for execution in graph.consumers(serving):
        for edge in graph.artifacts(execution, OUTPUT).get("pushed_edge_model", []):
            if _prop(edge, "pushed") == 1:
                info["edge_model"] = _prop(edge, "pushed_destination")
                tflite = graph.artifacts(execution, INPUT).get("tflite_model", [])
                if tflite:
                    info["tflite"] = _tflite(tflite[0])
    inputs = graph.artifacts(serving_push, INPUT)
    model, blessing = inputs["model"][0], inputs["model_blessing"][0]
    examples = inputs["examples"][0]
    info["model"] = model.uri

    trainer_inputs = graph.artifacts(graph.producer(model), INPUT)
    info["schema"] = trainer_inputs["schema"][0].uri
    tuned = trainer_inputs.get("hyperparameters")
    info["hyperparameters"] = _hyperparameters(tuned[0].uri) if tuned else "from the config (no Tuner)"
    info["hyperparameters_uri"] = tuned[0].uri if tuned else None
    base = trainer_inputs.get("base_model")
    if base and _prop(base[0], "found"):
        info["warm_started_from"] = _served(base[0])

    evaluator = graph.producer(blessing)
    evaluation = graph.artifacts(evaluator, OUTPUT).get("evaluation", [None])[0]
    baseline = graph.artifacts(evaluator, INPUT).get("baseline_model", [])
    info["evaluation"] = {
        "blessed": bool(_prop(blessing, "blessed")),
        "uri": evaluation.uri if evaluation else None,
        # The served version compared against (ServedModel's artifact is empty when none was).
        "baseline_model": _served(baseline[0]) if baseline and _prop(baseline[0], "found") else None,
    }
    run = inputs.get("model_run")
    metrics = _read_json(os.path.join(run[0].uri, "metrics.json")) if run else None
    if metrics is not None:
        info["evaluation"]["training_metrics"] = {k: v for k, v in metrics.items() if k != "hyperparameters"}

    info["span"] = _prop(examples, "span")
    info["examples"] = examples.uri
    example_gen = graph.producer(examples)
    info["input_base"] = _prop(example_gen, "input_base")
    catalog = graph.artifacts(example_gen, OUTPUT).get("catalog", [None])[0]
    info["catalog"] = catalog.uri if catalog else None
    info.update(_data_validation(graph, examples))
    return info


def _data_validation(graph: _Graph, examples) -> dict[str, Any]:
    """The newest statistics, anomalies, checks and report computed from ``examples``."""
    found: dict[str, Any] = {}
    frontier, seen = [examples], {examples.id}
    while frontier:
        artifact = frontier.pop()
        for execution in graph.consumers(artifact):
            for outputs in graph.artifacts(execution, OUTPUT).values():
                for out in outputs:
                    key = DATA_TYPES.get(graph.type_name(out))
                    if key is None or out.id in seen:
                        continue
                    seen.add(out.id)
                    frontier.append(out)
                    if key not in found or out.id > found[key].id:
                        found[key] = out
    result = {key: artifact.uri for key, artifact in found.items()}
    if "report" in found:
        result["report"] = os.path.join(found["report"].uri, REPORT_FILE)
    if "checks" in found:
        result["validation_verdict"] = _prop(found["checks"], "verdict")
    return result


def _hyperparameters(uri: str):
    tuned = _read_json(os.path.join(uri, "best_hyperparameters.txt"))
    return tuned.get("values") if tuned is not None else None


def _tflite(artifact) -> dict[str, Any]:
    summary: dict[str, Any] = {"uri": artifact.uri, "blessed": bool(_prop(artifact, "blessed"))}
    parity = _read_json(os.path.join(artifact.uri, "parity.json"))
    if parity is not None:
        summary["variants"] = {
            v["mode"]: {k: v[k] for k in ("accuracy", "agreement", "map50", "map", "size_bytes") if k in v}
            for v in parity.get("variants", [])
        }
    return summary


def format_lineage(info: dict[str, Any]) -> str:
    lines = ["Pushed models:"]
    lines.append(f"  serving: {info.get('serving_model')}")
    lines.append(f"  edge:    {info.get('edge_model') or 'not pushed'}")
    lines.append("Data:")
    lines.append(f"  span {info.get('span')} of {info.get('input_base')}")
    for key in ("examples", "catalog", "schema", "statistics", "anomalies", "checks", "report"):
        if info.get(key):
            lines.append(f"  {key + ':':12} {info[key]}")
    if info.get("validation_verdict"):
        lines.append(f"  validation:  {info['validation_verdict']}")
    lines.append("Model:")
    lines.append(f"  trained:     {info.get('model')}")
    lines.append(f"  hyperparameters: {json.dumps(info.get('hyperparameters'), sort_keys=True)}")
    if info.get("warm_started_from"):
        lines.append(f"  warm start:  {info['warm_started_from']}")
    evaluation = info.get("evaluation", {})
    verdict = "BLESSED" if evaluation.get("blessed") else "not blessed"
    lines.append(
        f"  evaluation:  {verdict} ({evaluation.get('uri')}), "
        f"baseline: {evaluation.get('baseline_model') or 'none (nothing was served yet)'}"
    )
    metrics = evaluation.get("training_metrics")
    if metrics:
        lines.append(f"  metrics:     {json.dumps(metrics, sort_keys=True)}")
    if info.get("tflite"):
        lines.append(f"  tflite:      {json.dumps(info['tflite'], sort_keys=True)}")
    return "\n".join(lines)
