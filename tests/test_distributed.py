"""Multi-worker training, resuming a killed training run, and parallel tuning trials.

Each test runs with its own system temp dir (TMPDIR, inherited by the workers) that must hold
nothing of cvpipe's afterwards, and checks that nothing was written outside its output directory.
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from components.image_model import workers
from components.image_model.training import TrainSpec
from components.image_model.tuning import TuneSpec, make_tuner
from components.image_model.workers import run_training_workers

pytestmark = pytest.mark.slow


AUTOGRAPH = re.compile(r"__autograph_generated_file\w+\.py")


def _files(root) -> set[str]:
    return {os.path.join(d, name) for d, dirs, files in os.walk(root) for name in dirs + files}


@pytest.fixture(autouse=True)
def no_stray_files(shapes_examples, tmp_path, monkeypatch):
    """Fails the test if it leaves anything in the system temp dir or next to its inputs."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    inputs_root = os.path.dirname(shapes_examples[0])
    inputs = _files(inputs_root)
    yield
    # TensorFlow's AutoGraph writes its generated source there and removes it when the process
    # exits (not when SIGKILLed): the only files allowed. No directories at all.
    left = [name for name in os.listdir(system_tmp) if not AUTOGRAPH.fullmatch(name)]
    assert left == [], "left in the system temp dir"
    assert _files(inputs_root) == inputs, "written next to the inputs"


def spec_for(examples_dir, labels, tmp_path, **overrides):
    values = dict(
        train_patterns=[f"{examples_dir}/Split-train/*"],
        eval_patterns=[f"{examples_dir}/Split-eval/*"],
        test_patterns=[f"{examples_dir}/Split-test/*"],
        labels=labels,
        serving_model_dir=str(tmp_path / "serving"),
        model_run_dir=str(tmp_path / "run"),
        backup_dir=str(tmp_path / "backup"),
        image_size=32,
        epochs=6,
        batch_size=16,
        hyperparameters={"width": 8, "depth": 1, "learning_rate": 0.004},
    )
    values.update(overrides)
    return TrainSpec(**values)


def test_two_local_workers_end_with_identical_weights_and_single_worker_accuracy(shapes_examples, tmp_path):
    examples_dir, labels, _ = shapes_examples
    single = spec_for(examples_dir, labels, tmp_path / "single", weights_dump_dir=str(tmp_path / "w1"))
    run_training_workers(single.to_json(), 1)
    multi = spec_for(
        examples_dir,
        labels,
        tmp_path / "multi",
        strategy="multi_worker",
        batch_size=8,
        weights_dump_dir=str(tmp_path / "w2"),
    )
    run_training_workers(multi.to_json(), 2, log_dir=str(tmp_path / "multi" / "run"))

    w0, w1 = (np.load(str(tmp_path / "w2" / f"worker-{i}.npz")) for i in (0, 1))
    assert len(w0.files) == len(w1.files) > 10
    for name in w0.files:
        np.testing.assert_array_equal(w0[name], w1[name])
    assert os.path.exists(tmp_path / "multi" / "serving" / "saved_model.pb")
    single_acc = json.load(open(tmp_path / "single" / "run" / "metrics.json"))["test_accuracy"]
    multi_metrics = json.load(open(tmp_path / "multi" / "run" / "metrics.json"))
    assert multi_metrics["replicas"] == 2
    assert single_acc >= 0.9
    assert abs(multi_metrics["test_accuracy"] - single_acc) <= 0.01 + 1 / 24  # One test image of slack.
    assert {"worker-0.log", "worker-1.log"} <= set(os.listdir(tmp_path / "multi" / "run"))
    assert sorted(os.listdir(tmp_path)) == ["multi", "single", "system-tmp", "w1", "w2"]


def test_killed_training_resumes_from_its_last_epoch(shapes_examples, tmp_path):
    examples_dir, labels, _ = shapes_examples
    spec = spec_for(examples_dir, labels, tmp_path, epochs=8)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.to_json())
    command = [sys.executable, "-m", "components.image_model.workers", "train", str(spec_path)]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and not glob.glob(
        str(tmp_path / "backup" / "**" / "*.index"), recursive=True
    ):
        assert first.poll() is None, first.stdout.read().decode()[-2000:]
        time.sleep(0.2)
    time.sleep(1.0)
    first.kill()
    first.wait()
    assert not os.path.exists(tmp_path / "serving" / "saved_model.pb")

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    log = second.stdout + second.stderr
    assert "Epoch 8/8" in log and "Epoch 1/8" not in log  # Resumed, not restarted.
    assert os.path.exists(tmp_path / "serving" / "saved_model.pb")
    assert not os.path.exists(tmp_path / "backup")  # Cleared once training completed.
    assert sorted(os.listdir(tmp_path)) == ["run", "serving", "spec.json", "system-tmp"]


def test_a_standby_worker_takes_the_work_and_the_unused_ones_end(shapes_examples, tmp_path):
    """The runner's standby processes import ahead; one trains, the other ends with the run."""
    examples_dir, labels, _ = shapes_examples
    spec = spec_for(examples_dir, labels, tmp_path, epochs=2)
    standby = workers.Standby(2)
    workers.use_standby(standby)
    try:
        standby.start()
        waiting = [process for process, _ in standby._processes]
        # TensorFlow reads TF_* settings at import: a standby that started without this one is
        # not taken for the work that has it, while the runtime variables are handed over. (A
        # variable no caller sets, so the test does not depend on the caller's TF_* settings.)
        assert "TF_CVPIPE_TEST_SETTING" not in os.environ
        assert standby.take(dict(os.environ, CVPIPE_THREADS="1", TF_CVPIPE_TEST_SETTING="0")) is None
        # ... and one the standby started with must keep its value.
        assert standby.take(dict(os.environ, TF_USE_LEGACY_KERAS="0")) is None
        workers.run_training_process(spec.to_json(), log_dir=str(tmp_path / "logs"))
        spare = [process for process, _ in standby._processes]
    finally:
        workers.use_standby(None)
        standby.stop()
    assert len(spare) == 1 and spare[0] in waiting  # The other one trained.
    assert sorted(p.returncode for p in waiting) == [-9, 0]  # The worker finished, the spare was ended.
    log = (tmp_path / "logs" / "worker-0.log").read_text()
    assert "Epoch 2/2" in log
    assert os.path.exists(tmp_path / "serving" / "saved_model.pb")
    assert sorted(os.listdir(tmp_path)) == ["logs", "run", "serving", "system-tmp"]


def test_parallel_trials_share_one_oracle(shapes_examples, tmp_path):
    examples_dir, labels, _ = shapes_examples
    spec = TuneSpec(
        train_patterns=[f"{examples_dir}/Split-train/*"],
        eval_patterns=[f"{examples_dir}/Split-eval/*"],
        labels=labels,
        directory=str(tmp_path / "tuning"),
        image_size=32,
        max_trials=4,
        parallel_trials=2,
        epochs=1,
        steps_per_epoch=3,
        search_space={"width": [8, 12], "depth": [1], "learning_rate": [0.001, 0.004]},
    )
    tuner = make_tuner(spec, overwrite=True)
    tuner.search()
    trials = tuner.oracle.trials.values()
    assert len(trials) == 4
    assert {t.status for t in trials} == {"COMPLETED"}
    assert {"width", "learning_rate"} <= set(tuner.get_best_hyperparameters(1)[0].values)
    # Both workers ran trials: the oracle noted the worker of every trial.
    assert set(tuner.trial_tuners) == {t.trial_id for t in trials}
    assert set(tuner.trial_tuners.values()) == {"tuner0", "tuner1"}
    project = tmp_path / "tuning" / "cvpipe_tuning"
    assert json.loads((project / "trial_tuners.json").read_text()) == tuner.trial_tuners
    assert sorted(os.listdir(project / "workers")) == ["worker-0.log", "worker-1.log"]
    assert sorted(os.listdir(tmp_path)) == ["system-tmp", "tuning"]


def test_killed_tuning_worker_is_started_again_and_its_trial_rerun(shapes_examples, tmp_path, monkeypatch):
    """A tuning worker that dies from a signal (as a heap corruption would end it) costs a restart,
    not the search: keras-tuner's oracle hands the returning tuner id its unfinished trial."""
    import signal
    import threading

    from components.image_model import tuner as tuner_component
    from components.image_model import workers

    examples_dir, labels, _ = shapes_examples
    spec = TuneSpec(
        train_patterns=[f"{examples_dir}/Split-train/*"],
        eval_patterns=[f"{examples_dir}/Split-eval/*"],
        labels=labels,
        directory=str(tmp_path / "tuning"),
        image_size=32,
        max_trials=2,
        parallel_trials=1,
        epochs=2,
        steps_per_epoch=3,
        search_space={"width": [8, 12], "depth": [1]},
    )
    started, killed = [], []
    real_start = workers._start

    def start(kind, spec_path, env, log, stream=False):
        process = real_start(kind, spec_path, env, log, stream)
        started.append((process, log.name))
        return process

    def kill_first_worker_mid_trial():
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            if started:
                process, log_path = started[0]
                with open(log_path) as f:
                    if "Epoch 1/" in f.read():  # Inside its first trial.
                        process.send_signal(signal.SIGSEGV)
                        killed.append(process.pid)
            time.sleep(0.2)

    monkeypatch.setattr(workers, "_start", start)
    killer = threading.Thread(target=kill_first_worker_mid_trial, daemon=True)
    killer.start()
    tuner = make_tuner(spec, overwrite=True)
    tuner.search()
    killer.join(timeout=5)

    assert killed, "the worker was never seen inside a trial"
    assert len(started) == 2  # The killed worker and its replacement.
    note = "worker 0 was killed by SIGSEGV in trial 0; started again on the same trial"
    assert tuner.worker_restarts == [note]
    trials = tuner.oracle.trials.values()
    assert len(trials) == 2 and {t.status for t in trials} == {"COMPLETED"}
    records = tuner_component.trial_records(tuner)
    assert all(r["images_per_second"] > 0 and r["first_epoch_images_per_second"] > 0 for r in records)
    log = (tmp_path / "tuning" / "cvpipe_tuning" / "workers" / "worker-0.log").read_text()
    assert f"[cvpipe] {note}" in log


# Started in every tuning worker (PYTHONPATH): a trial of width 12 kills its worker with SIGSEGV
# when its fit starts, as the oneDNN heap corruption did, every time it is run.
_CRASHING_WIDTH = """
import os
import signal

if os.environ.get("KERASTUNER_TUNER_ID"):
    from components.image_model import speed

    real = speed.Throughput.on_train_begin

    def on_train_begin(self, logs=None):
        if self.model.get_layer("stem_conv").filters == 12:
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(self, logs)

    speed.Throughput.on_train_begin = on_train_begin
"""


def crashing_search(examples_dir, labels, tmp_path, monkeypatch, widths, max_trials):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_CRASHING_WIDTH)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.setenv("PYTHONPATH", f"{hooks}{os.pathsep}{root}")
    spec = TuneSpec(
        train_patterns=[f"{examples_dir}/Split-train/*"],
        eval_patterns=[f"{examples_dir}/Split-eval/*"],
        labels=labels,
        directory=str(tmp_path / "tuning"),
        image_size=32,
        max_trials=max_trials,
        parallel_trials=1,
        epochs=1,
        steps_per_epoch=2,
        search_space={"width": widths, "depth": [1], "learning_rate": [0.001, 0.004]},
    )
    return make_tuner(spec, overwrite=True)


def test_a_trial_whose_worker_dies_twice_is_a_failed_trial_and_the_search_goes_on(
    shapes_examples, tmp_path, monkeypatch
):
    from components.image_model import tuner as tuner_component

    examples_dir, labels, _ = shapes_examples
    tuner = crashing_search(examples_dir, labels, tmp_path, monkeypatch, widths=[8, 12], max_trials=4)
    tuner.search()

    records = tuner_component.trial_records(tuner)
    by_width = {}
    for record in records:
        by_width.setdefault(record["hyperparameters"]["width"], []).append(record)
    assert {r["status"] for r in by_width[8]} == {"COMPLETED"} and len(by_width[8]) == 2
    assert {r["status"] for r in by_width[12]} == {"FAILED"} and len(by_width[12]) == 2
    for record in by_width[12]:
        assert "killed by SIGSEGV 2 times" in record["reason"] and "'width': 12" in record["reason"]
    failed_ids = sorted(r["trial_id"] for r in by_width[12])
    notes = [n for n in tuner.worker_restarts if n.startswith("trial ")]
    assert sorted(n.split()[1] for n in notes) == failed_ids
    assert len(tuner.worker_restarts) == 4  # Two deaths per failed trial, each followed by a restart.
    assert tuner.get_best_hyperparameters(1)[0].values["width"] == 8
    assert sorted(os.listdir(tmp_path)) == ["hooks", "system-tmp", "tuning"]


def test_a_search_where_no_trial_completes_fails_naming_each_trial_and_why(
    shapes_examples, tmp_path, monkeypatch
):
    examples_dir, labels, _ = shapes_examples
    tuner = crashing_search(examples_dir, labels, tmp_path, monkeypatch, widths=[12], max_trials=2)
    with pytest.raises(RuntimeError, match=r"no trial completed \(2 failed\)") as raised:
        tuner.search()
    assert str(raised.value).count("killed by SIGSEGV 2 times") == 2


def test_a_training_process_that_dies_after_its_restart_fails_naming_signal_settings_and_log(
    shapes_examples, tmp_path, monkeypatch
):
    from components.image_model import trainer_module

    examples_dir, labels, _ = shapes_examples
    spec = spec_for(examples_dir, labels, tmp_path, epochs=2)
    crash = [sys.executable, "-c", "import os, signal; print('about to crash', flush=True); os.abort()"]

    def start(kind, spec_path, env, log, stream=False):  # Every start of the process aborts.
        return subprocess.Popen(crash, env=env, stdout=log, stderr=subprocess.STDOUT)

    monkeypatch.setattr(workers, "_start", start)
    with pytest.raises(workers.WorkerError) as raised:
        workers.run_training_process(spec.to_json(), log_dir=str(tmp_path / "logs"))
    error = raised.value
    assert error.reason == (
        "train worker 0 killed by SIGABRT (after: worker 0 was killed by SIGABRT; started again)"
    )
    assert error.logs == [f"{tmp_path / 'logs'}/worker-0.log"] and os.path.exists(error.logs[0])
    assert "about to crash" in error.tail
    message = trainer_module.training_failure(error, spec, "classification")
    assert message.startswith("Trainer: the training process failed: train worker 0 killed by SIGABRT")
    assert "hyperparameters" in message and "image_size 32" in message and error.logs[0] in message
