"""Edge variants in one run: size, accuracy, agreement and single-image latency of every mode.

Trains the sample model on sample data (shapes or digits), converts float32, dynamic_range,
float16 and int8, and evaluates each with the TFLite interpreter (one thread, XNNPACK) on the eval
split next to the float SavedModel. Targets: int8 size <= 0.30 x float32, int8 median latency
<= 0.8 x float32, int8 accuracy within 1 point of the float model and agreement >= 98%.

    .venv/bin/python bench/edge.py --kind shapes
    .venv/bin/python bench/edge.py --kind digits
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.image_example_gen.discovery import discover  # noqa: E402
from components.image_example_gen.ingest import IngestOptions, ingest  # noqa: E402
from components.image_model.training import TrainSpec, train  # noqa: E402
from components.tflite_exporter.convert import MODES  # noqa: E402
from components.tflite_exporter.export import export_variants  # noqa: E402
from pipelines.sample_data import write_sample_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["shapes", "digits"], default="shapes")
    parser.add_argument("--count", type=int, default=0, help="images (default: 600 shapes, all 1797 digits)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--workdir", default=tempfile.mkdtemp(prefix="cvpipe-edge-bench-"))
    args = parser.parse_args()

    root = args.workdir
    count = args.count or (600 if args.kind == "shapes" else 1797)
    write_sample_data(os.path.join(root, "images"), kind=args.kind, count=count)
    found = discover(os.path.join(root, "images"))
    examples = os.path.join(root, "examples")
    ingest(found, IngestOptions(), span=0, examples_dir=examples, catalog_dir=root)
    image_size = 64 if args.kind == "shapes" else 32
    spec = TrainSpec(
        train_patterns=[f"{examples}/Split-train/*"],
        eval_patterns=[f"{examples}/Split-eval/*"],
        test_patterns=[f"{examples}/Split-test/*"],
        labels=found.labels,
        serving_model_dir=os.path.join(root, "serving"),
        model_run_dir=os.path.join(root, "run"),
        backup_dir=os.path.join(root, "backup"),
        image_size=image_size,
        epochs=args.epochs,
        hyperparameters={"width": 24, "depth": 2, "learning_rate": 0.002},
        flip=args.kind == "shapes",
    )
    train(spec)
    parity = export_variants(
        spec.serving_model_dir,
        examples,
        os.path.join(root, "tflite"),
        modes=list(MODES),
        representative_count=300,
        max_accuracy_drop=0.01,
        min_agreement=0.98,
        model_name=args.kind,
    )
    variants = {v["mode"]: v for v in parity["variants"]}
    reference = parity["reference"]
    print(
        f"\n{args.kind}: {reference['eval_examples']} eval images {image_size}x{image_size}, "
        f"float SavedModel accuracy {reference['accuracy']:.4f}, {os.cpu_count()} cores, 1 thread"
    )
    print(f"{'mode':15}{'bytes':>10}{'accuracy':>10}{'agree':>8}{'median ms':>11}{'p90 ms':>9}  gate")
    for mode in MODES:
        v = variants[mode]
        print(
            f"{mode:15}{v['size_bytes']:>10}{v['accuracy']:>10.4f}{v['agreement']:>8.3f}"
            f"{v['latency_ms_median']:>11.3f}{v['latency_ms_p90']:>9.3f}  {v['reason']}"
        )
    f32, i8 = variants["float32"], variants["int8"]
    print(f"int8 / float32 size:           {i8['size_bytes'] / f32['size_bytes']:.3f}  (target <= 0.30)")
    print(
        f"int8 / float32 median latency: {i8['latency_ms_median'] / f32['latency_ms_median']:.3f}  "
        f"(target <= 0.8)"
    )
    print(f"int8 accuracy drop:            {reference['accuracy'] - i8['accuracy']:+.4f}  (target <= 0.01)")
    print(f"int8 agreement:                {i8['agreement']:.4f}  (target >= 0.98)")


if __name__ == "__main__":
    main()
