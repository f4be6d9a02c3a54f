"""The detection pipeline on real photos whose boxes someone else drew (Pascal VOC XML or COCO).

Not generated data: a public set of photos with annotations written by other tools, fetched by
you and never committed. The one used for the figures in the README is datitran/raccoon_dataset
(200 JPEGs of 178-2000 px with one VOC .xml each, one class, MIT licence; `git archive` its
``images/`` and ``annotations/`` folders). Any folder with images and their VOC/COCO files works.

1. The photos are split into a run set and a held-out set (``--held-out`` of them, by a hash of
   their bytes, so byte-identical copies land on the same side and nothing leaks), copied with
   their annotation files into two folders.
2. ``cvpipe run`` on the run set with detection's default config (tuning, training from scratch,
   TFMA's COCO gate, serving and edge push) plus ``--config``, in a fresh process, timed.
3. The pushed SavedModel and TFLite files scored with pycocotools on the held-out photos (the
   exporter's own scoring, components/tflite_exporter/detection.check_parity).

Targets (issue 22): held-out mAP@0.5 >= 0.70 from scratch on about 160 photos; int8 within 2
points of the SavedModel and pushed.

    .venv/bin/python bench/detection_photos.py /data/raccoon_dataset
    .venv/bin/python bench/detection_photos.py /data/raccoon_dataset --held-out 40 --config extra.yaml
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.detection import directory_size  # noqa: E402 (after the path set-up)
from bench.detection_pipeline import cvpipe, print_results  # noqa: E402

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def split_photos(dataset: str, held_out: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(image, annotation) pairs: the run set and ``held_out`` held-out pairs, by a hash of the
    image's bytes (copies of one photo on one side). VOC: the .xml beside or under ``dataset``
    with the image's stem."""
    xml = {
        os.path.splitext(os.path.basename(p))[0]: p for p in glob.glob(f"{dataset}/**/*.xml", recursive=True)
    }
    pairs = []
    for path in sorted(glob.glob(f"{dataset}/**/*", recursive=True)):
        stem, suffix = os.path.splitext(os.path.basename(path))
        if suffix.lower() in IMAGE_SUFFIXES and stem in xml:
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            pairs.append((digest, path, xml[stem]))
    if len(pairs) <= held_out:
        raise SystemExit(f"{dataset}: {len(pairs)} annotated photos, fewer than --held-out {held_out}")
    order = sorted({digest for digest, _, _ in pairs}, key=lambda d: hashlib.sha256(d.encode()).hexdigest())
    held, count = set(), 0
    for digest in order:
        if count >= held_out:
            break
        held.add(digest)
        count += sum(1 for d, _, _ in pairs if d == digest)
    run = [(image, note) for digest, image, note in pairs if digest not in held]
    out = [(image, note) for digest, image, note in pairs if digest in held]
    return run, out


def link(pairs: list[tuple[str, str]], folder: str) -> None:
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    os.makedirs(os.path.join(folder, "annotations"), exist_ok=True)
    for image, note in pairs:
        shutil.copy(image, os.path.join(folder, "images", os.path.basename(image)))
        shutil.copy(note, os.path.join(folder, "annotations", os.path.basename(note)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", help="a folder of photos with Pascal VOC .xml annotations")
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--config", help="YAML merged over `task: detection` (default: none)")
    parser.add_argument("--workdir", default=None, help="default: a new temporary directory")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="cvpipe-bench-detection-photos-")
    os.makedirs(workdir, exist_ok=True)
    config = os.path.join(workdir, "detection.yaml")
    extra = open(args.config).read() if args.config else ""
    with open(config, "w") as f:
        f.write("task: detection\n" + extra)

    run_pairs, held_pairs = split_photos(args.dataset, args.held_out)
    photos, held_photos = os.path.join(workdir, "photos"), os.path.join(workdir, "held-out-photos")
    link(run_pairs, photos)
    link(held_pairs, held_photos)
    print(f"{len(run_pairs)} photos for the run, {len(held_pairs)} held out ({args.dataset})", flush=True)
    log = os.path.join(workdir, "{}.log")
    held_out = os.path.join(workdir, "held-out")
    cvpipe(
        ["ingest", "--images", held_photos, "--output", held_out, "--config", config], log.format("ingest")
    )

    out = os.path.join(workdir, "run")
    seconds, nodes, printed = cvpipe(
        ["run", "--images", photos, "--output", out, "--config", config], log.format("run")
    )

    from components.image_model.detector import evaluation
    from components.tflite_exporter import detection

    serving = glob.glob(os.path.join(out, "serving", "cvpipe", "[0-9]*"))
    if not serving:
        print(printed[-3000:])
        raise SystemExit("nothing was pushed: the model was not blessed (see above)")
    edge = glob.glob(os.path.join(out, "edge", "cvpipe", "[0-9]*"))
    patterns = [os.path.join(held_out, "examples", "Split-*", "*.gz")]
    held = evaluation.evaluate_saved_model(serving[0], patterns)
    models = {}
    for path in sorted(
        glob.glob(os.path.join(out, "pipeline_root", "TFLiteExporter", "tflite_model", "*", "*.tflite"))
    ):
        with open(path, "rb") as f:
            models[os.path.basename(path)[len("model_") : -len(".tflite")]] = f.read()
    parity = detection.check_parity(serving[0], models, patterns, max_map_drop=0.02)
    saved_bytes = directory_size(serving[0])

    print_results(nodes, seconds, printed, held, parity, saved_bytes, what="photos")
    int8 = next((v for v in parity["variants"] if v["mode"] == "int8"), None)
    met = {"held-out mAP@0.5 >= 0.70": held["map50"] >= 0.70}
    if int8:
        met["int8 within 0.02 mAP@0.5"] = held["map50"] - int8["map50"] <= 0.02
        met["int8 pushed"] = any(glob.glob(os.path.join(e, "model_int8.tflite")) for e in edge)
    for name, ok in met.items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    report = {
        "dataset": args.dataset,
        "photos": len(run_pairs),
        "held_out_photos": len(held_pairs),
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
