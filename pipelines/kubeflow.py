"""Compiling the pipeline for Kubeflow Pipelines (KFP v2 PipelineSpec) and submitting runs to it.

spec_path = compile_pipeline(load_config("cluster.yaml"), "pipeline.yaml", image="...", pipeline_root="gs://b/root")
submit(spec_path, host="https://kfp.example.com", params={"span": 3, "epochs": 20})

The compiled pipeline is the same create_pipeline() the local runner uses. What changes from run to
run is a runtime parameter: input_base, span (-1 = latest), model_config (the Tuner's and Trainer's
settings as JSON; `submit --param epochs=20` or `max_trials=8` edits it) and baseline_statistics.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Any

import yaml

from pipelines.config import Config, ConfigError

DEFAULT_IMAGE = "ghcr.io/cvpipe/cvpipe:0.1.0"  # Built from deployment/Dockerfile.
INPUT_BASE = "input_base"
SPAN = "span"
MODEL_CONFIG = "model_config"
BASELINE_STATISTICS = "baseline_statistics"

# `--param NAME=VALUE` shortcuts that edit one field of model_config.
MODEL_CONFIG_SHORTCUTS = {
    "epochs": ("training", "epochs"),
    "batch_size": ("training", "batch_size"),
    "max_trials": ("tuning", "max_trials"),
    "tuning_epochs": ("tuning", "epochs"),
    "parallel_trials": ("tuning", "parallel_trials"),
}


@dataclasses.dataclass(frozen=True)
class RuntimeParameters:
    """The TFX RuntimeParameters a Kubeflow pipeline is built with (defaults from the config)."""

    input_base: Any
    span: Any
    model_config: Any
    baseline_statistics: Any

    def defaults(self) -> dict[str, Any]:
        parameters = (getattr(self, field.name) for field in dataclasses.fields(self))
        return {parameter.name: parameter.default for parameter in parameters}

    @classmethod
    def from_config(cls, config: Config) -> "RuntimeParameters":
        from tfx import v1 as tfx

        from pipelines.pipeline import module_config

        model_config = module_config(config)
        parameter = tfx.dsl.experimental.RuntimeParameter
        return cls(
            input_base=parameter(name=INPUT_BASE, ptype=str, default=config.input.images),
            span=parameter(
                name=SPAN, ptype=int, default=-1 if config.input.span is None else config.input.span
            ),
            model_config=parameter(
                name=MODEL_CONFIG, ptype=str, default=json.dumps(model_config, sort_keys=True)
            ),
            baseline_statistics=parameter(
                name=BASELINE_STATISTICS, ptype=str, default=config.validation.baseline_statistics or ""
            ),
        )


def compile_pipeline(
    config: Config,
    output: str,
    *,
    image: str = DEFAULT_IMAGE,
    pipeline_root: str | None = None,
    push_root: str | None = None,
) -> str:
    """Writes the KFP v2 PipelineSpec of ``config``'s pipeline to ``output`` (.json or .yaml).

    ``push_root`` (serving/ and edge/ go under it) defaults to the pipeline root.
    """
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipelines.pipeline import create_pipeline

    if not config.input.images:
        raise ConfigError("input.images: required (the default of the input_base runtime parameter)")
    if not output.endswith((".json", ".yaml", ".yml")):
        raise ConfigError(f"--output must end in .json, .yaml or .yml, got {output}")
    root = pipeline_root or f"gs://{config.pipeline_name}-pipeline-root"
    config = with_worker_image(config, image)
    runtime = RuntimeParameters.from_config(config)
    pipeline = create_pipeline(config, pipeline_root=root, push_root=push_root or root, runtime=runtime)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image,
            default_commands=list(ENTRYPOINT),
            # Schema 2.1 (parameterType, parameterValues): what KFP 2's backend reads; under 2.0
            # TFX's entrypoint reads only the deprecated `parameters` field, which KFP never sets.
            use_pipeline_spec_2_1=True,
        )
    )
    job = runner.run(pipeline, write_out=False)  # The PipelineJob as a dict; we keep its spec.
    spec = pipeline_spec_from_job(job, runtime.defaults())
    check_portable(spec)
    # The compiled spec is a local file the user uploads with `cvpipe submit`, not an artifact.
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        if output.endswith(".json"):
            json.dump(spec, f, indent=2, sort_keys=True)
        else:
            yaml.safe_dump(spec, f, sort_keys=True)
    return output


# Every task runs TFX's V2 entrypoint through cvpipe's repairs for open-source Kubeflow.
ENTRYPOINT = ("python", "-m", "pipelines.kfp_entrypoint")
# Tasks that must look at the world on every run: KFP's cache keys on parameters, not on files.
UNCACHED_TASKS = ("InputFingerprint",)
PORTABLE_EXECUTORS = ("container", "importer")  # What open-source KFP's compiler implements.


_WORKER_CODE_FLAGS = ("--sdk_container_image", "--setup_file", "--extra_package", "--requirements_file")


def with_worker_image(config: Config, image: str) -> Config:
    """Remote Beam workers (Dataflow) run the pipeline image, which holds cvpipe and its pins.

    Without a way to ship code, TFX packages only itself for the workers, which then cannot import
    cvpipe's executors and transforms. The TFX image (and so cvpipe's) is a Beam SDK image.
    """
    args = list(config.beam.args)
    remote = any(arg.startswith("--runner=") and "Direct" not in arg for arg in args)
    if not remote or any(arg.split("=", 1)[0] in _WORKER_CODE_FLAGS for arg in args):
        return config
    beam = dataclasses.replace(config.beam, args=[*args, f"--sdk_container_image={image}"])
    return dataclasses.replace(config, beam=beam)


def pipeline_spec_from_job(job: dict, defaults: dict[str, Any]) -> dict:
    """The PipelineSpec of TFX's PipelineJob, with the runtime parameters' defaults in the spec.

    kfp's client uploads a PipelineSpec, and TFX's compiler leaves the defaults of runtime
    parameters out of it: they go to root.inputDefinitions (defaultValue, isOptional). The tasks
    in UNCACHED_TASKS get caching turned off. TFX names the producer of an output parameter
    "<node>_task", a task that does not exist (open-source KFP refuses it): it becomes "<node>".
    """
    spec = copy.deepcopy(job["pipelineSpec"])
    parameters = spec.setdefault("root", {}).setdefault("inputDefinitions", {}).setdefault("parameters", {})
    missing = set(defaults) - set(parameters)
    if missing:
        raise RuntimeError(f"the compiled pipeline lacks runtime parameters {sorted(missing)}")
    for name, parameter in parameters.items():
        if name in defaults:
            parameter["defaultValue"] = defaults[name]
            parameter["isOptional"] = True
    tasks = spec["root"]["dag"]["tasks"]
    for name, task in tasks.items():
        if name in UNCACHED_TASKS:
            task["cachingOptions"] = {"enableCache": False}
        for source in task.get("inputs", {}).get("parameters", {}).values():
            output = source.get("taskOutputParameter")
            if output and output["producerTask"] not in tasks and output["producerTask"].endswith("_task"):
                output["producerTask"] = output["producerTask"][: -len("_task")]
    return spec


def check_portable(spec: dict) -> None:
    """Refuses a spec that open-source Kubeflow Pipelines could not run (e.g. a TFX Resolver)."""
    for label, executor in spec.get("deploymentSpec", {}).get("executors", {}).items():
        kinds = set(executor) - set(PORTABLE_EXECUTORS)
        if kinds:
            raise ConfigError(
                f"executor {label} is a {', '.join(sorted(kinds))} executor, which open-source Kubeflow "
                "Pipelines does not implement (only container and importer)"
            )


def load_spec(path: str):
    """A compiled file parsed with kfp's own PipelineSpec protobuf."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    with open(path, encoding="utf-8") as f:
        data = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    if not isinstance(data, dict) or "root" not in data:
        raise ValueError(f"{path} is not a KFP PipelineSpec (no root); compile it with `cvpipe compile`")
    return json_format.ParseDict(data, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)


def run_arguments(spec, params: dict[str, str]) -> dict[str, Any]:
    """Run parameters for ``spec`` from `--param NAME=VALUE` strings, typed and checked.

    NAME is a runtime parameter of the pipeline or a model_config shortcut (epochs, max_trials, ...).
    """
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    declared = spec.root.input_definitions.parameters
    integer = pipeline_spec_pb2.ParameterType.NUMBER_INTEGER
    types = {name: p.parameter_type for name, p in declared.items()}
    arguments: dict[str, Any] = {}
    shortcuts = {}
    for name, raw in params.items():
        if name in MODEL_CONFIG_SHORTCUTS:
            shortcuts[name] = raw
            continue
        if name not in types:
            known = sorted([*types, *MODEL_CONFIG_SHORTCUTS])
            raise ConfigError(f"--param {name}: not a parameter of this pipeline (known: {', '.join(known)})")
        if types[name] == integer:
            try:
                arguments[name] = int(raw)
            except ValueError:
                raise ConfigError(f"--param {name}: expected an integer, got {raw!r}") from None
        else:
            arguments[name] = raw
    if shortcuts:
        if MODEL_CONFIG not in types:
            raise ConfigError(
                f"--param {', '.join(shortcuts)}: this pipeline has no {MODEL_CONFIG} parameter"
            )
        base = (
            arguments.get(MODEL_CONFIG) or json_format.MessageToDict(declared[MODEL_CONFIG])["defaultValue"]
        )
        model_config = json.loads(base)
        for name, raw in shortcuts.items():
            section, key = MODEL_CONFIG_SHORTCUTS[name]
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"--param {name}: expected an integer, got {raw!r}") from None
            if value < 1:
                raise ConfigError(f"--param {name}: must be positive, got {value}")
            model_config[section][key] = value
        arguments[MODEL_CONFIG] = json.dumps(model_config, sort_keys=True)
    if MODEL_CONFIG in arguments:  # Refused here, not inside the Tuner's or Trainer's pod.
        from components.image_model.settings import ModuleConfig, ModuleConfigError

        try:
            ModuleConfig.from_dict(arguments[MODEL_CONFIG])
        except ModuleConfigError as e:
            raise ConfigError(f"--param {e}") from None  # e names the field: model_config.<...>
    return arguments


@dataclasses.dataclass
class Submission:
    host: str
    pipeline_name: str
    experiment: str
    namespace: str | None
    run_name: str
    arguments: dict[str, Any]


def plan_submission(
    path: str,
    *,
    host: str,
    experiment: str,
    params: dict[str, str],
    namespace: str | None = None,
    run_name: str | None = None,
) -> Submission:
    """Validates the compiled file and the parameters; what `submit` would send."""
    import datetime

    spec = load_spec(path)
    name = spec.pipeline_info.name
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Submission(
        host=host,
        pipeline_name=name,
        experiment=experiment,
        namespace=namespace or os.environ.get("KFP_NAMESPACE") or None,
        run_name=run_name or f"{name}-{stamp}",
        arguments=run_arguments(spec, params),
    )


def kfp_client(host: str, namespace: str | None):
    """kfp's client, authenticated from the environment (never from the command line).

    KFP_TOKEN (or the file named by KF_PIPELINES_SA_TOKEN_PATH, which kfp reads itself) gives a
    bearer token; without either, kfp's own credentials apply (kube config, in-cluster).
    """
    import kfp

    token = os.environ.get("KFP_TOKEN") or None
    return kfp.Client(host=host, existing_token=token, namespace=namespace or "kubeflow")


class SubmitError(RuntimeError):
    """Kubeflow Pipelines could not be reached or refused a request; the message says which."""


def submit(path: str, plan: Submission, *, version_name: str | None = None) -> dict[str, str]:
    """Uploads the pipeline (or a new version of it) and starts a run; returns the ids."""
    import kfp_server_api
    import urllib3

    try:
        return _submit(path, plan, version_name)
    except urllib3.exceptions.HTTPError as e:
        raise SubmitError(
            f"could not reach Kubeflow Pipelines at {plan.host}: {e.__class__.__name__}"
        ) from None
    except kfp_server_api.ApiException as e:
        body = (e.body or "").strip().replace("\n", " ")[:300]
        raise SubmitError(
            f"Kubeflow Pipelines at {plan.host} refused the request: {e.status} {e.reason} {body}"
        ) from None


def _submit(path: str, plan: Submission, version_name: str | None) -> dict[str, str]:
    client = kfp_client(plan.host, plan.namespace)
    pipeline_id = client.get_pipeline_id(plan.pipeline_name)
    version = version_name or plan.run_name
    if pipeline_id is None:
        pipeline = client.upload_pipeline(path, pipeline_name=plan.pipeline_name)
        pipeline_id = pipeline.pipeline_id
        versions = client.list_pipeline_versions(pipeline_id).pipeline_versions or []
        version_id = versions[0].pipeline_version_id
    else:
        version_id = client.upload_pipeline_version(
            path, pipeline_version_name=version, pipeline_id=pipeline_id
        ).pipeline_version_id
    experiment = client.create_experiment(plan.experiment, namespace=plan.namespace)
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=plan.run_name,
        params=plan.arguments,
        pipeline_id=pipeline_id,
        version_id=version_id,
    )
    return {
        "pipeline_id": pipeline_id,
        "version_id": version_id,
        "experiment_id": experiment.experiment_id,
        "run_id": run.run_id,
    }
