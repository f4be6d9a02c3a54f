"""Near duplicates: pHash candidates confirmed on pixels (components/data_checks/duplicates.py) against
plain pHash <= 6, on real photos with planted copies.

Copies of --planted photos are written to a temporary directory (never into the repository): a JPEG
re-encode at quality 75, a half-size copy and a crop of 3-5% off each side (each side drawn
separately). Every photo and copy is then hashed and the pairs found are counted: planted copies
found per kind (recall), and original photos paired with another original (look-alikes, or
duplicates the dataset already had).

    nice -n 10 .venv/bin/python bench/duplicates.py /work/data/classification/clothing-dataset-small/train
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.data_checks import duplicates  # noqa: E402
from components.image_example_gen import pixels, spec  # noqa: E402

KINDS = ("reencode", "half", "crop")


def plant(originals: list[str], count: int, out: str, seed: int) -> dict[str, tuple[str, str]]:
    """Copy path -> (original path, kind), written under ``out``."""
    rng = random.Random(seed)
    planted = {}
    for n, source in enumerate(sorted(rng.sample(originals, count))):
        image = Image.open(source).convert("RGB")
        width, height = image.size
        sides = [rng.uniform(0.03, 0.05) for _ in range(4)]
        copies = {
            "reencode": (image, 75),
            "half": (image.resize((width // 2, height // 2), Image.Resampling.LANCZOS), 90),
            "crop": (
                image.crop(
                    (
                        round(sides[0] * width),
                        round(sides[1] * height),
                        width - round(sides[2] * width),
                        height - round(sides[3] * height),
                    )
                ),
                90,
            ),
        }
        for kind, (copy, quality) in copies.items():
            path = os.path.join(out, f"{n:03d}_{kind}.jpg")
            copy.save(path, quality=quality)
            planted[path] = (source, kind)
    return planted


def index(paths: list[str]) -> list[dict]:
    """Catalog-like rows (path, phash, ingested), the pHash as ingestion measures it (the 1/8 decode)."""
    rows = []
    for path in paths:
        image = Image.open(path)
        width, height = image.size
        image.draft(
            "RGB", (width // pixels.block_factor(width, height), height // pixels.block_factor(width, height))
        )
        props = pixels.measure(image.convert("RGB"), width=width, height=height)
        rows.append({spec.PATH: path, spec.PHASH: props.phash, spec.STATUS: spec.INGESTED})
    return rows


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def tally(pairs: set[tuple[str, str]], planted: dict[str, tuple[str, str]]) -> tuple[dict, int, int]:
    found = collections.Counter(
        planted[b][1] if b in planted else planted[a][1]
        for a, b in pairs
        if (b in planted and planted[b][0] == a) or (a in planted and planted[a][0] == b)
    )
    among = [(a, b) for a, b in pairs if a not in planted and b not in planted]
    return found, len(among), len({p for pair in among for p in pair})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--planted", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=int, default=duplicates.CANDIDATE_DISTANCE)
    parser.add_argument("--min-score", type=float, default=duplicates.MIN_SCORE)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    args = parser.parse_args()
    originals = sorted(
        os.path.join(d, f) for d, _, files in os.walk(args.root) for f in files if f.lower().endswith(".jpg")
    )
    if args.limit:
        originals = originals[: args.limit]
    with tempfile.TemporaryDirectory() as out:
        planted = plant(originals, args.planted, out, args.seed)
        start = time.perf_counter()
        rows = index(originals + sorted(planted))
        indexed = time.perf_counter() - start
        print(
            f"{len(originals)} photos + {len(planted)} planted copies; pHash as at ingestion {indexed:.1f} s"
        )

        start = time.perf_counter()
        baseline = {
            (rows[i][spec.PATH], rows[j][spec.PATH]) for i, j, _ in duplicates.candidate_pairs(rows, 6)
        }
        baseline_time = time.perf_counter() - start

        start, cpu = time.perf_counter(), time.process_time()
        # As duplicates.confirmed_pairs, without the label and split filter: every candidate is scored.
        confirmer = duplicates.Confirmer(read, duplicates.ConfirmOptions(args.candidates, args.min_score))
        paths = [r[spec.PATH] for r in rows if confirmer.hashes(r[spec.PATH])]
        whole, centre = (np.array([confirmer.hashes(p)[k] for p in paths], dtype=np.uint64) for k in (0, 1))
        hashed = time.perf_counter() - start
        candidates = sorted(duplicates.hash_candidates(whole, centre, args.candidates).items())
        values = confirmer.scores([(paths[i], paths[j]) for (i, j), _ in candidates])
        scored = [(paths[i], paths[j], d, v) for ((i, j), d), v in zip(candidates, values)]
        confirm_time, confirm_cpu = time.perf_counter() - start, time.process_time() - cpu
    confirmed = {(a, b) for a, b, _, value in scored if value >= args.min_score}

    per_kind = args.planted
    for name, pairs, seconds in (
        ("pHash <= 6 (baseline)", baseline, baseline_time),
        (f"whole/centre pHash <= {args.candidates} + confirm >= {args.min_score:g}", confirmed, confirm_time),
    ):
        found, among, images = tally(pairs, planted)
        kinds = ", ".join(f"{k} {found[k]}/{per_kind} ({found[k] / per_kind:.0%})" for k in KINDS)
        print(f"{name}: planted found: {kinds}")
        print(
            f"  look-alikes: {among} pairs of originals, {images} original photos flagged "
            f"({images / len(originals) * 3000:.1f} per 3,000); pairs {seconds:.2f} s (+ indexing)"
        )
    print(
        f"candidates (whole or centre pHash <= {args.candidates}): {len(candidates)} pairs; "
        f"{confirm_time:.1f} s in all: {hashed:.1f} s reading every image for its thumbnail hashes, "
        f"{confirm_time - hashed:.1f} s scoring the candidates (their thumbnails read again); "
        f"CPU {confirm_cpu:.1f} s (wall and CPU differ on a shared machine)"
    )
    twins = {frozenset((copy, source)): kind for copy, (source, kind) in planted.items()}
    copies = [(twins[frozenset((a, b))], d, v) for a, b, d, v in scored if frozenset((a, b)) in twins]
    for kind in KINDS:
        values = sorted(v for k, d, v in copies if k == kind)
        if values:
            distances = [d for k, d, v in copies if k == kind]
            print(
                f"  {kind}: lowest confirming scores {[round(v, 3) for v in values[:5]]}, "
                f"candidate distances {min(distances)}-{max(distances)}"
            )
    missed = collections.Counter()
    for copy, (source, kind) in planted.items():
        if not any({a, b} == {copy, source} for a, b, _, _ in scored):
            missed[kind] += 1
    print(f"  planted copies not even a candidate: {dict(missed) or 'none'}")
    lookalike = sorted((v for a, b, _, v in scored if a not in planted and b not in planted), reverse=True)
    print(f"  originals' candidate pairs: highest scores {[round(v, 3) for v in lookalike[:10]]}")
    for a, b, d, v in sorted(scored, key=lambda s: -s[3]):
        if a not in planted and b not in planted and v >= args.min_score:
            print(
                f"    flagged originals: {os.path.relpath(a, args.root)} ~ {os.path.relpath(b, args.root)} "
                f"(distance {d}, score {v:.3f})"
            )


if __name__ == "__main__":
    main()
