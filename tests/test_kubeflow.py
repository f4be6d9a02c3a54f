"""Kubeflow: the compiled PipelineSpec (parsed with kfp's protobuf) and submission through the real
kfp client to a recording HTTP endpoint on 127.0.0.1."""

import contextlib
import http.server
import io
import json
import os
import re
import threading
import urllib.parse

import pytest
import yaml
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines import pipeline as nodes
from pipelines.cli import main
from pipelines.config import ConfigError
from pipelines.kubeflow import load_spec, run_arguments

CLUSTER_CONFIG = os.path.join(os.path.dirname(nodes.__file__), "configs", "cluster.yaml")
NODE_IDS = [
    nodes.INPUT_FINGERPRINT,
    nodes.EXAMPLE_GEN,
    nodes.SERVED_MODEL,
    nodes.STATISTICS_GEN,
    nodes.SCHEMA_GEN,
    nodes.EXAMPLE_VALIDATOR,
    nodes.DATA_CHECKS,
    nodes.VALIDATION_REPORT,
    nodes.DATA_GATE,
    nodes.TUNER,
    nodes.TRAINER,
    nodes.EVALUATOR,
    nodes.PUSHER,
    nodes.TFLITE_EXPORTER,
    nodes.EDGE_PUSHER,
    nodes.MODEL_REVIEW,
]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfp")
    path = str(out / "pipeline.yaml")
    args = ["compile", "--config", CLUSTER_CONFIG, "--output", path, "--pipeline-root", str(out / "root")]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*args, "--image", "registry.example/cvpipe:test"]) == 0
    compiled.printed = printed.getvalue()
    return path


def compiled_output():
    return compiled.printed


def test_compiled_spec_has_every_component_and_runtime_parameter(compiled):
    spec = load_spec(compiled)
    assert isinstance(spec, pipeline_spec_pb2.PipelineSpec) and spec.pipeline_info.name == "cvpipe"
    tasks = spec.root.dag.tasks
    for node in NODE_IDS:
        assert node in tasks, node
        executor = spec.deployment_spec["executors"][f"{node}_executor"]["container"]
        assert executor["image"] == "registry.example/cvpipe:test"
    # The data gate comes before any training; the baseline is a task of its own, not a resolver.
    assert nodes.DATA_GATE in tasks[nodes.TRAINER].dependent_tasks
    assert nodes.DATA_GATE in tasks[nodes.TUNER].dependent_tasks
    assert tasks[nodes.EVALUATOR].inputs.artifacts["baseline_model"].task_output_artifact.producer_task == (
        nodes.SERVED_MODEL
    )
    review_inputs = tasks[nodes.MODEL_REVIEW].inputs.artifacts
    assert {key: a.task_output_artifact.producer_task for key, a in review_inputs.items()} == {
        "examples": nodes.EXAMPLE_GEN,
        "model": nodes.TRAINER,
        "model_run": nodes.TRAINER,
        "tflite_model": nodes.TFLITE_EXPORTER,
        "tuner_results": nodes.TUNER,
        "model_blessing": nodes.EVALUATOR,
    }
    # Only what open-source KFP implements, in the schema its backend reads.
    assert {kind for e in spec.deployment_spec["executors"].values() for kind in e} == {"container"}
    assert spec.schema_version == "2.1.0"
    command = spec.deployment_spec["executors"][f"{nodes.TRAINER}_executor"]["container"]["command"]
    assert list(command) == ["python", "-m", "pipelines.kfp_entrypoint"]
    # KFP keys its cache on parameters: the task that lists the files never comes from it, and
    # hands their fingerprint to ImageExampleGen as a parameter, so its cache key sees the files.
    assert not tasks[nodes.INPUT_FINGERPRINT].caching_options.enable_cache
    assert tasks[nodes.EXAMPLE_GEN].caching_options.enable_cache
    fingerprint = tasks[nodes.EXAMPLE_GEN].inputs.parameters["input_fingerprint"].task_output_parameter
    assert (fingerprint.producer_task, fingerprint.output_parameter_key) == (
        nodes.INPUT_FINGERPRINT,
        "fingerprint",
    )
    assert tasks[nodes.STATISTICS_GEN].caching_options.enable_cache

    parameters = spec.root.input_definitions.parameters
    assert set(parameters) == {"input_base", "span", "model_config", "baseline_statistics"}
    assert parameters["input_base"].default_value.string_value == "/gcs/my-bucket/camera-images/span-{SPAN}"
    assert parameters["span"].parameter_type == pipeline_spec_pb2.ParameterType.NUMBER_INTEGER
    assert parameters["span"].default_value.number_value == -1
    model_config = json.loads(parameters["model_config"].default_value.string_value)
    assert model_config["training"]["epochs"] == 15 and model_config["tuning"]["max_trials"] == 4
    assert tasks[nodes.EXAMPLE_GEN].inputs.parameters["input_base"].component_input_parameter == "input_base"
    assert tasks[nodes.TRAINER].inputs.parameters["custom_config"].component_input_parameter == "model_config"
    assert tasks[nodes.TUNER].inputs.parameters["custom_config"].component_input_parameter == "model_config"
    # Beam arguments from the config reach the Beam-powered components.
    args = spec.deployment_spec["executors"][f"{nodes.STATISTICS_GEN}_executor"]["container"]["args"]
    assert "--runner=DataflowRunner" in args
    # Dataflow's workers run the pipeline image, so they can import cvpipe's executors.
    assert "--sdk_container_image=registry.example/cvpipe:test" in args
    printed = compiled_output()
    assert f"Compiled 'cvpipe' for Kubeflow Pipelines (KFP v2 PipelineSpec): {compiled}" in printed
    assert "    span = -1\n" in printed and "  image: registry.example/cvpipe:test" in printed


def test_compile_json_uses_the_dockerfile_image_by_default(tmp_path):
    path = str(tmp_path / "p.json")
    assert (
        main(["compile", "--images", "/data/{SPAN}", "--output", path, "--pipeline-root", str(tmp_path)]) == 0
    )
    with open(path) as f:
        spec = json.load(f)
    dockerfile = open(os.path.join(os.path.dirname(CLUSTER_CONFIG), "../../deployment/Dockerfile")).read()
    tag = re.search(r"^# image: (\S+)", dockerfile, re.M).group(1)
    images = {
        e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e
    }
    assert images == {tag}


def test_a_detection_pipeline_compiles_with_the_detector_in_its_model_config(tmp_path):
    config = tmp_path / "detection.yaml"
    config.write_text("task: detection\ninput:\n  images: /gcs/bucket/scenes/span-{SPAN}\n")
    path = str(tmp_path / "detection.yaml.json")
    args = ["compile", "--config", str(config), "--output", path, "--pipeline-root", str(tmp_path / "root")]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    spec = load_spec(path)
    tasks = spec.root.dag.tasks
    for node in NODE_IDS:
        assert node in tasks, node
    model_config = json.loads(
        spec.root.input_definitions.parameters["model_config"].default_value.string_value
    )
    assert model_config["task"] == "detection" and "head_width" in model_config["tuning"]["search_space"]
    assert tasks[nodes.TRAINER].inputs.parameters["custom_config"].component_input_parameter == "model_config"
    eval_config = tasks[nodes.EVALUATOR].inputs.parameters["eval_config"].runtime_value.constant
    assert "COCOMeanAveragePrecision" in eval_config.string_value
    assert {kind for e in spec.deployment_spec["executors"].values() for kind in e} == {"container"}


def test_run_arguments_are_typed_and_checked(compiled):
    spec = load_spec(compiled)
    arguments = run_arguments(spec, {"span": "3", "epochs": "20", "max_trials": "8"})
    assert arguments["span"] == 3
    model_config = json.loads(arguments["model_config"])
    assert model_config["training"]["epochs"] == 20 and model_config["tuning"]["max_trials"] == 8
    with pytest.raises(ConfigError, match="--param spam: not a parameter of this pipeline"):
        run_arguments(spec, {"spam": "1"})
    with pytest.raises(ConfigError, match="--param span: expected an integer"):
        run_arguments(spec, {"span": "latest"})
    # A hand-edited model_config is checked at submit time, naming the field.
    edited = json.loads(arguments["model_config"])
    edited["training"]["epochs"] = "ten"
    with pytest.raises(ConfigError, match="--param model_config.training.epochs: expected an integer"):
        run_arguments(spec, {"model_config": json.dumps(edited)})


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers the KFP v2beta1 API calls the client makes, and records every request."""

    requests: list = []
    pipelines: dict = {}
    refuse: bool = False  # Answer every POST with 403, as an API server without the right token.

    def log_message(self, *args):
        pass

    def _reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlparse(self.path)
        self.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": urllib.parse.parse_qs(url.query),
                "headers": dict(self.headers),
                "body": body,
            }
        )
        return url, body

    def do_GET(self):
        url, _ = self._record()
        if url.path.endswith("/healthz"):
            return self._reply({"multi_user": False})
        if url.path == "/apis/v2beta1/pipelines":
            existing = [{"pipeline_id": pid, "display_name": name} for name, pid in self.pipelines.items()]
            return self._reply({"pipelines": existing, "total_size": len(existing)})
        if re.fullmatch(r"/apis/v2beta1/pipelines/[^/]+/versions", url.path):
            return self._reply({"pipeline_versions": [{"pipeline_version_id": "version-1"}], "total_size": 1})
        if url.path == "/apis/v2beta1/experiments":
            return self._reply({"experiments": [], "total_size": 0})
        self.send_error(404)

    def do_POST(self):
        url, _ = self._record()
        if self.refuse:
            data = b'{"error": "token has no access to namespace kubeflow", "code": 7}'
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.wfile.write(data)
        if url.path == "/apis/v2beta1/pipelines/upload":
            self.pipelines["cvpipe"] = "pipeline-1"
            return self._reply({"pipeline_id": "pipeline-1", "display_name": "cvpipe"})
        if url.path == "/apis/v2beta1/pipelines/upload_version":
            return self._reply({"pipeline_id": "pipeline-1", "pipeline_version_id": "version-2"})
        if url.path == "/apis/v2beta1/experiments":
            return self._reply({"experiment_id": "experiment-1", "display_name": "nightly"})
        if url.path == "/apis/v2beta1/runs":
            return self._reply({"run_id": "run-1", "display_name": "r"})
        self.send_error(404)


@pytest.fixture
def kfp_server():
    _Recorder.requests = []
    _Recorder.pipelines = {}
    _Recorder.refuse = False
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder
    server.shutdown()


def test_submit_uploads_the_spec_and_starts_a_run_with_the_parameters(
    compiled, kfp_server, monkeypatch, capsys
):
    host, recorder = kfp_server
    monkeypatch.setenv("KFP_TOKEN", "secret-token-from-env")
    monkeypatch.setenv("HOME", os.path.dirname(compiled))  # No kfp context file of the user's.
    args = ["submit", compiled, "--host", host, "--experiment", "nightly", "--run-name", "r1"]
    assert main([*args, "--param", "span=7", "--param", "epochs=30"]) == 0
    calls = [(r["method"], r["path"]) for r in recorder.requests]
    assert ("POST", "/apis/v2beta1/pipelines/upload") in calls and calls[-1] == ("POST", "/apis/v2beta1/runs")

    upload = next(r for r in recorder.requests if r["path"] == "/apis/v2beta1/pipelines/upload")
    assert upload["query"]["name"] == ["cvpipe"]
    uploaded = yaml.safe_load(upload["body"].split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0])
    assert uploaded == yaml.safe_load(open(compiled))  # The compiled spec, byte for byte in content.

    run = json.loads(recorder.requests[-1]["body"])
    assert run["display_name"] == "r1" and run["experiment_id"] == "experiment-1"
    assert run["pipeline_version_reference"] == {
        "pipeline_id": "pipeline-1",
        "pipeline_version_id": "version-1",
    }
    assert run["runtime_config"]["parameters"]["span"] == 7
    assert json.loads(run["runtime_config"]["parameters"]["model_config"])["training"]["epochs"] == 30
    # The token travels only as a header, from the environment.
    for request in recorder.requests:
        assert request["headers"].get("authorization") == "Bearer secret-token-from-env"
        assert b"secret-token" not in request["body"]
    assert "run_id: run-1" in capsys.readouterr().out

    # A second submission adds a version of the same pipeline instead of a new pipeline.
    recorder.requests.clear()
    assert main([*args, "--param", "span=8"]) == 0
    paths = [r["path"] for r in recorder.requests]
    assert "/apis/v2beta1/pipelines/upload_version" in paths and "/apis/v2beta1/pipelines/upload" not in paths
    assert (
        json.loads(recorder.requests[-1]["body"])["pipeline_version_reference"]["pipeline_version_id"]
        == "version-2"
    )


def test_submit_dry_run_validates_and_sends_nothing(compiled, kfp_server, capsys, tmp_path):
    host, recorder = kfp_server
    assert main(["submit", compiled, "--host", host, "--param", "max_trials=2", "--dry-run"]) == 0
    assert recorder.requests == []
    printed = capsys.readouterr().out
    request = json.loads(printed.split("would upload it and start:\n", 1)[1])
    assert (
        request["pipeline"] == "cvpipe"
        and json.loads(request["parameters"]["model_config"])["tuning"]["max_trials"] == 2
    )
    assert main(["submit", compiled, "--host", host, "--param", "nope=1", "--dry-run"]) == 2
    assert "--param nope: not a parameter of this pipeline" in capsys.readouterr().err
    bogus = tmp_path / "bogus.yaml"
    bogus.write_text("just: a mapping\n")
    assert main(["submit", str(bogus), "--host", host, "--dry-run"]) == 2
    assert "is not a KFP PipelineSpec" in capsys.readouterr().err


def test_dockerfile_matches_the_pins_and_the_compiled_paths(compiled):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dockerfile = open(os.path.join(root, "deployment", "Dockerfile")).read()
    pinned = re.search(r"^tfx==(\S+)$", open(os.path.join(root, "constraints.txt")).read(), re.M).group(1)
    assert re.search(r"^FROM tensorflow/tfx:(\S+)$", dockerfile, re.M).group(1) == pinned
    assert f"WORKDIR {nodes.IMAGE_SOURCE_DIR}\n" in dockerfile
    for package in ("components", "pipelines", "schemas"):
        assert f"COPY {package} {package}\n" in dockerfile
    spec = load_spec(compiled)
    schema_file = spec.root.dag.tasks[nodes.SCHEMA_GEN].inputs.parameters["schema_file"]
    assert schema_file.runtime_value.constant.string_value == f"{nodes.IMAGE_SOURCE_DIR}/schemas/schema.pbtxt"


def test_submit_reports_an_unreachable_or_refusing_server_clearly(compiled, kfp_server, monkeypatch, capsys):
    host, recorder = kfp_server
    monkeypatch.setenv("HOME", os.path.dirname(compiled))
    recorder.refuse = True
    assert main(["submit", compiled, "--host", host]) == 1
    err = capsys.readouterr().err
    assert f"cvpipe: error: Kubeflow Pipelines at {host} refused the request: 403" in err
    assert "token has no access" in err and "Traceback" not in err

    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert main(["submit", compiled, "--host", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"cvpipe: error: could not reach Kubeflow Pipelines at http://127.0.0.1:{port}" in err


def test_a_spec_with_a_resolver_is_refused_before_anything_is_written(compiled):
    from pipelines.kubeflow import check_portable

    with open(compiled) as f:
        spec = yaml.safe_load(f)
    spec["deploymentSpec"]["executors"]["Latest_resolver"] = {"resolver": {"outputArtifactQueries": {}}}
    with pytest.raises(
        ConfigError, match="Latest_resolver is a resolver executor, which open-source Kubeflow"
    ):
        check_portable(spec)


def test_entrypoint_restores_the_input_types_kfp_leaves_empty(compiled):
    """KFP's backend passes upstream artifacts with `instanceSchema: ""`; TFX needs the class."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils

    from pipelines.kfp_entrypoint import INPUTS_SPEC_FLAG, _flag_value, restore_input_types

    spec = load_spec(compiled)
    args = list(spec.deployment_spec["executors"][f"{nodes.DATA_CHECKS}_executor"]["container"]["args"])
    inputs_spec = json.loads(_flag_value(args, INPUTS_SPEC_FLAG))
    executor_input = {
        "inputs": {
            "artifacts": {
                key: {
                    "artifacts": [
                        {"name": "7", "uri": f"/r/{key}", "type": {"instanceSchema": ""}, "metadata": {}}
                    ]
                }
                for key in inputs_spec["artifacts"]
            }
        }
    }
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    broken = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
    with pytest.raises(AttributeError):  # What TFX 1.16's entrypoint does with KFP's input.
        utils.parse_raw_artifact_dict(broken.inputs.artifacts)
    repaired = json_format.ParseDict(
        restore_input_types(executor_input, inputs_spec), pipeline_spec_pb2.ExecutorInput()
    )
    artifacts = utils.parse_raw_artifact_dict(repaired.inputs.artifacts)
    assert artifacts["catalog"][0].TYPE_NAME == "components.ImageCatalog"
    assert artifacts["statistics"][0].TYPE_NAME == "ExampleStatistics"
    assert artifacts["anomalies"][0].uri == "/r/anomalies"


def test_entrypoint_points_html_and_markdown_outputs_at_their_files(tmp_path):
    """KFP's UI fetches the object at an HTML/Markdown artifact's URI: it must be the file."""
    from components import kfp_ui
    from pipelines.kfp_entrypoint import point_outputs_at_files

    output_file = tmp_path / "kfp_outputs" / "output_metadata.json"
    output_file.parent.mkdir()
    page = {"uri": "gs://b/r/cvpipe/run/ValidationReport/u/page", "metadata": {kfp_ui.FILE_KEY: "index.html"}}
    other = {"uri": "gs://b/r/cvpipe/run/ValidationReport/u/report", "metadata": {"span": 0}}
    output_file.write_text(
        json.dumps({"artifacts": {"page": {"artifacts": [page]}, "report": {"artifacts": [other]}}})
    )
    point_outputs_at_files({"outputs": {"outputFile": str(output_file)}})
    written = json.loads(output_file.read_text())["artifacts"]
    assert written["page"]["artifacts"][0]["uri"] == page["uri"] + "/index.html"
    assert written["report"]["artifacts"][0]["uri"] == other["uri"]
    point_outputs_at_files({"outputs": {"outputFile": str(output_file)}})  # Idempotent.
    assert (
        json.loads(output_file.read_text())["artifacts"]["page"]["artifacts"][0]["uri"].count("index.html")
        == 1
    )


def test_ui_artifact_types_are_the_titles_kfp_renders_and_import_by_title():
    from tfx.utils import import_utils

    from components import kfp_ui

    assert set(kfp_ui.TITLE_TO_CLASS_PATH) == {"system.HTML", "system.Markdown", "system.Metrics"}
    for title, path in kfp_ui.TITLE_TO_CLASS_PATH.items():
        assert import_utils.import_class_by_path(path).TYPE_NAME == title
    # cvpipe's own types: the V2 entrypoint imports the title itself as a class path.
    for name in ("ImageCatalog", "DataCheckResults", "ValidationReport", "TFLiteModel", "ModelReview"):
        cls = import_utils.import_class_by_path(f"components.{name}")
        assert cls.TYPE_NAME == f"components.{name}"


def test_verdict_markdown_names_the_verdict_and_every_anomaly():
    from components.validation_report.report import verdict_markdown

    checks = {
        "verdict": "fail",
        "reason": "1 error anomaly: drift [train/label]",
        "span": 3,
        "anomalies": [
            {"severity": "warning", "check": "class_imbalance", "split": "train", "feature": "label",
             "description": "12x | more"},
            {"severity": "error", "check": "drift", "split": "train", "feature": "label",
             "description": "L-infinity 0.25 > 0.1"},
        ],
    }  # fmt: skip
    text = verdict_markdown(checks, "gs://b/report/index.html")
    lines = text.splitlines()
    assert lines[0] == "# Data validation: FAIL" and "Span 3" in lines[2]
    assert lines[6].startswith("| error | drift |") and lines[7].startswith("| warning |")
    assert "12x \\| more" in lines[7]  # A pipe in a description does not break the table.
