"""deployment/ manifests: they parse, have the expected kinds, and match what the pipeline writes."""

import os

import yaml

from pipelines.config import load_config

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deployment", "kubernetes")


def load(name):
    with open(os.path.join(ROOT, name)) as f:
        return {doc["kind"]: doc for doc in yaml.safe_load_all(f) if doc}


def test_tf_serving_serves_the_pushed_model_directory_with_batching():
    docs = load("tf-serving.yaml")
    assert {"ConfigMap", "Deployment", "Service"} == set(docs)
    assert docs["Deployment"]["apiVersion"] == "apps/v1"
    model_name = load_config().serving.model_name
    config = docs["ConfigMap"]["data"]["models.config"]
    assert f'name: "{model_name}"' in config and f'base_path: "/models/{model_name}"' in config
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
    assert mount["mountPath"] == f"/models/{model_name}"
    assert mount["subPath"] == f"serving/{model_name}"  # runner.SERVING_DIR / model_name
    assert "--enable_batching=true" in container["args"]
    assert "max_batch_size" in docs["ConfigMap"]["data"]["batching.config"]
    assert {p["port"] for p in docs["Service"]["spec"]["ports"]} == {8500, 8501}


def test_tfjob_runs_the_local_training_worker_entry_point():
    job = load("tfjob-training.yaml")["TFJob"]
    assert job["apiVersion"] == "kubeflow.org/v1"
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    command = worker["template"]["spec"]["containers"][0]["command"]
    assert command[:4] == ["python", "-m", "components.image_model.workers", "train"]
    assert worker["replicas"] >= 2
    import components.image_model.workers  # noqa: F401  (the module the command runs exists)


def test_tuning_workers_use_keras_tuner_environment():
    docs = load("tuning-workers.yaml")
    assert {"Service", "Job"} == set(docs)
    container = docs["Job"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KERASTUNER_ORACLE_IP"] == docs["Service"]["metadata"]["name"]
    assert env["KERASTUNER_ORACLE_PORT"] == str(docs["Service"]["spec"]["ports"][0]["port"])
    assert "components.image_model.workers tune" in container["command"][-1]
