"""Running cvpipe locally: the ingestion alone, or the whole pipeline on the Beam DAG runner.

result = run_pipeline(load_config(None, {"input": {"images": "data"}}), "out")
result.outputs["ExampleValidator"]["anomalies"]
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from ml_metadata.proto.metadata_store_pb2 import Execution
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

from components.data_checks.executor import DataGateError
from components.data_checks.spec import GATE_MARKER
from components.image_example_gen import discovery as discovery_lib
from components.image_example_gen.ingest import ingest, prepare_inputs
from components.image_model import workers
from pipelines import beam_local, metadata
from pipelines.config import Config, ConfigError
from pipelines.metadata import latest_outputs
from pipelines.nodes import EXAMPLE_GEN, METADATA_FILE, PIPELINE_ROOT
from pipelines.pipeline import SERVING_DIR, create_pipeline  # noqa: F401 (SERVING_DIR: re-exported)
from pipelines.report import write_report  # noqa: F401 (re-exported; it needs neither Beam nor TFX)

Printer = Callable[[str], None]


def resolve_input(config: Config) -> tuple[discovery_lib.Discovery, int]:
    return discovery_lib.resolve_inputs(config.input.images, config.input.manifest, config.input.span)


def run_ingest(config: Config, output_dir: str, echo: Printer = print) -> dict:
    """The ingestion alone, on Beam: OUTPUT/examples/Split-*/, catalog.parquet, summary.json."""
    found, span = resolve_input(config)
    options = config.ingest.to_options()
    if options.task == "detection":  # The images and the annotations' classes, as ingestion pairs them.
        inputs = prepare_inputs(found, options)
        images = sum(1 for c in inputs.candidates if c.reason is None)
        kept = {c.path for c in inputs.candidates}
        annotations = sum(1 for c in found.candidates if c.path not in kept)
        echo(
            f"Found {len(found.candidates)} input files under {found.root} (span {span}): {images} images, "
            f"{annotations} annotation file(s), {len(inputs.candidates) - images} to quarantine; "
            f"classes: {', '.join(inputs.labels) or 'none'}"
        )
    else:
        echo(
            f"Found {len(found.candidates)} input files under {found.root} (span {span}); "
            f"labels: {', '.join(found.labels) or 'none'}"
        )
    args = beam_local.local_args(
        config.beam.args, file_count=len(found.candidates), in_process_below=config.beam.in_process_below
    )
    echo(f"Ingesting with Beam ({' '.join(args) or 'DirectRunner'}) ...")
    started = time.time()
    summary = ingest(
        found,
        options,
        span=span,
        examples_dir=os.path.join(output_dir, "examples"),
        catalog_dir=output_dir,
        make_pipeline=lambda: beam.Pipeline(options=PipelineOptions(args)),
    )
    summary["seconds"] = round(time.time() - started, 2)
    return summary


class _NodeProgress(threading.Thread):
    """Prints one line per node as it starts, finishes (with its duration) or comes from the cache.

    Reads ML Metadata, which the orchestrator writes as it goes, rather than log records (a
    component can change the log level mid-run); durations are the executions' own timestamps.
    """

    def __init__(
        self,
        metadata_path: str,
        pipeline_name: str,
        echo: Printer,
        interval: float = 0.5,
        on_start: Callable[[str], None] | None = None,
    ):
        super().__init__(daemon=True)
        self._path, self._pipeline_name = metadata_path, pipeline_name
        self._echo, self._interval = echo, interval
        self._on_start = on_start  # Called with a node's id as it starts (not when cached).
        self._stopping = threading.Event()
        self._seen: dict[int, int] = {}  # Execution id -> last state printed.
        self._connection = None
        self._first_id = self._max_execution_id()  # Earlier runs' executions are not reported.
        self._connection = None  # The polling thread opens its own connection.

    def _store(self):
        if self._connection is None:
            if not os.path.exists(self._path):
                raise FileNotFoundError(self._path)
            self._connection = metadata.open_store(self._path, readonly=True)
        return self._connection

    def _max_execution_id(self) -> int:
        if not os.path.exists(self._path):
            return 0
        try:
            return max((e.id for e in self._store().get_executions()), default=0)
        except Exception:  # noqa: BLE001 - a store being created: nothing ran before.
            return 0

    def run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.poll()

    def stop(self) -> None:
        self._stopping.set()
        self.join()
        self._connection = None
        self.poll()  # The last states, from this thread's own connection.

    def poll(self) -> None:
        try:
            nodes = {
                execution.id: (node, execution)
                for node, executions in metadata.node_executions(self._store(), self._pipeline_name).items()
                for execution in executions
                if execution.id > self._first_id
            }
        except Exception:  # noqa: BLE001 - the store is busy or not created yet: next tick.
            return
        for execution_id in sorted(nodes):
            node, execution = nodes[execution_id]
            state = execution.last_known_state
            if self._seen.get(execution_id) == state:
                continue
            if execution_id not in self._seen and state != Execution.CACHED:
                self._echo(f"  > {node} started")
                if self._on_start:
                    self._on_start(node)
            self._seen[execution_id] = state
            seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
            if state == Execution.CACHED:
                self._echo(f"  = {node} reused from cache")
            elif state == Execution.COMPLETE:
                self._echo(f"  < {node} finished in {seconds:.1f}s")
            elif state == Execution.FAILED:
                self._echo(f"  ! {node} failed after {seconds:.1f}s")


def _hide_gate_traceback(record: logging.LogRecord) -> bool:
    """The gate's failure is reported once, as a message, not as Beam's traceback of it."""
    return GATE_MARKER not in record.getMessage()


@dataclasses.dataclass
class RunResult:
    output_dir: str
    metadata_path: str
    seconds: float
    nodes: dict[str, str]  # node id -> "ran" | "cached" | state name.
    outputs: dict[str, dict[str, list[str]]]  # node id -> output key -> artifact URIs.


def check_writable(uri: str, what: str) -> None:
    """A one-line ConfigError, before anything runs, when ``uri`` cannot be written (an unknown
    scheme, a missing bucket, no credentials, no network), instead of a failure deep in a node."""
    import tensorflow as tf

    probe = f"{uri.rstrip('/')}/.cvpipe-write-check-{os.getpid()}"
    try:
        tf.io.gfile.makedirs(uri)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0][:200]
        raise ConfigError(f"{what} {uri}: cannot write there ({reason})") from None


def run_pipeline(
    config: Config,
    output_dir: str,
    echo: Printer = print,
    *,
    train: bool = True,
    pipeline_root: str | None = None,
    push_root: str | None = None,
) -> RunResult:
    """Runs the whole pipeline with the Beam DAG runner; ML Metadata lives in OUTPUT/metadata.sqlite.

    ``pipeline_root`` (artifacts; default OUTPUT/pipeline_root) and ``push_root`` (serving/ and
    edge/; default OUTPUT) may be any filesystem URI TensorFlow knows, e.g. gs://bucket/path.
    The runner only runs the graph: span, fingerprint, drift baseline and served baseline are
    resolved by the pipeline's own nodes.
    """
    output_dir = os.path.abspath(output_dir)
    # Local: ML Metadata's SQLite file; artifacts and pushes go to the roots, any URI, via gfile.
    os.makedirs(output_dir, exist_ok=True)
    found, span = resolve_input(config)
    echo(f"Input: {len(found.candidates)} files under {found.root} (span {span})")
    metadata_path = os.path.join(output_dir, METADATA_FILE)
    pipeline_root = pipeline_root or os.path.join(output_dir, PIPELINE_ROOT)
    check_writable(pipeline_root, "--pipeline-root")
    if train and push_root:
        check_writable(push_root, "--push-to")
    if config.validation.baseline_statistics:
        echo(f"Drift baseline: {config.validation.baseline_statistics} (from the config)")
    args = beam_local.local_args(
        config.beam.args, file_count=len(found.candidates), in_process_below=config.beam.in_process_below
    )
    if args != list(config.beam.args):
        echo(f"Beam: in this process, {len(found.candidates)} files < beam.in_process_below")
    config = dataclasses.replace(config, beam=dataclasses.replace(config.beam, args=args))
    pipeline = create_pipeline(
        config,
        pipeline_root=pipeline_root,
        metadata_path=metadata_path,
        push_root=(push_root or output_dir) if train else None,
    )
    standby = workers.Standby(standby_count(config)) if train else None
    workers.use_standby(standby)

    def on_start(node: str) -> None:
        if standby is not None and node == EXAMPLE_GEN:
            standby.start()  # Their imports take the core that ingestion and statistics leave idle.

    progress = _NodeProgress(metadata_path, config.pipeline_name, echo, on_start=on_start)
    progress.start()
    beam_logger = logging.getLogger("apache_beam.runners.common")
    beam_logger.addFilter(_hide_gate_traceback)
    started = time.time()
    try:
        with beam_local.without_tfx_sdist(args):
            BeamDagRunner().run(pipeline)
    except Exception as e:  # The gate's message is the useful part of whatever Beam wraps it in.
        message = str(e)
        if GATE_MARKER in message:
            gate = message[message.index(GATE_MARKER) :].split(" [while running")[0]
            raise DataGateError(gate) from None
        raise
    finally:
        beam_logger.removeFilter(_hide_gate_traceback)
        progress.stop()
        workers.use_standby(None)
        if standby is not None:
            standby.stop()
    seconds = time.time() - started
    nodes, outputs = latest_outputs(metadata_path, config.pipeline_name)
    return RunResult(output_dir, metadata_path, seconds, nodes, outputs)


def standby_count(config: Config) -> int:
    """Worker processes a run that trains starts: the tuning workers, then the Trainer's."""
    tuning = config.tuning.parallel_trials if config.tuning.enabled else 0
    if config.training.strategy == "multi_worker":
        return tuning + config.training.workers
    return tuning + (1 if config.training.fresh_process else 0)


def pushed_destination(metadata_path: str, pushed_uri: str) -> str | None:
    """Where a ServingPusher artifact pushed to, or None when it did not push."""
    store = metadata.open_store(metadata_path)
    for artifact in store.get_artifacts_by_uri(pushed_uri):
        props = artifact.custom_properties
        if "pushed" in props and props["pushed"].int_value == 1:
            return props["pushed_destination"].string_value
    return None
