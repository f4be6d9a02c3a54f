"""Labelled image folders to try cvpipe on, made locally (no downloads).

- ``shapes``: circles, squares and triangles drawn on noisy backgrounds, saved as JPEG with the
  Exif a Raspberry Pi camera writes (make, model, capture time, GPS).
- ``digits``: scikit-learn's real 8x8 handwritten digits, upscaled to 32x32 grey PNG files.

    >>> write_sample_data("data/shapes", kind="shapes", count=300)
"""

from __future__ import annotations

import datetime
import os

import numpy as np
from PIL import Image, ImageDraw, TiffImagePlugin

SHAPES = ("circle", "square", "triangle")
KINDS = ("shapes", "digits")


def _rational(value: float, denominator: int = 10000) -> TiffImagePlugin.IFDRational:
    return TiffImagePlugin.IFDRational(int(round(value * denominator)), denominator)


def camera_exif(index: int, rng: np.random.Generator) -> Image.Exif:
    """Exif of a Pi camera somewhere around Cambridge, UK (west of Greenwich: negative longitude)."""
    exif = Image.Exif()
    exif[0x010F] = "RaspberryPi"
    exif[0x0110] = "RP_imx219"
    taken = datetime.datetime(2026, 5, 1, 6, 0, 0) + datetime.timedelta(minutes=7 * index)
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    lat = 52.2 + rng.uniform(-0.05, 0.05)
    lon = -0.12 + rng.uniform(-0.05, 0.05)
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = _dms(abs(lat))
    gps[3] = "W" if lon < 0 else "E"
    gps[4] = _dms(abs(lon))
    gps[5] = b"\x00"
    gps[6] = _rational(12.0 + rng.uniform(0, 5), 100)
    return exif


def _dms(degrees: float) -> tuple:
    d = int(degrees)
    m = int((degrees - d) * 60)
    s = (degrees - d - m / 60) * 3600
    return (_rational(d, 1), _rational(m, 1), _rational(s, 1000))


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    background = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(120, 256, size=3))
    extent = rng.uniform(0.35, 0.7) * size
    cx, cy = rng.uniform(extent / 2 + 2, size - extent / 2 - 2, size=2)
    half = extent / 2
    if shape == "circle":
        draw.ellipse([cx - half, cy - half, cx + half, cy + half], fill=colour)
    elif shape == "square":
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return image


def write_sample_data(
    out_dir: str, *, kind: str = "shapes", count: int = 300, seed: int = 0, size: int = 64
) -> int:
    """Writes ``count`` images in class folders under ``out_dir``; returns how many were written."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    rng = np.random.default_rng(seed)
    if kind == "shapes":
        for i in range(count):
            shape = SHAPES[i % len(SHAPES)]
            os.makedirs(os.path.join(out_dir, shape), exist_ok=True)  # A local input folder, not an artifact.
            image = draw_shape(shape, size, rng)
            image.save(
                os.path.join(out_dir, shape, f"{shape}_{i:05d}.jpg"),
                "JPEG",
                quality=92,
                exif=camera_exif(i, rng),
            )
        return count
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Capped at the 1,797 real digits: drawing with replacement would only add exact duplicates.
    order = rng.permutation(len(digits.images))[:count]
    for i, index in enumerate(order):
        label = str(int(digits.target[index]))
        os.makedirs(os.path.join(out_dir, label), exist_ok=True)  # A local input folder, not an artifact.
        pixels = (digits.images[index] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "L").resize((32, 32), Image.Resampling.BICUBIC)
        image.save(os.path.join(out_dir, label, f"digit_{i:05d}_{index:04d}.png"))
    return len(order)
