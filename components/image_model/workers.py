"""Local worker processes: multi-worker training and parallel tuning trials on 127.0.0.1.

    python -m components.image_model.workers train SPEC_FILE     # one worker; TF_CONFIG from env
    python -m components.image_model.workers tune SPEC_FILE      # one tuning worker

``run_training_workers(spec, n)`` starts N training workers with TF_CONFIG on free local ports and
waits for all of them; a failing worker fails the whole run with its log tail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(kind: str, spec_json: str, envs: list[dict[str, str]], threads: int, timeout: float):
    workdir = tempfile.mkdtemp(prefix=f"cvpipe-{kind}-")
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w") as f:
        f.write(spec_json)
    processes = []
    for index, extra in enumerate(envs):
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", CVPIPE_THREADS=str(threads), **extra)
        log = open(os.path.join(workdir, f"worker-{index}.log"), "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "components.image_model.workers", kind, spec_path],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append((process, log))
    deadline = time.time() + timeout
    failed = None
    try:
        while any(p.poll() is None for p, _ in processes):
            if time.time() > deadline:
                failed = "timed out"
                break
            if any(p.poll() not in (None, 0) for p, _ in processes):
                failed = "a worker failed"
                break
            time.sleep(0.5)
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    codes = [p.returncode for p, _ in processes]
    if failed or any(codes):
        tails = []
        for index in range(len(processes)):
            with open(os.path.join(workdir, f"worker-{index}.log")) as f:
                tails.append(f"--- worker {index} (exit {codes[index]}) ---\n" + f.read()[-3000:])
        raise RuntimeError(f"{kind} workers: {failed or 'non-zero exit'} {codes}\n" + "\n".join(tails))
    return workdir


def run_training_workers(spec_json: str, workers: int, timeout: float = 3600) -> str:
    """Runs ``workers`` MultiWorkerMirroredStrategy processes on 127.0.0.1; returns their log dir."""
    ports = [free_port() for _ in range(workers)]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    envs = [
        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        for i in range(workers)
    ]
    threads = max(1, (os.cpu_count() or 1) // workers)
    return _launch("train", spec_json, envs, threads, timeout)


def run_tuning_workers(spec_json: str, workers: int, oracle_port: int, timeout: float = 3600) -> str:
    """Runs ``workers`` keras-tuner workers against the oracle served on 127.0.0.1:oracle_port."""
    envs = [
        {
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(oracle_port),
            "KERASTUNER_TUNER_ID": f"tuner{i}",
        }
        for i in range(workers)
    ]
    threads = max(1, (os.cpu_count() or 1) // workers)
    return _launch("tune", spec_json, envs, threads, timeout)


def _limit_threads() -> None:
    import tensorflow as tf

    threads = int(os.environ.get("CVPIPE_THREADS", "0"))
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def main(argv: list[str]) -> int:
    kind, spec_path = argv
    with open(spec_path) as f:
        spec_json = f.read()
    _limit_threads()
    if kind == "train":
        from components.image_model.training import TrainSpec, train

        train(TrainSpec.from_json(spec_json))
    elif kind == "tune":
        from components.image_model.tuning import TuneSpec, run_worker

        run_worker(TuneSpec.from_json(spec_json))
    else:
        raise SystemExit(f"unknown worker kind {kind!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
