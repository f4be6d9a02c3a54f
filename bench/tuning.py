"""Tuning throughput: trials per hour with N parallel trial workers versus one, in one run.

Both searches run the same number of trials (same search space and seed) on the same ingested
sample data, through the same path: the oracle is served from this process and trials run in
worker processes; one worker gets every core, N workers get cores/N threads each.

    .venv/bin/python bench/tuning.py --workers 2 --trials 6
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._data import ingested_shapes  # noqa: E402
from components.image_model.tuning import TuneSpec, make_tuner, parallel_search  # noqa: E402


def search(spec: TuneSpec) -> tuple[float, int]:
    """Both cases run through the same worker path (oracle here, trials in worker processes)."""
    tuner = make_tuner(spec, overwrite=True)
    started = time.perf_counter()
    parallel_search(tuner, spec)
    seconds = time.perf_counter() - started
    done = sum(1 for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    return seconds, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cvpipe-bench"))
    args = parser.parse_args()

    examples, labels = ingested_shapes(args.workdir, args.count)
    results = {}
    for workers in (1, args.workers):
        spec = TuneSpec(
            train_patterns=[f"{examples}/Split-train/*"],
            eval_patterns=[f"{examples}/Split-eval/*"],
            labels=labels,
            directory=tempfile.mkdtemp(prefix="cvpipe-tune-bench-"),
            image_size=64,
            max_trials=args.trials,
            parallel_trials=workers,
            epochs=args.epochs,
            search_space={"width": [12, 16, 24], "depth": [1, 2], "learning_rate": [0.001, 0.002, 0.004]},
        )
        print(f"searching {args.trials} trials with {workers} worker(s) ...", flush=True)
        results[workers] = search(spec)

    print(f"\n{args.trials} trials x {args.epochs} epochs on {args.count} images, {os.cpu_count()} cores")
    print(f"{'':22}{'seconds':>10}{'trials':>8}{'trials/hour':>13}")
    for workers, (seconds, done) in results.items():
        print(f"{f'{workers} worker(s)':22}{seconds:>10.1f}{done:>8}{done * 3600 / seconds:>13.0f}")
    (s1, d1), (sn, dn) = results[1], results[args.workers]
    print(f"ratio ({args.workers} workers / 1): {(dn / sn) / (d1 / s1):.2f}  (target >= 1.4)")


if __name__ == "__main__":
    main()
