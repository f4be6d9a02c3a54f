"""ML Metadata caching: a rerun with unchanged inputs and config against the first run, in one run.

Runs the whole default pipeline (the `make demo` configuration) on generated shapes three times
in one output directory and prints each run's wall time, which nodes ran and which came from the
cache, and the ratio rerun / first run (target: at most 0.10).

Every node of a rerun is reused, the Evaluator included: its baseline (the served model) is looked
up by ServedModel, which only runs again when the examples change.

    .venv/bin/python bench/rerun.py --count 600
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.config import load_config  # noqa: E402
from pipelines.runner import run_pipeline  # noqa: E402
from pipelines.sample_data import write_sample_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        images = os.path.join(work, "images")
        write_sample_data(images, kind="shapes", count=args.count)
        config = load_config(None, {"input": {"images": images}})
        timings = []
        for i in range(args.runs):
            result = run_pipeline(config, os.path.join(work, "run"), echo=lambda _: None)
            ran = sorted(n for n, state in result.nodes.items() if state == "ran")
            cached = sorted(n for n, state in result.nodes.items() if state == "cached")
            timings.append(result.seconds)
            print(f"run {i + 1}: {result.seconds:7.1f}s  ran {len(ran)}: {', '.join(ran) or '-'}")
            print(f"{'':15}cached {len(cached)}")
        first = timings[0]
        for i, seconds in enumerate(timings[1:], start=2):
            print(f"run {i} / run 1 = {seconds / first:.3f} (target <= 0.10)")


if __name__ == "__main__":
    main()
