"""The compiled Kubeflow pipeline executes: every task through its own container command, with the
executor input Kubeflow Pipelines' v2 driver and launcher would give it (tests/kfp_launcher.py)."""

import copy
import json
import os
import sys

import pytest
from PIL import Image

from pipelines import pipeline as nodes
from pipelines.cli import main
from pipelines.sample_data import write_sample_data
from tests.kfp_launcher import (
    CUSTOM_JOB_NOT_SUPPORTED,
    RESOLVER_NOT_IMPLEMENTED,
    KfpError,
    Store,
    check_spec,
    run_pipeline,
)

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Mechanics, not accuracy: ~60 images of three classes, two 1-epoch trials in the Tuner's process,
# two training epochs (the Trainer continues from the best trial), a tiny int8 calibration.
FAST = """
model: {image_size: 32}
training: {epochs: 2}
tuning: {max_trials: 2, epochs: 1, parallel_trials: 0, search_space: {width: [8, 12], depth: [1]}}
evaluation: {min_accuracy: 0.05, max_accuracy_drop: 1.0}
edge: {modes: [int8], representative_count: 16, max_accuracy_drop: 1.0, min_agreement: 0.0}
validation: {min_class_count: 2, max_class_imbalance: 100.0, max_quarantine_rate: 0.5, schema: SCHEMA}
beam: {args: [--direct_running_mode=in_memory]}
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(spec dict, images dir, pipeline root): the FAST config compiled by `cvpipe compile`."""
    base = tmp_path_factory.mktemp("kfp_run")
    images, root = str(base / "images"), str(base / "root")
    write_sample_data(images, kind="shapes", count=60, seed=5)
    config = base / "fast.yaml"
    # The compiled default schema is the image's /cvpipe/schemas/schema.pbtxt; here, this checkout's.
    config.write_text(FAST.replace("SCHEMA", os.path.join(CHECKOUT, "schemas", "schema.pbtxt")))
    path = str(base / "pipeline.json")
    args = ["compile", "--images", images, "--output", path, "--pipeline-root", root, "--config", str(config)]
    assert main(args) == 0
    with open(path) as f:
        return json.load(f), images, root


def container_env(home: str) -> dict:
    """What deployment/Dockerfile's image gives every task, with this checkout as the installed code."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "PYTHONPATH": CHECKOUT,
        "TF_USE_LEGACY_KERAS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore::FutureWarning",
    }


def with_executor(spec: dict, task: str, executor: dict) -> dict:
    changed = copy.deepcopy(spec)
    component = changed["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    label = changed["components"][component]["executorLabel"]
    changed["deploymentSpec"]["executors"][label] = executor
    return changed


def test_kfp_refuses_a_resolver_executor_in_the_compiled_spec(compiled, tmp_path):
    spec, _, root = compiled
    resolver = {"resolver": {"outputArtifactQueries": {"model": {"filter": 'schema_title="tfx.Model"'}}}}
    changed = with_executor(spec, nodes.EVALUATOR, resolver)
    with pytest.raises(KfpError, match=f"compiling task '{nodes.EVALUATOR}': {RESOLVER_NOT_IMPLEMENTED}"):
        run_pipeline(changed, store=Store(), pipeline_root=root, workdir=str(tmp_path), env={})
    assert not os.listdir(tmp_path)  # Refused before any task ran.
    custom_job = with_executor(spec, nodes.TRAINER, {"customJob": {"customJob": {}}})
    with pytest.raises(KfpError, match=CUSTOM_JOB_NOT_SUPPORTED):
        check_spec(custom_job)


def test_compiled_spec_uses_only_what_open_source_kfp_runs(compiled):
    spec, _, _ = compiled
    check_spec(spec)
    assert spec["schemaVersion"] == "2.1.0"
    executors = spec["deploymentSpec"]["executors"].values()
    assert all(set(e) <= {"container", "importer"} for e in executors)
    tasks = spec["root"]["dag"]["tasks"]
    # InputFingerprint looks at the files on every run; KFP's cache would key it on parameters alone.
    assert tasks[nodes.INPUT_FINGERPRINT]["cachingOptions"].get("enableCache", False) is False
    assert tasks[nodes.EXAMPLE_GEN]["cachingOptions"]["enableCache"] is True
    for name, task in tasks.items():
        for source in task.get("inputs", {}).get("parameters", {}).values():
            assert "constantValue" not in source.get("runtimeValue", {}), name  # KFP 2 reads `constant`.


def artifact_input(run, task: str, key: str) -> dict:
    (artifact,) = run.tasks[task].executor_input["inputs"]["artifacts"][key]["artifacts"]
    return artifact


@pytest.mark.slow
def test_compiled_pipeline_runs_on_kfp_blesses_pushes_and_the_cache_sees_new_images(compiled, tmp_path):
    spec, images, root = compiled
    env = container_env(str(tmp_path / "home"))
    os.makedirs(env["HOME"])
    store = Store()  # One KFP installation: ML Metadata and the cache outlive a run.

    first = run_pipeline(spec, store=store, pipeline_root=root, workdir=str(tmp_path / "w1"), env=env)
    tasks = spec["root"]["dag"]["tasks"]
    assert list(first.tasks) and set(first.tasks) == set(tasks)
    assert all(task.state == "COMPLETE" for task in first.tasks.values())

    # Each task ran its executor's own command and args, with KFP's executor input for `{{$}}`.
    statistics = first.tasks[nodes.STATISTICS_GEN]
    container = spec["deploymentSpec"]["executors"][f"{nodes.STATISTICS_GEN}_executor"]["container"]
    assert statistics.argv[: len(container["command"])] == container["command"]
    substituted = json.loads(statistics.argv[len(container["command"]) + container["args"].index("{{$}}")])
    assert substituted["inputs"] == statistics.executor_input["inputs"]
    assert "parameters" not in substituted["inputs"]  # Only parameterValues, as KFP 2 sends.
    examples = first.tasks[nodes.EXAMPLE_GEN].outputs["examples"]
    given = artifact_input(first, nodes.STATISTICS_GEN, "examples")
    assert given["name"] == str(examples.id) and given["uri"] == examples.uri
    assert given["type"] == {"instanceSchema": ""} and given["metadata"]["display_name"] == "examples"
    assert examples.uri.startswith(f"{first.root}/{nodes.EXAMPLE_GEN}/")

    # The Trainer took the Tuner's results (KFP's artifact input) and continued from the best trial.
    results = first.tasks[nodes.TUNER].outputs["tuner_results"]
    assert artifact_input(first, nodes.TRAINER, "tuner_results")["name"] == str(results.id)
    model_run = first.tasks[nodes.TRAINER].outputs["model_run"].uri
    with open(os.path.join(model_run, "metrics.json")) as f:
        continued = json.load(f)["continued_from"]
    assert continued["epochs"] == 1 and continued["checkpoint"].startswith(results.uri)

    blessing = first.tasks[nodes.EVALUATOR].outputs["blessing"]
    assert blessing.custom_properties["blessed"] == 1
    pushed = first.tasks[nodes.PUSHER].outputs["pushed_model"]
    assert pushed.custom_properties["pushed"] == 1
    destination = pushed.custom_properties["pushed_destination"]
    assert os.path.isfile(os.path.join(destination, "saved_model.pb")), destination
    (edge,) = first.tasks[nodes.EDGE_PUSHER].outputs.values()
    assert edge.custom_properties["pushed"] == 1
    assert any(name.endswith(".tflite") for name in os.listdir(edge.custom_properties["pushed_destination"]))

    # What the Kubeflow UI shows: the report and the verdict as files at their URIs, a metrics table.
    page = first.tasks[nodes.VALIDATION_REPORT].outputs["page"]
    assert page.uri.endswith("/page/index.html") and "<html" in open(page.uri).read()
    verdict = first.tasks[nodes.VALIDATION_REPORT].outputs["verdict"]
    assert verdict.uri.endswith("/verdict.md") and open(verdict.uri).read().startswith(
        "# Data validation: PASS"
    )
    review = first.tasks[nodes.MODEL_REVIEW].outputs["page"]
    assert review.uri.endswith("/page/model_review.html") and "model review" in open(review.uri).read()
    assert review.custom_properties["display_name"] == "model review"
    table = first.tasks[nodes.EVALUATOR].outputs["metrics"].custom_properties
    assert table["blessed"] == 1 and 0 <= table["sparse_categorical_accuracy"] <= 1
    assert first.tasks[nodes.SERVED_MODEL].outputs["model"].custom_properties["found"] == 0

    # A second submission, same parameters, same images: only InputFingerprint runs; its output
    # parameter is unchanged, so every other task is a cache hit with the first run's artifacts.
    second = run_pipeline(spec, store=store, pipeline_root=root, workdir=str(tmp_path / "w2"), env=env)
    fingerprint = "input_fingerprint"
    ran = {name for name, task in second.tasks.items() if task.state != "CACHED"}
    assert ran == {nodes.INPUT_FINGERPRINT}
    again = second.tasks[nodes.EXAMPLE_GEN].outputs["examples"]
    assert again.id == examples.id
    assert second.tasks[nodes.PUSHER].outputs["pushed_model"].id == pushed.id

    # A changed image under the same parameters: new examples, nothing downstream from the cache.
    circle = os.path.join(images, "circle")
    changed = os.path.join(circle, sorted(os.listdir(circle))[0])
    with Image.open(changed) as image:
        flipped, exif = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM), image.info.get("exif", b"")
    flipped.save(changed, format="JPEG", quality=80, exif=exif)
    third = run_pipeline(
        spec,
        store=store,
        pipeline_root=root,
        workdir=str(tmp_path / "w3"),
        env=env,
        only={nodes.STATISTICS_GEN},
    )
    new = third.tasks[nodes.EXAMPLE_GEN].outputs["examples"]
    assert third.tasks[nodes.EXAMPLE_GEN].state == "COMPLETE"  # Its fingerprint parameter changed.
    assert new.id != examples.id and new.uri != examples.uri
    assert new.custom_properties[fingerprint] != examples.custom_properties[fingerprint]
    assert third.tasks[nodes.STATISTICS_GEN].state == "COMPLETE"  # Its cache key holds the examples' id.
    assert artifact_input(third, nodes.STATISTICS_GEN, "examples")["name"] == str(new.id)
