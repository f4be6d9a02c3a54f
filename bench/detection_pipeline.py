"""The whole detection pipeline, `cvpipe run` with `task: detection`, scored on scenes it never saw.

1. ``cvpipe sample-data --kind scenes`` writes N scenes (seed 0) for the run and a held-out set
   (seed 1), which ``cvpipe ingest`` turns into examples (not timed: scoring only).
2. ``cvpipe run`` on the N scenes with detection's default config (pipelines/configs/detection.yaml:
   tuning, training, TFMA's COCO evaluation, serving push, float32/int8 TFLite with the mAP gate,
   edge push), in a fresh process, timed as a whole and per component.
3. The pushed SavedModel and the pushed TFLite files scored with pycocotools on every held-out
   scene (components/tflite_exporter/detection.check_parity: the exporter's own scoring).

Targets (issue 12): the whole run on 1,000 scenes of 128x128 in <= 10 minutes on 2 cores;
held-out mAP@0.5 >= 0.90 and mAP@[.5:.95] >= 0.60; int8 within 2 points of the SavedModel's
mAP@0.5 at <= 0.30x its size.

    .venv/bin/python bench/detection_pipeline.py                  # 1,000 scenes, 300 held out
    .venv/bin/python bench/detection_pipeline.py --count 300 --config extra.yaml
"""

from __future__ import annotations

import argparse
import glob
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

from bench.demo import FINISHED  # noqa: E402 (after the path set-up)
from bench.detection import directory_size  # noqa: E402


def cvpipe(args: list[str], log_path: str) -> tuple[float, dict[str, float], str]:
    """Runs ``cvpipe ARGS`` in a fresh process; wall seconds, per-node seconds and its output."""
    env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    nodes: dict[str, float] = {}
    lines = []
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for line in process.stdout:
            log.write(line)
            lines.append(line)
            match = FINISHED.match(line)
            if match:
                nodes[match.group(1)] = float(match.group(3) or 0.0)
                print(f"    {line.strip()}", flush=True)
        code = process.wait()
    seconds = time.perf_counter() - started
    if code:
        raise SystemExit(f"cvpipe {args[0]} failed (exit {code}); log: {log_path}")
    return seconds, nodes, "".join(lines)


def print_results(
    nodes: dict[str, float],
    seconds: float,
    printed: str,
    held: dict,
    parity: dict,
    saved_bytes: int,
    *,
    what: str,
    target: str = "",
) -> None:
    """Seconds per component, the run's own summary lines, and the held-out mAP of each model."""
    print(f"\n{'component':22}{'seconds':>10}")
    for node, value in nodes.items():
        print(f"{node:22}{value:>10.1f}")
    print(f"{'whole command':22}{seconds:>10.1f}{target}")
    for line in printed.splitlines():
        if line.startswith(("Tuned:", "Test mAP", "Evaluation:", "TFLite ", "Edge model:", "Failed trial")):
            print(line)
    print(f"\nheld-out {what}: {held['images']} images, {held['boxes']} boxes (pycocotools)")
    print(f"{'model':16}{'mAP@0.5':>10}{'mAP':>10}{'size':>14}{'x SavedModel':>14}")
    print(f"{'SavedModel':16}{held['map50']:>10.4f}{held['map']:>10.4f}{saved_bytes:>14}{1.0:>14.2f}")
    for variant in parity["variants"]:
        print(
            f"{'TFLite ' + variant['mode']:16}{variant['map50']:>10.4f}{variant['map']:>10.4f}"
            f"{variant['size_bytes']:>14}{variant['size_bytes'] / saved_bytes:>14.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--held-out", type=int, default=300)
    parser.add_argument("--config", help="YAML merged over `task: detection` (default: none)")
    parser.add_argument("--workdir", default=None, help="default: a new temporary directory")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="cvpipe-bench-detection-pipeline-")
    os.makedirs(workdir, exist_ok=True)
    config = os.path.join(workdir, "detection.yaml")
    extra = open(args.config).read() if args.config else ""
    with open(config, "w") as f:
        f.write("task: detection\n" + extra)

    images, held_images = os.path.join(workdir, "scenes"), os.path.join(workdir, "held-out-scenes")
    held_out = os.path.join(workdir, "held-out")
    log = os.path.join(workdir, "{}.log")
    cvpipe(["sample-data", images, "--kind", "scenes", "--count", str(args.count)], log.format("sample"))
    cvpipe(
        ["sample-data", held_images, "--kind", "scenes", "--count", str(args.held_out), "--seed", "1"],
        log.format("sample-held-out"),
    )
    ingest = ["ingest", "--images", held_images, "--output", held_out, "--config", config]
    cvpipe(ingest, log.format("ingest"))

    out = os.path.join(workdir, "run")
    print(f"cvpipe run on {args.count} scenes -> {out}", flush=True)
    seconds, nodes, printed = cvpipe(
        ["run", "--images", images, "--output", out, "--config", config], log.format("run")
    )

    from components.image_model.detector import evaluation
    from components.tflite_exporter import detection

    (serving,) = glob.glob(os.path.join(out, "serving", "cvpipe", "[0-9]*"))
    (edge,) = glob.glob(os.path.join(out, "edge", "cvpipe", "[0-9]*"))
    patterns = [os.path.join(held_out, "examples", "Split-*", "*.gz")]
    held = evaluation.evaluate_saved_model(serving, patterns)
    models = {}
    for path in sorted(glob.glob(os.path.join(edge, "model_*.tflite"))):
        with open(path, "rb") as f:
            models[os.path.basename(path)[len("model_") : -len(".tflite")]] = f.read()
    parity = detection.check_parity(serving, models, patterns, max_map_drop=0.02)
    saved_bytes = directory_size(serving)

    print_results(
        nodes, seconds, printed, held, parity, saved_bytes, what="scenes", target="   (target <= 600)"
    )
    int8 = next((v for v in parity["variants"] if v["mode"] == "int8"), None)
    met = {
        "time <= 600 s": seconds <= 600,
        "mAP@0.5 >= 0.90": held["map50"] >= 0.90,
        "mAP@[.5:.95] >= 0.60": held["map"] >= 0.60,
    }
    if int8:
        met["int8 within 0.02 mAP@0.5"] = held["map50"] - int8["map50"] <= 0.02
        met["int8 <= 0.30x size"] = int8["size_bytes"] <= 0.30 * saved_bytes
    for name, ok in met.items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    report = {
        "count": args.count,
        "seconds": round(seconds, 1),
        "nodes": nodes,
        "held_out": held,
        "saved_model_bytes": saved_bytes,
        "tflite": parity,
        "workdir": workdir,
    }
    with open(os.path.join(workdir, "bench.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nbench.json and logs: {workdir}")


if __name__ == "__main__":
    main()
