"""Validation report size and render time: 10,000 images against 1,000, in one run.

Each dataset has 40 classes (shape images spread over class folders) and 5% truncated files, so
every section is populated: thumbnails for every class, the quarantine table, feature statistics.
The data half of the pipeline (ingest, statistics, schema, TFDV, checks, report) runs on each.
Target: the 10,000-image report under 5 MB; the ratio to the 1,000-image report shows how the
size grows with the data (capped tables and thumbnails keep it near 1).

    .venv/bin/python bench/report.py --large 10000 --small 1000
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.config import load_config  # noqa: E402
from pipelines.runner import run_pipeline  # noqa: E402
from pipelines.sample_data import write_sample_data  # noqa: E402

CLASSES = 40


def make_dataset(root: str, count: int) -> None:
    """``count`` images over about CLASSES class folders, plus 5% truncated copies (quarantined)."""
    staging = os.path.join(root, "staging")
    write_sample_data(staging, kind="shapes", count=count)
    moved = []
    for i, path in enumerate(sorted(glob.glob(os.path.join(staging, "*", "*.jpg")))):
        label = f"{os.path.basename(os.path.dirname(path))}_{i % (CLASSES // 3):02d}"
        os.makedirs(os.path.join(root, "images", label), exist_ok=True)
        moved.append(shutil.move(path, os.path.join(root, "images", label, os.path.basename(path))))
    for i, path in enumerate(moved[: count // 20]):
        with open(path, "rb") as f:
            head = f.read(600)
        with open(os.path.join(os.path.dirname(path), f"cut_{i}.jpg"), "wb") as f:
            f.write(head)
    shutil.rmtree(staging)


def measure(count: int, work: str) -> tuple[int, float, float, int]:
    root = os.path.join(work, str(count))
    make_dataset(root, count)
    config = load_config(
        None, {"input": {"images": os.path.join(root, "images")}, "validation": {"gate": "warn"}}
    )
    lines = []
    started = time.perf_counter()
    result = run_pipeline(config, os.path.join(root, "run"), echo=lines.append, train=False)
    total = time.perf_counter() - started
    report = os.path.join(result.outputs["ValidationReport"]["report"][0], "index.html")
    render = next(
        float(line.split()[-1].rstrip("s")) for line in lines if "< ValidationReport finished" in line
    )
    classes = len(os.listdir(os.path.join(root, "images")))
    return os.path.getsize(report), render, total, classes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = {n: measure(n, work) for n in (args.small, args.large)}
    for n, (size, render, total, classes) in results.items():
        print(
            f"{n:6d} images, {classes} classes: report {size / 1e6:.2f} MB, rendered in {render:.1f}s "
            f"(data half of the pipeline {total:.0f}s)"
        )
    large, small = results[args.large][0], results[args.small][0]
    print(f"report size {args.large} / {args.small} images = {large / small:.2f}")
    print(
        f"{args.large}-image report: {large / 1e6:.2f} MB (target < 5 MB): "
        f"{'met' if large < 5e6 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
