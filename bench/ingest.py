"""Ingestion throughput and memory: cvpipe versus a naive single-process loop, in one run.

Generates photo-like JPEGs with camera Exif (shared by both), then:
- cvpipe: `cvpipe ingest` (full decode verification, dedup, catalog, Beam DirectRunner with one
  worker per core) at a small and a large size. The marginal throughput between the two sizes
  removes start-up costs (interpreter, TensorFlow import, Beam workers).
- naive: one process, Pillow header read, sha256, tf.train.Example, TFRecordWriter; no
  validation, on the large set.

Prints the ratio (cvpipe marginal images/s / naive images/s; target >= 1.5) and the peak memory
(resident set of the whole process tree) of both cvpipe sizes (target: large <= 1.25 x small).

    .venv/bin/python bench/ingest.py --small 2000 --large 10000
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pipelines.sample_data import camera_exif  # noqa: E402


def make_photos(root: str, count: int, width: int, height: int, seed: int = 0) -> None:
    """Smooth colour fields with noise and edges: compresses like a photo, not like a flat fill."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 200
    for i in range(count):
        label = f"class{i % 4}"
        os.makedirs(os.path.join(root, label), exist_ok=True)
        shift = rng.uniform(0, 55, size=3)
        noise = rng.normal(0, 12, size=(height // 4, width // 4, 3)).repeat(4, 0).repeat(4, 1)
        pixels = np.clip(base + shift + noise, 0, 255).astype(np.uint8)
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(20, 120)
        pixels[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] = rng.integers(0, 255, size=3)
        Image.fromarray(pixels, "RGB").save(
            os.path.join(root, label, f"img_{i:06d}.jpg"), "JPEG", quality=88, exif=camera_exif(i, rng)
        )


def run_measured(command: list[str]) -> tuple[float, float]:
    """Runs a command; returns (seconds, peak resident MiB summed over the process tree)."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process] + process.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{process.stderr.read().decode()[-3000:]}")
    return seconds, peak / 2**20


def naive(root: str, out: str, compression: str = "GZIP") -> int:
    """The baseline loop: header read, sha256, Example, TFRecordWriter. Returns images written.

    By default it writes what cvpipe writes, gzipped TFRecords (at TensorFlow's default level).
    """
    import tensorflow as tf

    count = 0
    with tf.io.TFRecordWriter(out, options=compression) as writer:
        for label in sorted(os.listdir(root)):
            for name in sorted(os.listdir(os.path.join(root, label))):
                with open(os.path.join(root, label, name), "rb") as f:
                    data = f.read()
                width, height = Image.open(io.BytesIO(data)).size
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
                            "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
                            "sha256": tf.train.Feature(
                                bytes_list=tf.train.BytesList(
                                    value=[hashlib.sha256(data).hexdigest().encode()]
                                )
                            ),
                            "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
                            "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
                        }
                    )
                )
                writer.write(example.SerializeToString())
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--workdir", default=None, help="keep data here (default: a temp dir)")
    parser.add_argument("--config", default=None, help="cvpipe config for the ingest runs (e.g. gzip_level)")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="cvpipe-bench-")
    cvpipe = os.path.join(os.path.dirname(sys.executable), "cvpipe")
    results, sizes = {}, {}
    try:
        for size in (args.small, args.large):
            images = os.path.join(workdir, f"images-{size}")
            if not os.path.isdir(images):
                print(f"generating {size} {args.width}x{args.height} JPEGs ...", flush=True)
                make_photos(images, size, args.width, args.height)
            out = os.path.join(workdir, f"out-{size}")
            shutil.rmtree(out, ignore_errors=True)
            print(f"cvpipe ingest {size} ...", flush=True)
            command = [cvpipe, "ingest", "--images", images, "--output", out]
            results[size] = run_measured(command + (["--config", args.config] if args.config else []))
            print(f"  {results[size][0]:.1f}s, peak {results[size][1]:.0f} MiB", flush=True)
            sizes[size] = sum(
                os.path.getsize(f) for f in glob.glob(os.path.join(out, "examples", "*", "*.gz"))
            )

        import tensorflow  # noqa: F401  (imported before the clock starts, as cvpipe's marginal)

        images = os.path.join(workdir, f"images-{args.large}")
        print(f"naive loop {args.large} ...", flush=True)
        started = time.perf_counter()
        written = naive(images, os.path.join(workdir, "naive.tfrecord.gz"))
        naive_seconds = time.perf_counter() - started
        naive_bytes = os.path.getsize(os.path.join(workdir, "naive.tfrecord.gz"))
        started = time.perf_counter()
        naive(images, os.path.join(workdir, "naive.tfrecord"), compression="")
        plain_seconds = time.perf_counter() - started
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    (t_small, m_small), (t_large, m_large) = results[args.small], results[args.large]
    marginal = (args.large - args.small) / (t_large - t_small)
    naive_rate = written / naive_seconds
    print()
    print(f"cores: {os.cpu_count()}, images: {args.width}x{args.height} JPEG with Exif")
    rows = [
        ("cvpipe ingest (small)", args.small, t_small, m_small),
        ("cvpipe ingest (large)", args.large, t_large, m_large),
        ("cvpipe marginal", args.large - args.small, t_large - t_small, None),
        ("naive loop (baseline, gzip)", written, naive_seconds, None),
        ("naive loop, uncompressed", written, plain_seconds, None),
    ]
    print(f"{'':28}{'images':>8}{'seconds':>10}{'images/s':>10}{'peak MiB':>10}")
    for name, count, seconds, memory in rows:
        peak = f"{memory:>10.0f}" if memory is not None else ""
        print(f"{name:28}{count:>8}{seconds:>10.1f}{count / seconds:>10.0f}{peak}")
    print(f"throughput ratio (cvpipe marginal / naive): {marginal / naive_rate:.2f}  (target >= 1.5)")
    print(f"  against the uncompressed naive loop:      {marginal * plain_seconds / written:.2f}")
    print(
        f"output bytes (large): cvpipe {sizes[args.large] / 2**20:.1f} MiB, naive gzip "
        f"{naive_bytes / 2**20:.1f} MiB (ratio {sizes[args.large] / naive_bytes:.2f}; cvpipe also "
        "transcodes and adds metadata features)"
    )
    print(f"memory ratio (large / small peak):          {m_large / m_small:.2f}  (target <= 1.25)")


if __name__ == "__main__":
    main()
