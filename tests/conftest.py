"""Shared fixtures: small images of every awkward kind, made in memory."""

import dataclasses
import io
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def gradient(width: int = 48, height: int = 32, mode: str = "RGB") -> Image.Image:
    """A non-symmetric image, so rotations and flips are distinguishable."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1
    ).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").convert(mode)


# Runs `cvpipe ARGS` in a new interpreter, then names which of the heavy packages it imported.
_FRESH_CLI = """
import sys
from pipelines.cli import main

code = main(sys.argv[1:])
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"tensorflow", "tfx", "apache_beam"})
print("heavy imports:", ",".join(heavy))
sys.exit(code)
"""


@dataclasses.dataclass
class FreshRun:
    code: int
    out: str  # Standard output, without the heavy-imports line.
    err: str
    heavy: list[str]  # Which of tensorflow, tfx and apache_beam the process imported.


def cvpipe_in_fresh_process(args: list[str]) -> FreshRun:
    """`cvpipe ARGS` in a new interpreter (this checkout's code), and what it imported."""
    import subprocess
    import sys

    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_CLI, *args], cwd=checkout, capture_output=True, text=True, timeout=300
    )
    out, _, last = result.stdout.rstrip("\n").rpartition("\n")
    assert last.startswith("heavy imports:"), result.stdout[-2000:] + result.stderr[-2000:]
    heavy = [name for name in last.split(":", 1)[1].strip().split(",") if name]
    return FreshRun(result.returncode, out + "\n" if out else "", result.stderr, heavy)


def spread_out_detector(params, seed: int = 3):
    """An untrained detector (``DetectorParams``) whose heads are spread out: scores 0.01-0.9,
    boxes off their anchors. Two runtimes or two evaluators can be compared without training."""
    import tensorflow as tf

    from components.image_model.detector.network import build_detector

    tf.keras.utils.set_random_seed(seed)
    model = build_detector(params)
    rng = np.random.default_rng(seed)
    bn = model.get_layer("input_bn")
    bn.moving_mean.assign(np.full(3, 100.0, np.float32))
    bn.moving_variance.assign(np.full(3, 60.0**2, np.float32))
    for stride in params.strides:
        for branch, std, bias in (("box", 0.1, 0.0), ("class", 0.5, -2.5)):
            layer = model.get_layer(f"head{stride}_{branch}_out")
            kernel, biases = layer.get_weights()
            layer.set_weights(
                [rng.normal(0, std, kernel.shape).astype(np.float32), np.full_like(biases, bias)]
            )
    return model


def write(path, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(gradient(), "JPEG", quality=95)


@pytest.fixture(scope="session")
def shapes_examples(tmp_path_factory):
    """240 sample shapes ingested with the in-process Beam runner: (examples_dir, labels, images_dir)."""
    from components.image_example_gen.discovery import discover
    from components.image_example_gen.ingest import IngestOptions, ingest
    from pipelines.sample_data import write_sample_data

    root = tmp_path_factory.mktemp("shapes")
    write_sample_data(str(root / "images"), kind="shapes", count=240, seed=3)
    found = discover(str(root / "images"))
    ingest(found, IngestOptions(), span=0, examples_dir=str(root / "examples"), catalog_dir=str(root))
    return str(root / "examples"), found.labels, str(root / "images")
