"""oneDNN stress: many consecutive keras-tuner trials in one process, with TensorFlow's defaults.

Each arm runs in its own process (so a crash is an exit status, not the end of this script) with
``TF_ENABLE_ONEDNN_OPTS=1``:

- ``fresh`` (what cvpipe does): every trial gets new tf.data input pipelines;
- ``shared`` (cvpipe before 2026-11-23): one pair of datasets for the whole search, so a trial
  that stops mid-epoch leaves the in-memory cache half-written for the next trial's iterator.

Prints each arm's exit status, trials completed and seconds. Target: ``fresh`` completes all trials.

    .venv/bin/python bench/onednn_stress.py --trials 30
    .venv/bin/python bench/onednn_stress.py --trials 30 --arms fresh shared
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_arm(arm: str, args: argparse.Namespace) -> dict:
    """One search of ``args.trials`` trials in a fresh process; its exit status and trial count."""
    directory = tempfile.mkdtemp(prefix=f"cvpipe-onednn-{arm}-")
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, __file__, "--child", arm, "--directory", directory]
    command += ["--trials", str(args.trials), "--epochs", str(args.epochs), "--count", str(args.count)]
    command += ["--workdir", args.workdir]
    log_path = os.path.join(directory, "search.log")
    started = time.perf_counter()
    with open(log_path, "w") as log:
        code = subprocess.call(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.perf_counter() - started
    done = 0
    trials_dir = os.path.join(directory, "stress")
    if os.path.isdir(trials_dir):
        for name in os.listdir(trials_dir):
            path = os.path.join(trials_dir, name, "trial.json")
            if name.startswith("trial_") and os.path.exists(path):
                with open(path) as f:
                    done += json.load(f).get("status") == "COMPLETED"
    return {"arm": arm, "exit": code, "completed": done, "seconds": seconds, "log": log_path}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, ROOT)
    import keras_tuner as kt

    from bench._data import ingested_shapes
    from components.image_model import tuning

    examples, labels = ingested_shapes(args.workdir, args.count)
    spec = tuning.TuneSpec(
        train_patterns=[f"{examples}/Split-train/*"],
        eval_patterns=[f"{examples}/Split-eval/*"],
        labels=labels,
        directory=args.directory,
        project_name="stress",
        image_size=64,
        max_trials=args.trials,
        epochs=args.epochs,
        # 3 * 2 * 3 * 2 = 36 >= 30 distinct trials, so random search does not stop early.
        search_space={
            "width": [12, 16, 24],
            "depth": [1, 2],
            "learning_rate": [0.001, 0.002, 0.004],
            "dropout": [0.1, 0.3],
        },
    )
    tuner = tuning.make_tuner(spec, overwrite=True)
    kwargs = tuning.fit_kwargs(spec)
    if args.child == "shared":
        # The behaviour before fresh datasets per trial: keras-tuner's own run_trial, one dataset pair.
        tuner.run_trial = super(type(tuner), tuner).run_trial  # Skips CvpipeTuner's fresh datasets.
    print(f"oneDNN: TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}", flush=True)
    super(type(tuner), tuner).search(**kwargs)  # In this process: no worker to restart.
    finished = [t for t in tuner.oracle.trials.values() if t.status == kt.engine.trial.TrialStatus.COMPLETED]
    print(f"completed {len(finished)} trials", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--arms", nargs="+", default=["fresh"], choices=["fresh", "shared"])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cvpipe-bench"))
    parser.add_argument("--child", choices=["fresh", "shared"], help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    print(f"{'arm':8} {'exit':>5} {'trials':>7} {'seconds':>8}")
    results = []
    for arm in args.arms:
        result = run_arm(arm, args)
        results.append(result)
        print(
            f"{arm:8} {result['exit']:>5} {result['completed']:>4}/{args.trials:<2} {result['seconds']:>8.1f}"
            f"   log: {result['log']}",
            flush=True,
        )
    ok = all(r["exit"] == 0 and r["completed"] == args.trials for r in results if r["arm"] == "fresh")
    print("target (fresh arm completes every trial with oneDNN on):", "met" if ok else "NOT met")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
