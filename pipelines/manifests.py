"""The Kubernetes manifests of deployment/kubernetes/, generated from the validated config.

    python -m pipelines.manifests --config FILE --labels circle,square,triangle --out deployment/kubernetes

Every setting a manifest carries comes from one place: the run's settings from the config
(``load_config``), the image from the ``# image:`` line of deployment/Dockerfile, and what the
config cannot know (the label vocabulary of the ingested examples, in ``labels.txt`` order, and the
image size when ``model.image_size`` is 0) from :class:`ClusterSettings`. The functions here are
pure: they return plain dicts, and ``render`` turns them into the files' text.

    >>> objects = all_objects(generate(load_config()))
    >>> unmatched_selectors(objects), missing_references(objects)
    ([], [])

Every pod mounts one ReadWriteMany PersistentVolumeClaim at /outputs (the pipeline's OUTPUT:
``ingest/examples/``, ``serving/<model_name>/``) and runs as one ServiceAccount; both are defined
in ``common.yaml``. Nothing else is referenced, so every ConfigMap, claim, account and Service
target a pod template names is among the generated objects (``missing_references``,
``unmatched_selectors``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import re
import sys
from typing import Any, Iterator

import yaml

from pipelines.config import Config, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO, "deployment", "Dockerfile")
OUT_DIR = os.path.join(REPO, "deployment", "kubernetes")
SERVING_IMAGE = "tensorflow/serving:2.16.1"  # The TF Serving release of the pinned TensorFlow.

OUTPUTS_CLAIM = "cvpipe-outputs"
OUTPUTS_MOUNT = "/outputs"
SERVICE_ACCOUNT = "cvpipe"
SERVING_DIR = "serving"  # pipelines.runner.SERVING_DIR: OUTPUT/serving/<model_name>/<version>/.
SPECS_MOUNT = "/specs"
TRAIN_SPEC_KEY = "train-spec.json"
TUNE_SPEC_KEY = "tune-spec.json"
ORACLE_PORT = 8000
WORKERS_MODULE = "components.image_model.workers"  # `python -m ... train|tune SPEC`.
KERAS_ENV = [
    {"name": "TF_USE_LEGACY_KERAS", "value": "1"},
]
# The keras-tuner chief: building the tuner with KERASTUNER_TUNER_ID=chief serves its oracle (keras-tuner
# 1.3.5 BaseTuner.__init__ -> oracle_chief.start_server) until a worker is told the search is over;
# then it prints the best hyperparameters and exits. tuning.parallel_search does the same on loopback.
CHIEF_SCRIPT = (
    "from components.image_model.tuning import TuneSpec, best_values, make_tuner\n"
    "with open({path!r}) as f:\n"
    "    spec = TuneSpec.from_json(f.read())\n"
    "tuner = make_tuner(spec, overwrite=False)\n"
    "print('cvpipe best hyperparameters:', best_values(tuner), flush=True)\n"
)


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """What the manifests need beyond the config.

    ``labels``: the ingested examples' label vocabulary in the order of their ``labels.txt`` (the
    label index of every example refers to it). ``image_size``: used when ``model.image_size`` is 0
    (auto; the pipeline measures it from the images, a standalone job cannot). ``examples``: the
    examples directory as ``cvpipe ingest --output OUT`` writes it (``OUT/examples``), inside the pod.
    """

    labels: tuple[str, ...] = ("circle", "square", "triangle")  # `cvpipe sample-data --kind shapes`.
    image_size: int = 64
    examples: str = f"{OUTPUTS_MOUNT}/ingest/examples"
    image: str | None = None  # Default: the Dockerfile's image.

    def __post_init__(self):
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels: at least two distinct labels, got {list(self.labels)}")
        if not 16 <= self.image_size <= 512:
            raise ValueError(f"image_size: 16-512, got {self.image_size}")
        if not self.examples.startswith(OUTPUTS_MOUNT + "/"):
            raise ValueError(f"examples: a directory under {OUTPUTS_MOUNT}/ (the outputs volume)")


def dockerfile_image(path: str = DOCKERFILE) -> str:
    """The pipeline image's name and tag: the ``# image: NAME:TAG`` line of the Dockerfile."""
    with open(path, encoding="utf-8") as f:
        match = re.search(r"^#\s*image:\s*(\S+)", f.read(), re.MULTILINE)
    if not match or ":" not in match.group(1).rsplit("/", 1)[-1]:
        raise ValueError(f"{path}: no '# image: NAME:TAG' line")
    return match.group(1)


def _image(settings: ClusterSettings) -> str:
    return settings.image or dockerfile_image()


def _volumes(*extra: dict) -> list[dict]:
    return [{"name": "outputs", "persistentVolumeClaim": {"claimName": OUTPUTS_CLAIM}}, *extra]


def _specs_volume(config_map: str) -> dict:
    return {"name": "specs", "configMap": {"name": config_map}}


_MOUNTS = [
    {"name": "outputs", "mountPath": OUTPUTS_MOUNT},
    {"name": "specs", "mountPath": SPECS_MOUNT, "readOnly": True},
]


def _config_map(name: str, data: dict[str, str], labels: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }


def common_objects(config: Config) -> list[dict]:
    """The ServiceAccount every pod runs as and the outputs volume every pod mounts."""
    labels = {"app": config.pipeline_name}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "labels": labels},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": OUTPUTS_CLAIM, "labels": labels},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}},
        },
    ]


def serving_objects(config: Config) -> list[dict]:
    """TF Serving of OUTPUT/serving/<model_name>/<version>/ (what the ServingPusher writes)."""
    name = config.serving.model_name
    app = {"app": f"{config.pipeline_name}-serving"}
    models_config = (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "/models/{name}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        "}\n"
    )
    batching_config = (
        "max_batch_size { value: 64 }\n"
        "batch_timeout_micros { value: 2000 }\n"
        "max_enqueued_batches { value: 100 }\n"
        "num_batch_threads { value: 2 }\n"
    )
    config_map = f"{config.pipeline_name}-serving-config"
    container = {
        "name": "tensorflow-serving",
        "image": SERVING_IMAGE,
        "args": [
            "--model_config_file=/config/models.config",
            "--enable_batching=true",
            "--batching_parameters_file=/config/batching.config",
            "--file_system_poll_wait_seconds=30",
            "--port=8500",
            "--rest_api_port=8501",
        ],
        "ports": [{"name": "grpc", "containerPort": 8500}, {"name": "http", "containerPort": 8501}],
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{name}", "port": 8501},
            "initialDelaySeconds": 10,
        },
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "volumeMounts": [
            # TF Serving loads the highest numeric version and ignores the pusher's .staging-* dirs.
            {
                "name": "models",
                "mountPath": f"/models/{name}",
                "subPath": f"{SERVING_DIR}/{name}",
                "readOnly": True,
            },
            {"name": "config", "mountPath": "/config", "readOnly": True},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app["app"], "labels": app},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": app},
            "template": {
                "metadata": {"labels": app},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "models",
                            "persistentVolumeClaim": {"claimName": OUTPUTS_CLAIM, "readOnly": True},
                        },
                        {"name": "config", "configMap": {"name": config_map}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app["app"], "labels": app},
        "spec": {
            "selector": app,
            "ports": [
                {"name": "grpc", "port": 8500, "targetPort": 8500},
                {"name": "http", "port": 8501, "targetPort": 8501},
            ],
        },
    }
    data = {"models.config": models_config, "batching.config": batching_config}
    return [_config_map(config_map, data, app), deployment, service]


def _image_size(config: Config, settings: ClusterSettings) -> int:
    return config.model.image_size or settings.image_size


def _split(settings: ClusterSettings, split: str) -> list[str]:
    return [f"{settings.examples}/Split-{split}/*"]


def train_spec(config: Config, settings: ClusterSettings) -> dict[str, Any]:
    """The TrainSpec (components.image_model.training; a detector's DetectionTrainSpec takes the
    same fields) of the TFJob's workers, as JSON data."""
    run_dir = f"{OUTPUTS_MOUNT}/tfjob/{config.pipeline_name}"
    return {
        "train_patterns": _split(settings, "train"),
        "eval_patterns": _split(settings, "eval"),
        "test_patterns": _split(settings, "test"),
        "labels": list(settings.labels),
        "serving_model_dir": f"{run_dir}/serving_model",
        "model_run_dir": f"{run_dir}/model_run",
        "backup_dir": f"{run_dir}/backup",
        "image_size": _image_size(config, settings),
        "channels": config.ingest.channels,
        "hyperparameters": dict(config.model.hyperparameters),
        "flip": config.model.flip,
        "epochs": config.training.epochs,
        "min_steps": config.training.min_steps,
        "batch_size": config.training.batch_size,
        "strategy": "multi_worker",
        "cache": config.training.cache,
    }


def tune_spec(config: Config, settings: ClusterSettings) -> dict[str, Any]:
    """The TuneSpec (components.image_model.tuning) shared by the oracle chief and the workers."""
    return {
        "train_patterns": _split(settings, "train"),
        "eval_patterns": _split(settings, "eval"),
        "labels": list(settings.labels),
        "directory": f"{OUTPUTS_MOUNT}/tuning/{config.pipeline_name}",
        "image_size": _image_size(config, settings),
        "channels": config.ingest.channels,
        "flip": config.model.flip,
        "algorithm": config.tuning.algorithm,
        "max_trials": config.tuning.max_trials,
        "parallel_trials": config.tuning.parallel_trials,
        "epochs": config.tuning.epochs,
        "batch_size": config.training.batch_size,
        "search_space": dict(config.tuning.search_space),
        "cache": config.training.cache,
        "task": config.task,
    }


def _spec_text(spec: dict) -> str:
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def training_objects(config: Config, settings: ClusterSettings) -> list[dict]:
    """A Training Operator TFJob of ``training.workers`` workers and the ConfigMap of their spec."""
    app = {"app": f"{config.pipeline_name}-train"}
    config_map = f"{config.pipeline_name}-train-spec"
    container = {
        "name": "tensorflow",  # The Training Operator's default container name for a TFJob.
        "image": _image(settings),
        # The worker kind: "train" (TrainSpec, the classifier) or "detect" (DetectionTrainSpec).
        "command": [
            "python",
            "-m",
            WORKERS_MODULE,
            "detect" if config.task == "detection" else "train",
            f"{SPECS_MOUNT}/{TRAIN_SPEC_KEY}",
        ],
        "env": list(KERAS_ENV),
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
        "volumeMounts": copy.deepcopy(_MOUNTS),
    }
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": app["app"], "labels": app},
        "spec": {
            # A killed worker restarts and resumes from BackupAndRestore (backup_dir on the volume).
            "runPolicy": {"backoffLimit": 3, "cleanPodPolicy": "None"},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": config.training.workers,
                    "restartPolicy": "OnFailure",
                    "template": {
                        "metadata": {"labels": app},
                        "spec": {
                            "serviceAccountName": SERVICE_ACCOUNT,
                            "containers": [container],
                            "volumes": _volumes(_specs_volume(config_map)),
                        },
                    },
                }
            },
        },
    }
    return [_config_map(config_map, {TRAIN_SPEC_KEY: _spec_text(train_spec(config, settings))}, app), job]


def tuning_objects(config: Config, settings: ClusterSettings) -> list[dict]:
    """keras-tuner's chief/worker protocol: the oracle Job, its Service, the worker Job, the spec."""
    name = f"{config.pipeline_name}-tuner"
    chief_labels = {"app": name, "role": "chief"}
    worker_labels = {"app": name, "role": "worker"}
    oracle = f"{name}-oracle"
    config_map = f"{name}-spec"
    spec_path = f"{SPECS_MOUNT}/{TUNE_SPEC_KEY}"
    workers = max(1, config.tuning.parallel_trials)

    def pod(labels: dict, container: dict) -> dict:
        return {
            "metadata": {"labels": labels},
            "spec": {
                "serviceAccountName": SERVICE_ACCOUNT,
                "restartPolicy": "OnFailure",
                "containers": [container],
                "volumes": _volumes(_specs_volume(config_map)),
            },
        }

    chief = {
        "name": "oracle",
        "image": _image(settings),
        "command": ["python", "-c", CHIEF_SCRIPT.format(path=spec_path)],
        "env": [
            *KERAS_ENV,
            {"name": "KERASTUNER_TUNER_ID", "value": "chief"},
            {"name": "KERASTUNER_ORACLE_IP", "value": "0.0.0.0"},  # Listen on the pod's addresses.
            {"name": "KERASTUNER_ORACLE_PORT", "value": str(ORACLE_PORT)},
        ],
        "ports": [{"name": "oracle", "containerPort": ORACLE_PORT}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        "volumeMounts": copy.deepcopy(_MOUNTS),
    }
    worker = {
        "name": "tuner",
        "image": _image(settings),
        "command": [
            "sh",
            "-c",
            # The Job controller sets JOB_COMPLETION_INDEX (0..N-1) in every pod of an Indexed Job.
            "KERASTUNER_TUNER_ID=tuner${JOB_COMPLETION_INDEX} "
            f"exec python -m {WORKERS_MODULE} tune {spec_path}",
        ],
        "env": [
            *KERAS_ENV,
            {"name": "KERASTUNER_ORACLE_IP", "value": oracle},
            {"name": "KERASTUNER_ORACLE_PORT", "value": str(ORACLE_PORT)},
        ],
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
        "volumeMounts": copy.deepcopy(_MOUNTS),
    }
    return [
        _config_map(config_map, {TUNE_SPEC_KEY: _spec_text(tune_spec(config, settings))}, {"app": name}),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": oracle, "labels": {"app": name}},
            "spec": {
                "selector": chief_labels,
                "ports": [{"name": "oracle", "port": ORACLE_PORT, "targetPort": ORACLE_PORT}],
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": oracle, "labels": chief_labels},
            "spec": {"backoffLimit": 3, "template": pod(chief_labels, chief)},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{name}-workers", "labels": worker_labels},
            "spec": {
                "completions": workers,
                "parallelism": workers,
                "completionMode": "Indexed",
                "backoffLimit": 3,
                "template": pod(worker_labels, worker),
            },
        },
    ]


HEADERS = {
    "common.yaml": "The ServiceAccount every cvpipe pod runs as and the ReadWriteMany volume of OUTPUT/\n"
    "that every pod mounts (ingest/examples/, serving/<model_name>/, tfjob/, tuning/).",
    "tf-serving.yaml": "TF Serving of the models the ServingPusher writes to\n"
    "OUTPUT/serving/<model_name>/<version>/ (on the outputs volume).",
    "tfjob-training.yaml": "Multi-worker training as a Training Operator TFJob: the worker entry point that\n"
    "`training.strategy: multi_worker` starts locally, TF_CONFIG from the operator;\n"
    "worker 0 writes the model.",
    "tuning.yaml": "Parallel tuning trials: a keras-tuner oracle (chief) Job behind a Service and N worker\n"
    "pods (tuner0..N-1), as `tuning.parallel_trials: N` runs them locally on 127.0.0.1.",
}


def generate(config: Config, settings: ClusterSettings | None = None) -> dict[str, list[dict]]:
    """File name -> the objects of that file, for ``config`` and ``settings``."""
    settings = settings or ClusterSettings()
    return {
        "common.yaml": common_objects(config),
        "tf-serving.yaml": serving_objects(config),
        "tfjob-training.yaml": training_objects(config, settings),
        "tuning.yaml": tuning_objects(config, settings),
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # Label dicts are shared between objects: write them out each time.
        return True


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(name: str, objects: list[dict]) -> str:
    """The text of one manifest file: a generated-file header and the objects as YAML documents."""
    header = "".join(f"# {line}\n" for line in HEADERS[name].splitlines())
    header += "# Generated by `python -m pipelines.manifests` (see deployment/README.md): do not edit.\n"
    body = "---\n".join(yaml.dump(o, Dumper=_Dumper, sort_keys=False, width=110) for o in objects)
    return header + body


def all_objects(files: dict[str, list[dict]]) -> list[dict]:
    return [o for objects in files.values() for o in objects]


def pod_templates(objects: list[dict]) -> Iterator[tuple[str, dict]]:
    """(``Kind/name``, pod template) of every workload, the TFJob's replica templates included."""
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec", {})
        if obj["kind"] == "Pod":
            yield where, obj
        elif "template" in spec:
            yield where, spec["template"]
        for replica, replica_spec in spec.get("tfReplicaSpecs", {}).items():
            yield f"{where}/{replica}", replica_spec["template"]


def unmatched_selectors(objects: list[dict]) -> list[str]:
    """Services (and workloads) whose selector matches the labels of no pod template."""
    templates = [t.get("metadata", {}).get("labels", {}) for _, t in pod_templates(objects)]
    problems = []
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "Service":
            selector = spec.get("selector")
        elif "matchLabels" in spec.get("selector", {}):
            selector = spec["selector"]["matchLabels"]
            own = spec.get("template", {}).get("metadata", {}).get("labels", {})
            if not selector.items() <= own.items():
                problems.append(
                    f"{obj['kind']}/{obj['metadata']['name']}: selector {selector} misses its template"
                )
            continue
        else:
            continue
        if not selector:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: no selector")
        elif not any(selector.items() <= labels.items() for labels in templates):
            problems.append(
                f"{obj['kind']}/{obj['metadata']['name']}: selector {selector} matches no pod template"
            )
    return problems


def pod_references(template: dict) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ConfigMap, Secret, PersistentVolumeClaim and ServiceAccount a pod names."""
    spec = template.get("spec", {})
    if spec.get("serviceAccountName"):
        yield "ServiceAccount", spec["serviceAccountName"]
    for secret in spec.get("imagePullSecrets", []):
        yield "Secret", secret["name"]
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                yield "ConfigMap", source["configMap"]["name"]
            if "secret" in source:
                yield "Secret", source["secret"]["name"]
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                yield "ConfigMap", ref["configMapKeyRef"]["name"]
            if "secretKeyRef" in ref:
                yield "Secret", ref["secretKeyRef"]["name"]
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"]
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"]


# Objects the user creates and the manifests may name without defining. Empty: everything a pod
# references is generated (deployment/README.md says what the user supplies instead).
USER_PROVIDED: frozenset[tuple[str, str]] = frozenset()


def missing_references(objects: list[dict], user_provided=USER_PROVIDED) -> list[str]:
    """References of pod templates to objects that are neither generated nor user-provided."""
    defined = {(o["kind"], o["metadata"]["name"]) for o in objects} | set(user_provided)
    return [
        f"{where}: {kind} {name} is not defined"
        for where, template in pod_templates(objects)
        for kind, name in pod_references(template)
        if (kind, name) not in defined
    ]


def write(out_dir: str, files: dict[str, list[dict]]) -> list[str]:
    """Writes every file after checking selectors and references; returns the paths."""
    objects = all_objects(files)
    problems = unmatched_selectors(objects) + missing_references(objects)
    if problems:
        raise ValueError("manifests do not hold together:\n  " + "\n  ".join(problems))
    os.makedirs(out_dir, exist_ok=True)  # Local YAML files for kubectl, not artifacts.
    paths = []
    for name, file_objects in files.items():
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(name, file_objects))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.manifests", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", help="config file (overrides pipelines/configs/default.yaml)")
    parser.add_argument("--out", default=OUT_DIR, help="directory for the YAML files (default: %(default)s)")
    defaults = ClusterSettings()
    parser.add_argument(
        "--labels",
        default=",".join(defaults.labels),
        help="the examples' labels.txt, in order, comma-separated (default: %(default)s, the sample shapes)",
    )
    parser.add_argument(
        "--image-size", type=int, default=defaults.image_size, help="used when model.image_size is 0"
    )
    parser.add_argument("--examples", default=defaults.examples, help="examples directory inside the pods")
    parser.add_argument("--image", help="pipeline image (default: the Dockerfile's '# image:' line)")
    args = parser.parse_args(argv)
    settings = ClusterSettings(
        labels=tuple(label.strip() for label in args.labels.split(",") if label.strip()),
        image_size=args.image_size,
        examples=args.examples.rstrip("/"),
        image=args.image,
    )
    for path in write(args.out, generate(load_config(args.config), settings)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
