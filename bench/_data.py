"""Sample data for the benchmarks: sample shapes ingested once into a cache directory."""

from __future__ import annotations

import os


def ingested_shapes(workdir: str, count: int, size: int = 64) -> tuple[str, list[str]]:
    """Returns (examples_dir, labels) of ``count`` sample shapes, ingesting them on first use."""
    from components.image_example_gen.discovery import discover
    from components.image_example_gen.ingest import IngestOptions, ingest
    from pipelines.sample_data import write_sample_data

    root = os.path.join(workdir, f"shapes-{count}-{size}")
    examples = os.path.join(root, "examples")
    if not os.path.exists(os.path.join(root, "summary.json")):
        write_sample_data(os.path.join(root, "images"), kind="shapes", count=count, size=size)
        ingest(
            discover(os.path.join(root, "images")),
            IngestOptions(),
            span=0,
            examples_dir=examples,
            catalog_dir=root,
        )
    with open(os.path.join(examples, "labels.txt")) as f:
        return examples, f.read().split()
