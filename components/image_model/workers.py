"""Local worker processes: multi-worker training and parallel tuning trials on 127.0.0.1.

    python -m components.image_model.workers train SPEC_FILE     # one worker; TF_CONFIG from env, if any
    python -m components.image_model.workers tune SPEC_FILE      # one tuning worker
    python -m components.image_model.workers standby             # imports, then reads one of these on stdin

``run_training_workers(spec, n)`` starts N training workers with TF_CONFIG on free local ports and
waits for all of them; a failing worker fails the whole run with its log tail. Their scratch
directory (spec file, logs) is removed when they end; ``log_dir=`` keeps a copy of the logs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerError(RuntimeError):
    """Worker processes that failed: ``reason`` in one line (which worker, the signal or exit
    status), ``logs`` the kept copies of their logs (empty without ``log_dir``), ``tail`` the last
    lines of the failing worker's log. ``str()`` is all three."""

    def __init__(self, reason: str, logs: list[str], tail: str):
        self.reason, self.logs, self.tail = reason, logs, tail
        where = f"; log: {', '.join(logs)}" if logs else ""
        super().__init__(f"{reason}{where}\n--- last lines of its log ---\n{tail}")


def describe_exit(code: int) -> str:
    """``killed by SIGSEGV`` for a negative exit code, ``exited with status N`` otherwise."""
    return f"killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"


def log_tail(path: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a local log file (empty if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def restart_on_signal(restarts: int):
    """The default policy of :func:`_launch`: a worker killed by a signal (a segfault, an abort on
    heap corruption, the OOM killer) is started again, ``restarts`` times in all; any other
    non-zero exit fails the run."""
    budget = [restarts]

    def decide(index: int, env: dict[str, str], code: int, tail: str) -> str | None:
        if code >= 0 or budget[0] <= 0:
            return None
        budget[0] -= 1
        return f"worker {index} was {describe_exit(code)}; started again"

    return decide


def _launch(
    kind: str,
    spec_json: str,
    envs: list[dict[str, str]],
    threads: int,
    timeout: float,
    log_dir: str | None,
    restarts: int = 0,
    stream: bool = False,
    on_exit=None,
) -> list[str]:
    """Runs one worker process per ``envs`` entry and waits for all of them.

    When a worker ends with a non-zero status, ``on_exit(index, env, code, log_tail)`` decides: a
    note (the worker is started again with the same environment) or None (the run fails with a
    :class:`WorkerError`). The default, :func:`restart_on_signal`, restarts a worker killed by a
    signal up to ``restarts`` times in all. The notes are returned. The spec file and the
    workers' logs live in a temporary directory that is removed when the workers end, whether they
    succeed or fail; ``log_dir`` (any tf.io.gfile URI) keeps a copy of each ``worker-<i>.log``.
    ``stream`` also copies the workers' output to this process's stdout as it comes (progress).
    """
    on_exit = on_exit or restart_on_signal(restarts)
    with tempfile.TemporaryDirectory(prefix=f"cvpipe-{kind}-") as workdir:
        spec_path = os.path.join(workdir, "spec.json")
        with open(spec_path, "w") as f:
            f.write(spec_json)
        workers: list[_Worker] = []
        notes: list[str] = []
        try:
            for index, extra in enumerate(envs):
                env = dict(os.environ, TF_USE_LEGACY_KERAS="1", CVPIPE_THREADS=str(threads), **extra)
                log = open(os.path.join(workdir, f"worker-{index}.log"), "w")
                workers.append(_Worker(index, env, log, _start(kind, spec_path, env, log, stream)))
            failed, culprit = _wait(
                workers, timeout, on_exit, lambda w: _start(kind, spec_path, w.env, w.log, stream), notes
            )
        finally:
            for worker in workers:
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()
                for copier in _COPIERS.pop(worker.process.pid, []):
                    copier.join(timeout=10)
                worker.log.close()
        codes = [w.process.returncode for w in workers]
        logs = [os.path.join(workdir, f"worker-{w.index}.log") for w in workers]
        kept = [f"{log_dir.rstrip('/')}/{os.path.basename(path)}" for path in logs] if log_dir else []
        error = None
        if failed or any(codes):
            if culprit is None:  # Timed out: the first worker that had not finished.
                culprit = next((i for i, code in enumerate(codes) if code), 0)
            reason = f"{kind} {failed or f'worker {culprit} {describe_exit(codes[culprit])}'}"
            if notes:
                reason += f" (after: {'; '.join(notes)})"
            error = WorkerError(reason, kept[culprit : culprit + 1], log_tail(logs[culprit]))
        if log_dir:
            try:
                _keep_logs(logs, log_dir)
            except Exception:
                if error is None:
                    raise  # Otherwise the workers' failure is the error to report.
                error.logs = []
        if error is not None:
            raise error
        return notes


@dataclasses.dataclass
class _Worker:
    index: int
    env: dict[str, str]
    log: Any
    process: subprocess.Popen


_COPIERS: dict[int, list[threading.Thread]] = {}  # Worker pid -> the thread copying its output.


def _start(kind: str, spec_path: str, env: dict[str, str], log, stream: bool = False) -> subprocess.Popen:
    command = [sys.executable, "-m", "components.image_model.workers", kind, spec_path]
    process = _STANDBY.take(env) if _STANDBY is not None else None
    if process is not None:
        # Already imported; it reads its work and the variables read at run time on stdin.
        process.stdin.write(json.dumps({"argv": command[3:], "env": env}) + "\n")
        process.stdin.close()
    elif not stream:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    else:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    copier = threading.Thread(target=_copy_lines, args=(process.stdout, log, stream), daemon=True)
    copier.start()
    _COPIERS.setdefault(process.pid, []).append(copier)
    return process


def _copy_lines(source, log, echo: bool = True) -> None:
    """Each line of a worker's output into its log and, with ``echo``, onto this process's stdout."""
    for line in source:
        log.write(line)
        log.flush()
        if echo:
            sys.stdout.write(line)
            sys.stdout.flush()


# Read when the work starts, not when TensorFlow is imported: a standby worker takes new values.
RUNTIME_VARIABLES = frozenset(
    {"CVPIPE_THREADS", "TF_CONFIG", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"}
)


class Standby:
    """Worker processes started ahead of their work, each importing TensorFlow and cvpipe's model
    code (4-6 s of CPU) and then waiting on stdin for a worker's command line and environment.

    The local runner starts them when ImageExampleGen starts: ingestion and statistics run in the
    runner's process on one core, so the imports take the idle one instead of delaying the Tuner's
    workers and the Trainer's process at their start. ``_start`` takes one instead of a new process
    when no variable read at import changed since it started (:meth:`take`). Unused ones are ended
    by :meth:`stop`.
    """

    def __init__(self, count: int):
        self.count = count
        self._processes: list[tuple[subprocess.Popen, dict[str, str]]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            while len(self._processes) < self.count:
                env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
                command = [sys.executable, "-m", "components.image_model.workers", "standby"]
                process = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                )
                self._processes.append((process, env))
            self.count = 0

    def take(self, env: dict[str, str]) -> subprocess.Popen | None:
        """A waiting process whose imports saw ``env``, or None. A variable it started with must
        still have its value, except the RUNTIME_VARIABLES. Variables set since are handed over:
        the runner's own imports set some (KMP_* when keras-tuner is imported), which the worker's
        imports set too; but not TensorFlow's TF_* settings, read at import."""
        with self._lock:
            for index, (process, spawned_with) in enumerate(self._processes):
                changed = {k for k, v in spawned_with.items() if env.get(k) != v}
                changed |= {k for k in env.keys() - spawned_with.keys() if k.startswith("TF_")}
                changed -= RUNTIME_VARIABLES
                if process.poll() is None and not changed:
                    del self._processes[index]
                    return process
                if changed:
                    logging.info("cvpipe: not a standby worker: %s changed since it started", sorted(changed))
        return None

    def stop(self) -> None:
        with self._lock:
            processes, self._processes, self.count = self._processes, [], 0
        for process, _ in processes:
            # Unused: it has written nothing and holds nothing, so it need not finish its imports.
            process.kill()
            process.wait()
            process.stdin.close()
            process.stdout.close()


_STANDBY: Standby | None = None


def use_standby(standby: Standby | None) -> None:
    """Makes ``standby`` the processes that workers started from this process come from."""
    global _STANDBY
    _STANDBY = standby


def _wait(
    workers: list[_Worker], timeout: float, on_exit, restart, notes: list[str]
) -> tuple[str | None, int | None]:
    """Waits until every worker exits, starting again those ``on_exit`` gives a note for. Returns
    the reason to stop early ("timed out"; None when a worker failed: its exit status tells) and
    the index of the worker that failed, if one did (the others are then killed by the caller)."""
    deadline = time.time() + timeout
    while True:
        for worker in workers:
            code = worker.process.poll()
            if code in (None, 0):
                continue
            for copier in _COPIERS.pop(worker.process.pid, []):
                copier.join(timeout=10)  # Its last lines into the log before the log is read.
            worker.log.flush()
            note = on_exit(worker.index, worker.env, code, log_tail(worker.log.name))
            if note is None:
                return None, worker.index
            notes.append(note)
            worker.log.write(f"\n[cvpipe] {note}\n")
            worker.log.flush()
            logging.warning("cvpipe: %s", note)
            worker.process = restart(worker)
        if all(w.process.poll() == 0 for w in workers):
            return None, None
        if time.time() > deadline:
            return "timed out", None
        time.sleep(0.5)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _keep_logs(paths: list[str], log_dir: str) -> None:
    import tensorflow as tf

    tf.io.gfile.makedirs(log_dir)
    for path in paths:
        tf.io.gfile.copy(path, f"{log_dir.rstrip('/')}/{os.path.basename(path)}", overwrite=True)


def run_training_workers(
    spec_json: str, workers: int, timeout: float = 3600, log_dir: str | None = None, kind: str = "train"
) -> None:
    """Runs ``workers`` MultiWorkerMirroredStrategy processes on 127.0.0.1 (logs copied to log_dir)."""
    ports = [free_port() for _ in range(workers)]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    envs = [
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        for i in range(workers)
    ]
    threads = max(1, (os.cpu_count() or 1) // workers)
    _launch(kind, spec_json, envs, threads, timeout, log_dir)


def run_training_process(
    spec_json: str, log_dir: str | None = None, restarts: int = 1, kind: str = "train"
) -> list[str]:
    """Trains a ``single``/``mirrored`` model in one fresh process with every core, its output
    streamed here. Killed by a signal, it is started again ``restarts`` times and resumes from its
    last completed epoch (BackupAndRestore); returns the notes on restarts. ``kind``: ``train``
    (a TrainSpec, the classifier) or ``detect`` (a DetectionTrainSpec)."""
    return _launch(
        kind, spec_json, [{}], os.cpu_count() or 1, float("inf"), log_dir, restarts=restarts, stream=True
    )


def run_tuning_workers(
    spec_json: str,
    workers: int,
    oracle_port: int,
    timeout: float = 3600,
    log_dir: str | None = None,
    restarts: int = 2,
    on_exit=None,
) -> list[str]:
    """Runs ``workers`` keras-tuner workers against the oracle served on 127.0.0.1:oracle_port.

    A worker that dies is started again under the same tuner id as ``on_exit`` decides (see
    :func:`_launch`; by default one killed by a signal, ``restarts`` times in all); keras-tuner's
    oracle hands a returning tuner id its unfinished trial, if it has one, else a new one. Returns
    the notes on restarts (empty when none was needed).
    """
    envs = [
        {
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(oracle_port),
            "KERASTUNER_TUNER_ID": f"tuner{i}",
        }
        for i in range(workers)
    ]
    threads = max(1, (os.cpu_count() or 1) // workers)
    return _launch("tune", spec_json, envs, threads, timeout, log_dir, restarts=restarts, on_exit=on_exit)


def _limit_threads() -> None:
    import tensorflow as tf

    threads = int(os.environ.get("CVPIPE_THREADS", "0"))
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _wait_for_work() -> list[str]:
    """A standby worker: imports what any worker kind needs, then reads its command line and
    environment from stdin; an empty stdin (its runner ended or died without needing it) ends it."""
    import tensorflow  # noqa: F401
    import tf_keras  # noqa: F401

    import components.image_model.detector.training  # noqa: F401
    import components.image_model.training  # noqa: F401
    import components.image_model.tuning  # noqa: F401

    line = sys.stdin.readline()
    if not line:
        return []
    work = json.loads(line)
    os.environ.update(work["env"])
    return work["argv"]


def main(argv: list[str]) -> int:
    if argv == ["standby"]:
        argv = _wait_for_work()
        if not argv:
            return 0
    kind, spec_path = argv
    with open(spec_path) as f:
        spec_json = f.read()
    _limit_threads()
    if kind == "train":
        from components.image_model.training import TrainSpec, train

        spec = TrainSpec.from_json(spec_json)
        # One process trains alone (run_training_process): its TensorBoard logs go to model_run.
        train(spec, log_dir=spec.model_run_dir if "TF_CONFIG" not in os.environ else None)
    elif kind == "detect":
        from components.image_model.detector.training import DetectionTrainSpec
        from components.image_model.detector.training import train as train_detector

        spec = DetectionTrainSpec.from_json(spec_json)
        train_detector(spec, log_dir=spec.model_run_dir if "TF_CONFIG" not in os.environ else None)
    elif kind == "tune":
        from components.image_model.tuning import TuneSpec, run_worker

        run_worker(TuneSpec.from_json(spec_json))
    else:
        raise SystemExit(f"unknown worker kind {kind!r}")
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Everything the worker writes is closed by now; skip the interpreter's teardown, where
    # TensorFlow, tf.data and gRPC threads took 2-6 s per worker (an error above exits normally).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
