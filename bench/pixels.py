"""The cost of the pixel properties: `cvpipe ingest` with and without them, side by side.

Generates photo-like 640x480 JPEGs with camera Exif (bench/ingest.py's), then runs `cvpipe ingest`
with `ingest.pixel_properties: true` (the default: brightness, contrast, sharpness, colourfulness,
entropy, aspect ratio and a pHash per image, the flags, the near-duplicate search) and `false`, at
a small and a large size, alternating the two settings and keeping each one's fastest of
``--repeats`` runs (the machine is shared). The marginal throughput between the two sizes removes
start-up costs. Prints the ratio (with / without; target >= 0.85) of the marginal throughputs and
of the large runs' whole times, what measuring one image costs against inspecting it, and what the
flags judged against the dataset (blur, grayscale, the near-duplicate search) cost on the large
catalog (both in this process, no Beam).

    .venv/bin/python bench/pixels.py --small 2000 --large 10000 --repeats 2
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ingest import make_photos, run_measured  # noqa: E402  (bench/ingest.py)

SETTINGS = {"with": "true", "without": "false"}


def per_image(images: str, count: int = 300) -> tuple[float, float]:
    """Milliseconds to inspect one image (decode, verify) without and with its pixel properties."""
    from components.image_example_gen.imaging import ImageOptions, inspect_image

    files = sorted(glob.glob(os.path.join(images, "*", "*.jpg")))[:count]
    data = []
    for file in files:
        with open(file, "rb") as f:
            data.append(f.read())
    timings = {}
    for measure in (False, True, False, True):  # Second of each: warm caches.
        options = ImageOptions(pixel_properties=measure)
        started = time.perf_counter()
        for d in data:
            inspect_image(d, options)
        timings[measure] = (time.perf_counter() - started) / len(data) * 1e3
    return timings[False], timings[True]


def dataset_flags(out: str) -> float:
    """Seconds to judge blur, grayscale and near duplicates on an ingested catalog again."""
    import pyarrow.parquet as pq

    from components.image_example_gen import pixels, spec

    rows = pq.read_table(os.path.join(out, spec.CATALOG_FILE)).to_pylist()
    for row in rows:  # As the Beam pipeline leaves them, before the dataset's flags.
        row.update({spec.BLURRY: False, spec.GRAYSCALE: False, spec.NEAR_DUPLICATE_OF: None})
    started = time.perf_counter()
    pixels.flag_dataset(rows, pixels.FlagThresholds(), channels=3)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="keep data here (default: a temp dir)")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="cvpipe-pixels-")
    cvpipe = os.path.join(os.path.dirname(sys.executable), "cvpipe")
    best: dict[tuple[str, int], float] = {}
    try:
        configs = {}
        for name, value in SETTINGS.items():
            configs[name] = os.path.join(workdir, f"{name}.yaml")
            with open(configs[name], "w") as f:
                f.write(f"ingest:\n  pixel_properties: {value}\n")
        for size in (args.small, args.large):
            images = os.path.join(workdir, f"images-{size}")
            if not os.path.isdir(images):
                print(f"generating {size} 640x480 JPEGs ...", flush=True)
                make_photos(images, size, 640, 480)
        for repeat in range(args.repeats):
            for size in (args.small, args.large):
                for name in SETTINGS:
                    out = os.path.join(workdir, f"out-{name}-{size}")
                    shutil.rmtree(out, ignore_errors=True)
                    command = [cvpipe, "ingest", "--images", os.path.join(workdir, f"images-{size}")]
                    seconds, _ = run_measured(command + ["--output", out, "--config", configs[name]])
                    best[name, size] = min(seconds, best.get((name, size), seconds))
                    print(
                        f"  run {repeat + 1}: {name:7} properties, {size:6} images: {seconds:6.1f}s",
                        flush=True,
                    )
        with open(os.path.join(workdir, f"out-with-{args.large}", "summary.json")) as f:
            flagged = json.load(f)["pixels"]["flagged"]
        without_ms, with_ms = per_image(os.path.join(workdir, f"images-{args.small}"))
        flag_seconds = dataset_flags(os.path.join(workdir, f"out-with-{args.large}"))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"cores: {os.cpu_count()}, images: 640x480 JPEG with Exif; fastest of {args.repeats} runs each")
    print(f"{'':26}{'small s':>9}{'large s':>9}{'marginal images/s':>19}")
    rates = {}
    for name in SETTINGS:
        small, large = best[name, args.small], best[name, args.large]
        rates[name] = (args.large - args.small) / (large - small)
        print(f"{name + ' properties':26}{small:>9.1f}{large:>9.1f}{rates[name]:>19.0f}")
    ratio = rates["with"] / rates["without"]
    print(f"throughput ratio (with / without properties): {ratio:.2f}  (target >= 0.85)")
    whole = best["without", args.large] / best["with", args.large]
    print(f"  the large runs' whole times (without / with):  {whole:.2f}")
    print(f"inspect_image per image: {without_ms:.2f} ms without, {with_ms:.2f} ms with properties")
    print(f"flags judged against the dataset, {args.large} images: {flag_seconds:.2f}s")
    print(f"flags in the large run: {flagged}")


if __name__ == "__main__":
    main()
