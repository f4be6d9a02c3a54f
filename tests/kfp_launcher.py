"""Kubeflow Pipelines' v2 backend in miniature, for tests: runs a compiled PipelineSpec task by task.

There is no cluster here, so this is the contract a Kubeflow run holds a compiled pipeline to. It
reproduces, for the features a TFX pipeline uses, what open-source KFP 2 does with a PipelineSpec
(kubeflow/pipelines backend/src/v2):

- compiler/argocompiler: only container and importer executors ("resolver executors not
  implemented"; customJob is Google Cloud only); every task checked before anything runs.
- driver (root DAG and container): runtime parameters are root.inputDefinitions defaults overridden
  by run arguments; task parameters come from `componentInputParameter`, `runtimeValue.constant` or
  `taskOutputParameter` and are type-checked against the component's inputDefinitions (a STRING input
  given another type becomes its JSON text); upstream artifacts are read back from the store as
  RuntimeArtifacts (name = the artifact id as a decimal string, metadata = its stored properties, type
  an empty instanceSchema); every output URI is new, under <root>/<pipeline>/<run>/<task>/<uuid>/<key>,
  and nothing is created there; the cache fingerprint and the cache lookup.
- launcher: optional parameters without a value get the component's defaults, the placeholders
  (`{{$}}` and the `{{$.inputs...}}`/`{{$.outputs...}}` forms) are substituted into the container's
  command and args, the container runs, and `outputs.outputFile` (an ExecutorOutput) is merged: a
  non-empty uri replaces the output's, its metadata fields are added, its type is ignored.
- metadata/converter: how metadata is stored (numbers as doubles, bools as 0/1, lists as {"list": ...},
  structs as {"struct": ...}, null rejected) plus `display_name` and `store_session_info`.

Not reproduced: object-store upload/download (a local root is used as it is), Argo pods and retries,
nested DAGs, loops, conditions and exit handlers (refused loudly), MLMD contexts and executions,
Kubernetes platform config, the image (every task runs in this checkout's Python).

    store = Store()
    run = run_pipeline(spec, store=store, pipeline_root="/tmp/root", workdir="/tmp/work", env=env)
    run.tasks["Trainer"].state          # "COMPLETE" or "CACHED"
    run.tasks["Trainer"].outputs["model"].uri
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import time
import uuid
from typing import Any, Callable

import yaml

RESOLVER_NOT_IMPLEMENTED = "resolver executors not implemented"
CUSTOM_JOB_NOT_SUPPORTED = "custom job executors is Google Cloud only, it's not supported"
# What a KFP installation on MinIO records with every artifact (objectstore.SessionInfo as JSON).
STORE_SESSION_INFO = json.dumps(
    {"Provider": "minio", "Params": {"fromEnv": "false", "region": "minio", "disableSSL": "true"}},
    separators=(",", ":"),
)
_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


class KfpError(RuntimeError):
    """What the KFP backend would report: the spec or a task cannot run."""


class TaskFailed(KfpError):
    def __init__(self, task: str, returncode: int, log: str):
        tail = log[-6000:]
        super().__init__(f"task {task!r} failed: the container exited with {returncode}\n{tail}")
        self.task, self.returncode, self.log = task, returncode, log


@dataclasses.dataclass
class Artifact:
    """An artifact as KFP records it in ML Metadata."""

    id: int
    uri: str
    schema_title: str
    custom_properties: dict[str, Any]  # Already in stored form (see _stored_value).

    def runtime_artifact(self) -> dict:
        """What the driver hands a downstream task (metadata.toRuntimeArtifact)."""
        return {
            "name": str(self.id),
            "uri": self.uri,
            "metadata": json.loads(json.dumps(self.custom_properties)),
            "type": {"instanceSchema": ""},  # The backend does not know the schema of stored outputs.
        }


@dataclasses.dataclass
class Store:
    """ML Metadata and the cache database of one KFP installation, kept across runs."""

    artifacts: dict[int, Artifact] = dataclasses.field(default_factory=dict)
    cache: dict[str, dict] = dataclasses.field(default_factory=dict)  # fingerprint -> outputs

    def record(self, key: str, runtime_artifact: dict, schema: str) -> Artifact:
        """metadata.RecordArtifact: a new artifact every time (ids are never reused)."""
        title = (yaml.safe_load(schema) or {}).get("title") if schema else None
        if not title:
            raise KfpError(f"output {key!r}: no title in artifact schema {schema!r}")
        properties = {k: _stored_value(k, v) for k, v in (runtime_artifact.get("metadata") or {}).items()}
        properties.setdefault("display_name", key)
        properties.setdefault("store_session_info", STORE_SESSION_INFO)
        artifact = Artifact(len(self.artifacts) + 1, runtime_artifact["uri"], title, properties)
        self.artifacts[artifact.id] = artifact
        return artifact


@dataclasses.dataclass
class TaskRun:
    name: str
    state: str  # COMPLETE (ran) or CACHED (outputs reused from an earlier execution)
    fingerprint: str  # "" when the task does not use the cache
    outputs: dict[str, Artifact]
    parameters: dict[str, Any]
    executor_input: dict | None = None  # None when cached
    argv: list[str] | None = None
    seconds: float = 0.0
    log: str = ""


@dataclasses.dataclass
class PipelineRun:
    run_id: str
    root: str  # <pipeline_root>/<pipeline name>/<run id>
    parameters: dict[str, Any]
    tasks: dict[str, TaskRun]  # In the order they ran.


def check_spec(spec: dict) -> None:
    """What KFP's compiler refuses before a run starts (argocompiler.task), task by task."""
    dag = spec.get("root", {}).get("dag")
    if not dag:
        raise KfpError("the pipeline has no root DAG")
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for name, task in sorted(dag.get("tasks", {}).items()):
        try:
            _check_task(task, spec["components"], executors)
        except KfpError as e:
            raise KfpError(f"compiling task {name!r}: {e}") from None
    _order(dag["tasks"])  # Unknown producers and cycles.


def _check_task(task: dict, components: dict, executors: dict) -> None:
    if "parameterIterator" in task or "artifactIterator" in task:
        raise KfpError("loops are not supported by this harness")
    policy = task.get("triggerPolicy", {})
    if policy.get("condition") or policy.get("strategy") not in (None, "ALL_UPSTREAM_TASKS_SUCCEEDED"):
        raise KfpError(f"trigger policy {policy} is not supported by this harness")
    component = components.get(task["componentRef"]["name"])
    if component is None:
        raise KfpError(f"component spec for {task['componentRef']['name']!r} not found")
    if "dag" in component:
        raise KfpError("nested DAG components are not supported by this harness")
    executor = executors.get(component.get("executorLabel", ""))
    if executor is None:
        raise KfpError(f"executor with label {component.get('executorLabel')!r} not found")
    if "resolver" in executor:
        raise KfpError(RESOLVER_NOT_IMPLEMENTED)
    if "customJob" in executor:
        raise KfpError(CUSTOM_JOB_NOT_SUPPORTED)
    if not ("container" in executor or "importer" in executor):
        raise KfpError(f"unknown executor spec type: {sorted(executor)}")


def _producers(task: dict) -> set[str]:
    inputs = task.get("inputs", {})
    found = set(task.get("dependentTasks", []))
    for spec in inputs.get("artifacts", {}).values():
        if "taskOutputArtifact" in spec:
            found.add(spec["taskOutputArtifact"]["producerTask"])
    for spec in inputs.get("parameters", {}).values():
        if "taskOutputParameter" in spec:
            found.add(spec["taskOutputParameter"]["producerTask"])
    return found


def _order(tasks: dict) -> list[str]:
    """Task names, each after every task it depends on (dependentTasks and implicit producers)."""
    needs = {name: _producers(task) for name, task in tasks.items()}
    for name, producers in needs.items():
        unknown = producers - set(tasks)
        if unknown:
            raise KfpError(f"task {name!r}: unknown producer task {sorted(unknown)} in DAG")
    order: list[str] = []
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in order and needs[n] <= set(order))
        if not ready:
            raise KfpError(f"dependency cycle among {sorted(set(tasks) - set(order))}")
        order.extend(ready)
    return order


def run_pipeline(
    spec: dict,
    *,
    store: Store,
    pipeline_root: str,
    workdir: str,
    env: dict[str, str],
    arguments: dict[str, Any] | None = None,
    only: set[str] | None = None,
    timeout: float = 1200,
    progress: Callable[[str], None] = print,
) -> PipelineRun:
    """Runs ``spec`` as one KFP run; ``only`` limits it to those tasks and everything they depend on.

    Each container runs as a subprocess with ``env`` in a new, empty working directory under
    ``workdir``; a task that leaves anything there (a relative path) fails the run.
    """
    check_spec(spec)
    tasks = spec["root"]["dag"]["tasks"]
    order = _order(tasks)
    if only:
        wanted = set(only)
        for name in reversed(order):
            if name in wanted:
                wanted |= _producers(tasks[name])
        order = [name for name in order if name in wanted]
    run_id = str(uuid.uuid4())
    pipeline_name = spec["pipelineInfo"]["name"]
    run = PipelineRun(
        run_id=run_id,
        root=f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}",
        parameters=_root_parameters(spec, arguments or {}),
        tasks={},
    )
    for name in order:
        started = time.monotonic()
        task_dir = os.path.join(workdir, run_id[:8], name)
        os.makedirs(task_dir)
        result = _run_task(spec, name, run, store, task_dir, env, timeout)
        result.seconds = time.monotonic() - started
        run.tasks[name] = result
        progress(f"[kfp] {name}: {result.state} in {result.seconds:.1f}s")
    return run


def _root_parameters(spec: dict, arguments: dict[str, Any]) -> dict[str, Any]:
    """The root DAG driver: run arguments over root.inputDefinitions defaults."""
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = set(arguments) - set(declared)
    if unknown:
        raise KfpError(f"run arguments {sorted(unknown)} are not parameters of the pipeline")
    values = {}
    for name, parameter in declared.items():
        if name in arguments:
            values[name] = arguments[name]
        elif "defaultValue" in parameter:
            values[name] = parameter["defaultValue"]
        elif not parameter.get("isOptional"):
            raise KfpError(f"neither value nor default value provided for non-optional parameter {name!r}")
    return values


def _run_task(spec, name, run: PipelineRun, store: Store, task_dir, env, timeout) -> TaskRun:
    task = spec["root"]["dag"]["tasks"][name]
    component = spec["components"][task["componentRef"]["name"]]
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    inputs = _resolve_inputs(task, component, run)
    if "importer" in executor:
        return _import(name, executor["importer"], component, inputs, store)
    container = executor["container"]
    outputs = _outputs(name, component, run.root, task_dir)
    executor_input = {"inputs": inputs, "outputs": outputs}
    fingerprint = ""
    if task.get("cachingOptions", {}).get("enableCache"):
        fingerprint = cache_key(executor_input, container)
        cached = store.cache.get(fingerprint)
        if cached is not None:
            artifacts = {key: store.artifacts[i] for key, i in cached["artifacts"].items()}
            return TaskRun(name, "CACHED", fingerprint, artifacts, dict(cached["parameters"]))
    argv = _command_line(container, _add_default_params(executor_input, component))
    cwd = os.path.join(task_dir, "cwd")
    os.makedirs(cwd)
    log_path = os.path.join(task_dir, "log.txt")
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            code = subprocess.run(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    with open(log_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if code != 0:
        raise TaskFailed(name, code, text)
    left = sorted(os.listdir(cwd))
    if left:
        raise KfpError(f"task {name!r} wrote relative paths into its working directory: {left}")
    executor_output = _read_executor_output(outputs["outputFile"])
    parameters = _collect_output_parameters(name, outputs, executor_output, component)
    artifacts = {}
    for key, artifact_list in outputs.get("artifacts", {}).items():
        produced = dict(artifact_list["artifacts"][0])
        written = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [])
        if written:  # mergeRuntimeArtifacts: uri replaced when set, metadata fields added.
            if written[0].get("uri"):
                produced["uri"] = written[0]["uri"]
            produced["metadata"] = {**(produced.get("metadata") or {}), **(written[0].get("metadata") or {})}
        artifacts[key] = store.record(key, produced, produced["type"].get("instanceSchema", ""))
    if fingerprint:
        store.cache[fingerprint] = {
            "artifacts": {key: artifact.id for key, artifact in artifacts.items()},
            "parameters": parameters,
        }
    return TaskRun(name, "COMPLETE", fingerprint, artifacts, parameters, executor_input, argv, log=text)


def _resolve_inputs(task: dict, component: dict, run: PipelineRun) -> dict:
    """driver.resolveInputs for a container or importer task in the root DAG."""
    definitions = component.get("inputDefinitions", {})
    values: dict[str, Any] = {}
    for name, source in task.get("inputs", {}).get("parameters", {}).items():
        if "componentInputParameter" in source:
            key = source["componentInputParameter"]
            if key not in run.parameters:
                if definitions.get("parameters", {}).get(name, {}).get("isOptional"):
                    continue
                raise KfpError(f"parent DAG does not have input parameter {key}")
            values[name] = run.parameters[key]
        elif "runtimeValue" in source:
            runtime = source["runtimeValue"]
            if "constant" not in runtime:
                kind = next(iter(runtime), "none")
                raise KfpError(
                    f"input parameter {name!r}: param runtime value spec of type {kind} not implemented"
                )
            values[name] = runtime["constant"]
        elif "taskOutputParameter" in source:
            producer = source["taskOutputParameter"]
            values[name] = run.tasks[producer["producerTask"]].parameters[producer["outputParameterKey"]]
        else:
            raise KfpError(f"input parameter {name!r}: parameter spec {sorted(source)} not implemented")
    for name, definition in definitions.get("parameters", {}).items():
        if name not in values:
            if not definition.get("isOptional") and "defaultValue" not in definition:
                raise KfpError(
                    f"neither value nor default value provided for non-optional parameter {name!r}"
                )
            continue  # The launcher fills in the default.
        values[name] = _typed(
            name, values[name], definition.get("parameterType", "PARAMETER_TYPE_ENUM_UNSPECIFIED")
        )
    artifacts = {}
    for name, source in task.get("inputs", {}).get("artifacts", {}).items():
        if "taskOutputArtifact" not in source:
            raise KfpError(f"input artifact {name!r}: artifact spec {sorted(source)} not implemented")
        producer = source["taskOutputArtifact"]
        upstream = run.tasks[producer["producerTask"]].outputs
        if producer["outputArtifactKey"] not in upstream:
            raise KfpError(
                f"cannot find output artifact key {producer['outputArtifactKey']!r} "
                f"in producer task {producer['producerTask']!r}"
            )
        artifacts[name] = {"artifacts": [upstream[producer["outputArtifactKey"]].runtime_artifact()]}
    inputs: dict[str, Any] = {}
    if values:
        inputs["parameterValues"] = values
    if artifacts:
        inputs["artifacts"] = artifacts
    return inputs


def _typed(name: str, value: Any, parameter_type: str) -> Any:
    """handleParamTypeValidationAndConversion."""
    if parameter_type == "STRING":
        return value if isinstance(value, str) else _text(value)
    expected = {
        bool: ("BOOLEAN",),
        int: ("NUMBER_INTEGER", "NUMBER_DOUBLE"),
        float: ("NUMBER_INTEGER", "NUMBER_DOUBLE"),
        str: ("STRING",),
        list: ("LIST",),
        dict: ("STRUCT", "TASK_FINAL_STATUS"),
    }
    if value is None:
        raise KfpError(f"got null for input parameter {name!r}")
    if parameter_type not in expected[type(value)]:
        actual = {bool: "bool", int: "number", float: "number", str: "string", list: "list", dict: "struct"}
        raise KfpError(
            f"input parameter {name!r} type mismatch: expect {parameter_type}, got {actual[type(value)]}"
        )
    return value


def _text(value: Any) -> str:
    """metadata.PbValueToText: how a non-string value reaches a STRING input."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(float(value))
    return json.dumps(_protojson(value), separators=(",", ":"), ensure_ascii=False)


def _number_text(number: float) -> str:  # strconv.FormatFloat(v, 'f', -1, 64)
    return str(int(number)) if number.is_integer() else repr(number)


def _outputs(name: str, component: dict, run_root: str, task_dir: str) -> dict:
    """The driver's provisionOutputs: new URIs under the run's root; nothing is created there."""
    definitions = component.get("outputDefinitions", {})
    outputs: dict[str, Any] = {}
    artifacts = {}
    execution = uuid.uuid4()
    for key, definition in definitions.get("artifacts", {}).items():
        artifact = {"uri": f"{run_root}/{name}/{execution}/{key}", "type": definition["artifactType"]}
        if definition.get("metadata"):
            artifact["metadata"] = definition["metadata"]
        artifacts[key] = {"artifacts": [artifact]}
    if artifacts:
        outputs["artifacts"] = artifacts
    if definitions.get("parameters"):
        outputs["parameters"] = {
            key: {"outputFile": os.path.join(task_dir, "kfp", "outputs", key)}
            for key in definitions["parameters"]
        }
    outputs["outputFile"] = os.path.join(task_dir, "kfp_outputs", "output_metadata.json")
    return outputs


def cache_key(executor_input: dict, container: dict) -> str:
    """cacheutils.GenerateCacheKey + GenerateFingerPrint: what makes two executions the same."""
    inputs, outputs = executor_input["inputs"], executor_input["outputs"]
    key = {
        "inputArtifactNames": {
            name: [a["name"] for a in artifacts["artifacts"]]
            for name, artifacts in inputs.get("artifacts", {}).items()
        },
        "inputParameterValues": inputs.get("parameterValues", {}),
        "outputArtifactsSpec": {
            name: {k: v for k, v in artifacts["artifacts"][0].items() if k != "uri"}
            for name, artifacts in outputs.get("artifacts", {}).items()
        },
        # The real driver's output parameter files are the same path in every pod.
        "outputParametersSpec": {name: f"/tmp/kfp/outputs/{name}" for name in outputs.get("parameters", {})},
        "containerSpec": {
            "image": container.get("image", ""),
            "cmdArgs": [*container.get("command", []), *container.get("args", [])],
        },
    }
    text = json.dumps(_protojson(key), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _add_default_params(executor_input: dict, component: dict) -> dict:
    """launcher addDefaultParams: optional parameters without a value get the component's default."""
    filled = json.loads(json.dumps(executor_input))
    values = filled["inputs"].setdefault("parameterValues", {})
    for name, definition in component.get("inputDefinitions", {}).get("parameters", {}).items():
        if name not in values and "defaultValue" in definition:
            values[name] = definition["defaultValue"]
    if not values:
        del filled["inputs"]["parameterValues"]
    return filled


def _command_line(container: dict, executor_input: dict) -> list[str]:
    """launcher getPlaceholders + executeV2: the container's command and args, substituted."""
    placeholders = {
        "{{$}}": json.dumps(_protojson(executor_input), separators=(",", ":"), ensure_ascii=False)
    }
    for name, artifacts in executor_input["inputs"].get("artifacts", {}).items():
        placeholders[f"{{{{$.inputs.artifacts['{name}'].uri}}}}"] = artifacts["artifacts"][0]["uri"]
    for name, artifacts in executor_input["outputs"].get("artifacts", {}).items():
        placeholders[f"{{{{$.outputs.artifacts['{name}'].uri}}}}"] = artifacts["artifacts"][0]["uri"]
    for name, value in executor_input["inputs"].get("parameterValues", {}).items():
        placeholders[f"{{{{$.inputs.parameters['{name}']}}}}"] = (
            value if isinstance(value, str) else _text(value)
        )
    for name, parameter in executor_input["outputs"].get("parameters", {}).items():
        placeholders[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = parameter["outputFile"]
    argv = []
    for template in [*container.get("command", []), *container.get("args", [])]:
        unknown = set(_PLACEHOLDER.findall(template)) - set(placeholders)
        if unknown:
            raise KfpError(
                f"placeholders this harness cannot fill (check KFP supports them): {sorted(unknown)}"
            )
        for placeholder, value in placeholders.items():
            template = template.replace(placeholder, value)
        argv.append(template)
    if not argv:
        raise KfpError("command and arguments are empty")
    return argv


def _read_executor_output(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _collect_output_parameters(name: str, outputs: dict, executor_output: dict, component: dict) -> dict:
    """launcher collectOutputParameters: the ExecutorOutput first, else the parameter's file."""
    values = dict(executor_output.get("parameterValues", {}))
    definitions = component.get("outputDefinitions", {}).get("parameters", {})
    for key, parameter in outputs.get("parameters", {}).items():
        if key in values:
            continue
        try:
            with open(parameter["outputFile"], encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise KfpError(f"task {name!r}: failed to read output parameter name={key!r}: {e}") from None
        kind = definitions[key].get("parameterType")
        if kind == "STRING":
            values[key] = text
        elif kind in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
            values[key] = float(text)
        elif kind == "BOOLEAN":
            values[key] = {"true": True, "false": False}[text.strip()]
        else:
            values[key] = json.loads(text)
    return values


def _import(name: str, importer: dict, component: dict, inputs: dict, store: Store) -> TaskRun:
    """The importer launcher: one artifact at a URI; an identical earlier import is reused."""
    source = importer.get("artifactUri", {})
    if "runtimeParameter" in source:
        uri = inputs.get("parameterValues", {}).get(source["runtimeParameter"])
    else:
        uri = source.get("constant")  # The deprecated constantValue is not read by the v2 backend.
    if not uri:
        raise KfpError(f"importer {name!r}: no artifact URI")
    schema = importer.get("typeSchema", {})
    title = schema.get("schemaTitle") or (yaml.safe_load(schema.get("instanceSchema", "")) or {}).get("title")
    properties = {k: _stored_value(k, v) for k, v in (importer.get("metadata") or {}).items()}
    (key,) = component.get("outputDefinitions", {}).get("artifacts", {})
    if not importer.get("reimport"):
        for artifact in store.artifacts.values():
            same = {k: v for k, v in artifact.custom_properties.items() if k != "display_name"}
            if artifact.uri == uri and artifact.schema_title == title and same == properties:
                return TaskRun(name, "COMPLETE", "", {key: artifact}, {})
    artifact = Artifact(len(store.artifacts) + 1, uri, title, {**properties, "display_name": key})
    store.artifacts[artifact.id] = artifact
    return TaskRun(name, "COMPLETE", "", {key: artifact}, {})


def _stored_value(key: str, value: Any) -> Any:
    """metadata.structValueToMLMDValue, as read back by toRuntimeArtifact."""
    if isinstance(value, bool):
        return float(value)  # Stored as an int (0/1), read back as a number.
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return {"list": value}
    if isinstance(value, dict):
        return {"struct": value}
    raise KfpError(f"metadata {key!r}: unknown/unsupported value type {type(value).__name__}")


def _protojson(value: Any) -> Any:
    """Numbers the way Go's protojson writes a structpb number (1, not 1.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _protojson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_protojson(v) for v in value]
    return value
