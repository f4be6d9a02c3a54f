"""Labelled image folders to try cvpipe on, made locally (no downloads).

- ``shapes``: circles, squares and triangles drawn on noisy backgrounds, saved as JPEG with the
  Exif a Raspberry Pi camera writes (make, model, capture time, GPS).
- ``digits``: scikit-learn's real 8x8 handwritten digits, upscaled to 32x32 grey PNG files.
- ``scenes`` (object detection): 128x128 JPEG scenes of 0-4 circles, squares and triangles of
  varied sizes and colours on varied backgrounds, with a COCO instances ``annotations.json``
  beside them (boxes on the image as displayed). The same camera Exif as ``shapes``; every fifth
  scene is stored rotated with Exif orientation 6, as a phone held upright writes it.

    >>> write_sample_data("data/shapes", kind="shapes", count=300)
    >>> write_sample_data("data/scenes", kind="scenes", count=200)
"""

from __future__ import annotations

import datetime
import json
import os

import numpy as np
from PIL import Image, ImageDraw, TiffImagePlugin

SHAPES = ("circle", "square", "triangle")
KINDS = ("shapes", "digits", "scenes")
SCENE_SIZE = 128
COCO_FILE = "annotations.json"


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


def _scene_background(size: int, rng: np.random.Generator) -> Image.Image:
    """A dark two-colour gradient with noise: varied, and darker than every object."""
    start, end = rng.integers(0, 100, size=(2, 3))
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    rows = start[None, None, :] * (1 - t) + end[None, None, :] * t
    pixels = np.broadcast_to(rows, (size, size, 3))
    if rng.random() < 0.5:
        pixels = pixels.transpose(1, 0, 2)
    noise = rng.normal(0, 8, size=(size, size, 3))
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def draw_scene(
    rng: np.random.Generator, size: int = SCENE_SIZE
) -> tuple[Image.Image, list[tuple[str, list[int]]]]:
    """A scene and its objects: (shape, COCO [x, y, width, height]) with boxes tight on the pixels.

    About one scene in eight has no object (a negative); the others 1-4 objects of 12-48 pixels
    that overlap little (IoU under 0.2), each in a colour well above the background's.
    """
    image = _scene_background(size, rng)
    draw = ImageDraw.Draw(image)
    count = 0 if rng.random() < 0.125 else int(rng.integers(1, 5))
    objects: list[tuple[str, list[int]]] = []
    for _ in range(count):
        for _attempt in range(20):
            side = int(rng.integers(12, 49))
            x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
            if all(_overlap((x, y, side, side), box) < 0.2 for _, box in objects):
                break
        else:
            continue
        shape = SHAPES[int(rng.integers(0, len(SHAPES)))]
        colour = tuple(int(c) for c in rng.integers(130, 256, size=3))
        x1, y1 = x + side - 1, y + side - 1  # Pillow's corners are inclusive: side x side pixels.
        if shape == "circle":
            draw.ellipse([x, y, x1, y1], fill=colour)
        elif shape == "square":
            draw.rectangle([x, y, x1, y1], fill=colour)
        else:
            draw.polygon([((x + x1) / 2, y), (x, y1), (x1, y1)], fill=colour)
        objects.append((shape, [x, y, side, side]))
    return image, objects


def _overlap(a, b) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def write_scenes(out_dir: str, count: int, seed: int = 0) -> int:
    """``count`` scenes as ``scene_NNNNN.jpg`` plus ``annotations.json`` (COCO, 1-based category ids)."""
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)  # A local input folder, not an artifact.
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)]
    ids = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    for i in range(count):
        scene, objects = draw_scene(rng)
        exif = camera_exif(i, rng)
        if i % 5 == 4:
            # Stored rotated, displayed upright: orientation 6 shows the stored pixels turned 90
            # degrees clockwise (Pillow's ROTATE_270), so they are the scene turned anticlockwise.
            exif[0x0112] = 6
            scene = scene.transpose(Image.Transpose.ROTATE_90)
        name = f"scene_{i:05d}.jpg"
        scene.save(os.path.join(out_dir, name), "JPEG", quality=92, exif=exif)
        images.append({"id": i + 1, "file_name": name, "width": SCENE_SIZE, "height": SCENE_SIZE})
        for shape, bbox in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": ids[shape],
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                }
            )
    coco = {
        "info": {"description": f"cvpipe sample scenes (seed {seed})", "version": "1.0"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    with open(os.path.join(out_dir, COCO_FILE), "w", encoding="utf-8") as f:  # A local sample file.
        json.dump(coco, f, indent=1)
    return count


def write_sample_data(
    out_dir: str, *, kind: str = "shapes", count: int = 300, seed: int = 0, size: int = 64
) -> int:
    """Writes ``count`` images under ``out_dir`` (class folders; scenes: with annotations.json).

    Returns how many were written.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if kind == "scenes":
        return write_scenes(out_dir, count, seed)
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
