"""Training throughput inside the pipeline against a plain Keras fit of the same model, one run.

1. The pipeline: ``cvpipe run`` on the sample shapes with the default config (or ``--run-dir``, a
   finished run, e.g. one of bench/demo.py's). Its Trainer records ``images_per_second`` in its
   ``metrics.json`` and every tuning trial in the Tuner's ``trials.json``.
2. A plain Keras script, in a fresh process with TensorFlow's default settings (oneDNN as TF
   ships it; only TF_USE_LEGACY_KERAS=1 so that ``tf.keras`` is the same Keras 2 the pipeline
   uses): the same training images, read from their files with Pillow and resized to the
   Trainer's input size into one uint8 array, then ``model.fit`` of the same network (same
   hyperparameters, batch size and epochs) on that array.

Both count the training batches of each epoch only (validation excluded) with the same callback;
the steady state is the median epoch after the first. Target: pipeline / plain >= 0.9.

    .venv/bin/python bench/train_speed.py
    .venv/bin/python bench/train_speed.py --run-dir /tmp/cvpipe-bench-demo/run-abc123
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env() -> dict[str, str]:
    """TensorFlow's defaults: no oneDNN or thread settings inherited from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_ENABLE_ONEDNN", "CVPIPE_"))}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return env


def pipeline_run(images: str, output: str) -> None:
    command = [sys.executable, "-m", "pipelines.cli", "run", "--images", images, "--output", output]
    print(f"pipeline: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, env=_env(), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def run_outputs(run_dir: str) -> dict:
    """The Trainer's metrics, the Tuner's trials and the training images of a finished run."""
    sys.path.insert(0, ROOT)
    import pyarrow.parquet as pq

    from components.image_example_gen import spec
    from components.image_model.tuner import TRIALS_FILE
    from pipelines.pipeline import EXAMPLE_GEN, TRAINER, TUNER
    from pipelines.runner import METADATA_FILE, latest_outputs

    metadata_path = os.path.join(run_dir, METADATA_FILE)
    _, outputs = latest_outputs(metadata_path, "cvpipe")
    with open(os.path.join(outputs[TRAINER]["model_run"][0], "metrics.json")) as f:
        metrics = json.load(f)
    trials = []
    if TUNER in outputs:
        with open(os.path.join(outputs[TUNER]["tuner_results"][0], TRIALS_FILE)) as f:
            trials = json.load(f)["trials"]
    catalog_dir = outputs[EXAMPLE_GEN]["catalog"][0]
    with open(os.path.join(catalog_dir, spec.SUMMARY_FILE)) as f:
        root = json.load(f)["root"]  # Catalog paths are relative to the input root.
    catalog = pq.read_table(os.path.join(catalog_dir, spec.CATALOG_FILE)).to_pylist()
    train = [
        (os.path.join(root, r[spec.PATH]), r[spec.LABEL])
        for r in catalog
        if r[spec.STATUS] == "ingested" and r[spec.SPLIT] == "train"
    ]
    return {"metrics": metrics, "trials": trials, "train": train}


def plain_keras(train: list[tuple[str, str]], metrics: dict, workdir: str) -> dict:
    """The plain Keras fit in a fresh process; its per-epoch images/s."""
    job = os.path.join(workdir, "plain.json")
    with open(job, "w") as f:
        json.dump({"train": train, "metrics": metrics}, f)
    result = subprocess.run(
        [sys.executable, __file__, "--plain", job],
        env=_env(),
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def plain_child(job_path: str) -> None:
    import numpy as np
    import tensorflow as tf
    from PIL import Image, ImageOps

    from components.image_model import speed
    from components.image_model.model import ModelParams, build_model

    with open(job_path) as f:
        job = json.load(f)
    metrics, train = job["metrics"], job["train"]
    size, batch, epochs = metrics["image_size"], metrics["batch_size"], metrics["epochs"]
    labels = sorted({label for _, label in train})
    images = []
    for path, _ in train:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB").resize((size, size), Image.BILINEAR)
            images.append(np.asarray(image, dtype=np.uint8))
    x = np.stack(images)
    y = np.array([labels.index(label) for _, label in train], dtype=np.int64)
    tf.keras.utils.set_random_seed(0)
    model = build_model(
        ModelParams.from_hyperparameters(metrics["hyperparameters"], num_classes=len(labels), image_size=size)
    )
    meter = speed.Throughput(batch)
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, callbacks=[meter], verbose=0)
    print(json.dumps({"rates": meter.rates, **speed.summarise(meter.rates), "count": len(x)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", help="a finished cvpipe run (default: run the demo config here)")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cvpipe-bench-speed"))
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_child(args.plain)
        return

    os.makedirs(args.workdir, exist_ok=True)
    run_dir = args.run_dir
    if not run_dir:
        sys.path.insert(0, ROOT)
        from pipelines.sample_data import write_sample_data

        images = os.path.join(args.workdir, f"images-{args.count}")
        if not os.path.isdir(images):
            write_sample_data(images, kind="shapes", count=args.count)
        run_dir = tempfile.mkdtemp(prefix="run-", dir=args.workdir)
        pipeline_run(images, run_dir)
    found = run_outputs(run_dir)
    from components.image_model import speed

    metrics = found["metrics"]
    print(f"plain Keras: {len(found['train'])} training images, fresh process, TF defaults", flush=True)
    plain = plain_keras(found["train"], metrics, args.workdir)

    rows = [(f"tuning trial {t['trial_id']}", t) for t in found["trials"]]
    rows += [("pipeline Trainer", metrics), ("plain Keras (in memory)", plain)]
    print(f"\n{'training':28}{'steady images/s':>16}{'first epoch':>14}")
    for name, figures in rows:
        steady, first = figures.get(speed.METRIC, 0.0), figures.get(speed.FIRST_EPOCH_METRIC, 0.0)
        print(f"{name:28}{steady:>16.1f}{first:>14.1f}")
    ratio = metrics["images_per_second"] / plain["images_per_second"]
    print(f"\nratio (pipeline Trainer / plain Keras, steady state): {ratio:.3f}  (target >= 0.9)")
    print("target:", "met" if ratio >= 0.9 else "NOT met")


if __name__ == "__main__":
    main()
