"""The detection pipeline end to end on sample scenes: generate, ingest, train, export, evaluate.

1. ``cvpipe sample-data --kind scenes`` writes N scenes (seed 0) and a held-out set (seed 1) of
   scenes the model never sees; ``cvpipe ingest`` (a subprocess, ``task: detection``) ingests both.
2. ``detector.training.train`` on the train split (validation on eval), export to a SavedModel.
3. COCO mAP@0.5 and mAP@[.5:.95] of the SavedModel (pycocotools) on every held-out scene, and on
   the test split of the training scenes.

Targets: held-out mAP@0.5 >= 0.90 and mAP@[.5:.95] >= 0.60; the whole run on 1,000 scenes
within 10 minutes on 2 cores. Prints the wall time of each phase.

    .venv/bin/python bench/detection.py
    .venv/bin/python bench/detection.py --count 1000 --epochs 30 --hyperparameters '{"width": 16}'
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
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIG = "task: detection\nvalidation:\n  schema: schemas/detection_schema.pbtxt\n"


def cvpipe(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": ROOT}
    subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def scenes(workdir: str, name: str, count: int, seed: int) -> str:
    """Writes and ingests ``count`` scenes; returns the examples directory."""
    images, output = os.path.join(workdir, f"{name}-images"), os.path.join(workdir, name)
    config = os.path.join(workdir, "detection.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)
    cvpipe("sample-data", images, "--kind", "scenes", "--count", str(count), "--seed", str(seed))
    cvpipe("ingest", "--images", images, "--output", output, "--config", config)
    return os.path.join(output, "examples")


def directory_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def edge_variants(serving_dir: str, examples: str, held_out: str) -> dict:
    """float32 and int8 TFLite scored against the SavedModel on the held-out scenes: the
    TFLiteExporter's own conversion and parity check (components/tflite_exporter/detection.py)."""
    from components.tflite_exporter import detection

    representative = detection.representative_images(
        serving_dir, [os.path.join(examples, "Split-train", "*.gz")], 300
    )
    models = detection.convert_variants(serving_dir, ["float32", "int8"], representative)
    return detection.check_parity(
        serving_dir, models, [os.path.join(held_out, "Split-*", "*.gz")], max_map_drop=0.02
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--held-out", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=None, help="default: DetectionTrainSpec's")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hyperparameters", default="{}", help="JSON: DetectorParams fields")
    parser.add_argument("--workdir", default=None, help="default: a new temporary directory")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="cvpipe-bench-detection-")
    os.makedirs(workdir, exist_ok=True)
    times: dict[str, float] = {}

    started = time.monotonic()
    examples = scenes(workdir, "train", args.count, seed=0)
    times["generate+ingest"] = time.monotonic() - started
    held_out = scenes(workdir, "held-out", args.held_out, seed=1)  # Not timed: evaluation only.

    from components.image_model.detector import evaluation
    from components.image_model.detector.training import DetectionTrainSpec, train

    with open(os.path.join(examples, "labels.txt")) as f:
        labels = f.read().split()
    spec = DetectionTrainSpec(
        train_patterns=[os.path.join(examples, "Split-train", "*.gz")],
        eval_patterns=[os.path.join(examples, "Split-eval", "*.gz")],
        test_patterns=[],  # Evaluated below, timed on its own.
        labels=labels,
        serving_model_dir=os.path.join(workdir, "serving"),
        model_run_dir=os.path.join(workdir, "model_run"),
        backup_dir=os.path.join(workdir, "backup"),
        hyperparameters=json.loads(args.hyperparameters),
        batch_size=args.batch_size,
    )
    if args.epochs:
        spec.epochs = args.epochs
    started = time.monotonic()
    result = train(spec)
    times["train+export"] = time.monotonic() - started
    times["train (fit only)"] = result["train_seconds"]

    started = time.monotonic()
    test = evaluation.evaluate_saved_model(
        spec.serving_model_dir, [os.path.join(examples, "Split-test", "*.gz")]
    )
    times["evaluate (test split)"] = time.monotonic() - started
    held = evaluation.evaluate_saved_model(
        spec.serving_model_dir, [os.path.join(held_out, "Split-*", "*.gz")]
    )

    started = time.monotonic()
    edge = edge_variants(spec.serving_model_dir, examples, held_out)
    times["tflite (convert, not in total)"] = time.monotonic() - started

    pipeline = times["generate+ingest"] + times["train+export"] + times["evaluate (test split)"]
    report = {
        "count": args.count,
        "epochs": spec.epochs,
        "params": spec.model_params().to_dict(),
        "held_out": held,
        "test_split": test,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "pipeline_seconds": round(pipeline, 1),
        "saved_model_bytes": directory_size(spec.serving_model_dir),
        "tflite": edge,
        "workdir": workdir,
    }
    print(json.dumps(report, indent=2))
    print(
        f"held-out ({held['images']} scenes, {held['boxes']} boxes): "
        f"mAP@0.5 {held['map50']:.3f} (target 0.90), mAP@[.5:.95] {held['map']:.3f} (target 0.60)"
    )
    print(f"test split: mAP@0.5 {test['map50']:.3f}, mAP@[.5:.95] {test['map']:.3f}")
    saved_bytes = report["saved_model_bytes"]
    for figures in edge["variants"]:
        print(
            f"TFLite {figures['mode']} on the held-out scenes: mAP@0.5 {figures['map50']:.3f} "
            f"({-figures['map50_drop']:+.3f} against the SavedModel; int8 target within 0.02: "
            f"{'blessed' if figures['blessed'] else 'NOT blessed'}), mAP@[.5:.95] {figures['map']:.3f}, "
            f"{figures['size_bytes']} bytes = {figures['size_bytes'] / saved_bytes:.2f}x the SavedModel "
            "(int8 target <= 0.30)"
        )
    for phase, seconds in times.items():
        print(f"  {phase:24s} {seconds:7.1f} s")
    print(f"  {'pipeline total':24s} {pipeline:7.1f} s (target 600)")


if __name__ == "__main__":
    main()
