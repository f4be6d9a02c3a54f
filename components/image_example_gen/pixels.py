"""What an image shows: properties, flags and a perceptual hash, from pixels already decoded.

Ingestion decodes every image once to verify it; ``measure`` reads that decoded copy (a pass-through
JPEG's 1/8-scale decode, or Pillow's pixels reduced to the same 8x8 block means), shrunk so that its
longer side is at most ANALYSIS_SIDE pixels, so the cost per image (about 0.3 ms, bench/pixels.py)
does not grow with the image:

    >>> props = measure(Image.open("cat.jpg").convert("RGB"), width=640, height=480)
    >>> props.brightness, props.sharpness, props.phash
    (0.41, 0.52, 'c3f09a6e1b2d4c58')
    >>> image_flags(props, FlagThresholds())        # {} for an ordinary photo
    >>> first, second, distance = near_duplicate_pairs(hashes, max_distance=6)

Flags judged on one image (dark, light, low_information, odd_aspect_ratio) are set while ingesting;
those judged against the dataset (blurry: against its median sharpness; grayscale: only in a colour
dataset; near_duplicate_of) once every image is measured (``flag_dataset``). Pure numpy and
Pillow: the data checks and the report use the same functions without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Iterable

import numpy as np
from PIL import Image

from components.image_example_gen import spec

ANALYSIS_SIDE = 64  # Longer side of the copy the properties are measured on (cleanvision uses 64 too).
_HASH_BITS = 8  # pHash: the 8x8 lowest frequencies of the 2-D DCT of luma.
_FLAT = 1.0  # Luma with a standard deviation below this (grey levels) has no hash.


@functools.lru_cache(maxsize=512)
def _dct_rows(size: int) -> np.ndarray:
    """Rows 0-7 of the size x size DCT-II matrix: D(h) @ x @ D(w).T is the 8x8 lowest-frequency
    block of x's 2-D DCT, the same block (up to one scale factor) as after squashing x to 32x32."""
    k = np.arange(size)
    return np.cos(np.pi * (2 * k[None, :] + 1) * np.arange(_HASH_BITS)[:, None] / (2 * size))


@dataclasses.dataclass(frozen=True)
class FlagThresholds:
    """When an image is flagged (ingest.flags in pipelines/configs/default.yaml, whose values these are).

    dark: the brightest 1% of the pixels stay below this luma (0-1): under-exposed, not merely a
      dark scene with a light in it.
    light: the darkest 5% of the pixels are above this luma: washed out.
    blurry: sharpness below this fraction of the dataset's median sharpness (sharpness depends on
      the content, so it is judged against the dataset, not against a fixed number).
    low_information: grey-level entropy below this many bits (a flat or near-empty image).
    odd_aspect_ratio: the longer side over the shorter one above this.
    grayscale: colourfulness below this, flagged only in a colour dataset (channels 3 and most
      images in colour).
    near_duplicate: perceptual-hash Hamming distance (of 64 bits) up to which two images are near
      duplicates: re-encoded and resized copies measure 0-2, a 1-3% crop 2-8, unrelated photos ~32.
    """

    dark: float = 0.2
    light: float = 0.8
    blurry: float = 0.25
    low_information: float = 2.5
    odd_aspect_ratio: float = 2.5
    grayscale: float = 2.0
    near_duplicate: int = 6

    def __post_init__(self):
        for name in ("dark", "light", "blurry"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"flags.{name}: 0-1, got {getattr(self, name)}")
        if not 0 <= self.low_information <= 8:
            raise ValueError(f"flags.low_information: 0-8 bits, got {self.low_information}")
        if self.odd_aspect_ratio < 1:
            raise ValueError(f"flags.odd_aspect_ratio: at least 1, got {self.odd_aspect_ratio}")
        if self.grayscale < 0:
            raise ValueError(f"flags.grayscale: at least 0, got {self.grayscale}")
        if isinstance(self.near_duplicate, bool) or not 0 <= self.near_duplicate <= 32:
            raise ValueError(f"flags.near_duplicate: a distance 0-32, got {self.near_duplicate}")


@dataclasses.dataclass(frozen=True)
class PixelProperties:
    brightness: float  # Mean luma (ITU-R 601, Pillow's "L"), 0-1.
    contrast: float  # RMS contrast: standard deviation of luma, 0-0.5.
    sharpness: float  # Variance of luma's Laplacian over luma's variance; 0 for a flat image.
    colourfulness: float  # Hasler and Süsstrunk's M3 on 0-255 values; 0 for grey.
    entropy: float  # Shannon entropy of the 256-bin luma histogram, bits (0-8).
    aspect_ratio: float  # width / height of the stored image.
    phash: str | None  # 64-bit DCT perceptual hash, 16 hex digits; None for a flat image.
    highlights: float  # 99th-percentile luma (the dark flag); not a feature.
    shadows: float  # 5th-percentile luma (the light flag); not a feature.

    def features(self) -> dict[str, Any]:
        """The example features and catalog columns (spec.PIXEL_PROPERTIES and spec.PHASH)."""
        values = {name: getattr(self, name) for name in spec.PIXEL_PROPERTIES}
        if self.phash:
            values[spec.PHASH] = self.phash
        return values


def block_factor(width: int, height: int) -> int:
    """The largest of 8, 4, 2, 1 that still leaves ANALYSIS_SIDE pixels on the longer side (and 8 on
    the shorter): the JPEG DCT scaling of a pass-through JPEG's verification decode.

    A JPEG decoded at 1/8 keeps each 8x8 block's mean, which is what Pillow's reduce(8) computes
    from the full decode: every path (DCT-scaled decode, or Pillow's pixels reduced by this factor)
    reaches the analysis copy through the same block means, so a copy of an image measures like
    the image (0-2 of the 64 hash bits), whichever path each took.
    """
    factor = 8
    while factor > 1 and (max(width, height) / factor < ANALYSIS_SIDE or min(width, height) / factor < 8):
        factor //= 2
    return factor


# Sum of c * log2(c) for a histogram count c (up to every pixel of the analysis copy in one bin).
_COUNTS = np.arange(1, ANALYSIS_SIDE * ANALYSIS_SIDE + 1, dtype=np.float64)
_C_LOG_C = np.concatenate([[0.0], _COUNTS * np.log2(_COUNTS)])
_LEVELS = np.arange(256, dtype=np.float64)
_SQUARES = _LEVELS * _LEVELS


def measure(image: Image.Image, *, width: int, height: int) -> PixelProperties:
    """Properties of a decoded image (mode "L" or "RGB") stored at ``width`` x ``height``.

    ``image`` is the full decode, or one already reduced by ``block_factor(width, height)`` (a
    pass-through JPEG's DCT-scaled decode). Luma statistics, entropy and percentiles come from the
    histogram of the analysis copy, colourfulness from the block means at half the analysis scale;
    every step works on a few thousand values, so the cost does not depend on the image's size.
    """
    factor = block_factor(width, height)
    if factor > 1 and image.size == (width, height):
        image = image.reduce(factor)
    grey_image = image if image.mode == "L" else image.convert("L")
    grey_width, grey_height = grey_image.size
    scale = ANALYSIS_SIDE / max(grey_width, grey_height)
    if scale < 1:  # Box filter to the analysis size; the shorter side keeps at least 8 pixels.
        size = (
            max(min(grey_width, 8), round(grey_width * scale)),
            max(min(grey_height, 8), round(grey_height * scale)),
        )
        grey_image = grey_image.resize(size, Image.Resampling.BOX)
    grey8 = np.asarray(grey_image)
    histogram = np.bincount(grey8.ravel(), minlength=256)
    count = grey8.size
    mean = float(histogram @ _LEVELS) / count
    variance = max(0.0, float(histogram @ _SQUARES) / count - mean * mean)
    highlights, shadows = np.searchsorted(np.cumsum(histogram), (0.99 * count, 0.05 * count)).tolist()
    grey = grey8.astype(np.float64)
    sharpness = 0.0
    if min(grey.shape) >= 3 and variance >= 0.25:
        laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1]
        laplacian += grey[1:-1, :-2]
        laplacian += grey[1:-1, 2:]
        laplacian -= 4 * grey[1:-1, 1:-1]
        sharpness = _mean_var(laplacian)[1] / variance
    colourfulness = 0.0
    if image.mode == "RGB":
        if max(image.size) > ANALYSIS_SIDE // 2:  # A global statistic: half the analysis scale will do.
            image = image.reduce(2)
        red, green, blue = np.asarray(image).reshape(-1, 3).T.astype(np.float64)
        # Hasler and Suesstrunk: the spread and the mean of rg = R - G and yb = (R + G) / 2 - B.
        (rg_mean, rg_var), (yb_mean, yb_var) = _mean_var(red - green), _mean_var(0.5 * (red + green) - blue)
        colourfulness = math.sqrt(rg_var + yb_var) + 0.3 * math.hypot(rg_mean, yb_mean)
    return PixelProperties(
        brightness=mean / 255.0,
        contrast=math.sqrt(variance) / 255.0,
        sharpness=sharpness,
        colourfulness=colourfulness,
        entropy=max(0.0, math.log2(count) - float(_C_LOG_C[histogram].sum()) / count),
        aspect_ratio=width / height,
        phash=_phash(grey) if variance >= _FLAT * _FLAT and min(grey.shape) >= 2 else None,
        highlights=highlights / 255.0,
        shadows=shadows / 255.0,
    )


def _mean_var(values: np.ndarray) -> tuple[float, float]:
    """Mean and variance through one sum and one dot product (numpy's own mean, var and std cost
    10-25 us each on the few thousand values measured here)."""
    flat = values.ravel()
    mean = float(flat.sum()) / flat.size
    return mean, max(0.0, float(np.dot(flat, flat)) / flat.size - mean * mean)


def phash(grey: Image.Image | np.ndarray) -> str | None:
    """The DCT perceptual hash of luma (an "L" image or a 2-D array), 16 hex digits; None when flat.

    imagehash's phash: the 8x8 lowest frequencies of the 2-D DCT, each bit set when its
    coefficient is above their median. Taken straight from the analysis copy (the basis spans the
    whole width and height, as after imagehash's squash to 32x32), which saves a resize.
    """
    pixels = np.asarray(grey.convert("L") if isinstance(grey, Image.Image) else grey, dtype=np.float64)
    if min(pixels.shape) < 2 or _mean_var(pixels)[1] < _FLAT * _FLAT:
        return None  # Every bit would be rounding noise.
    return _phash(pixels)


def _phash(pixels: np.ndarray) -> str:
    height, width = pixels.shape
    low = (_dct_rows(height) @ pixels @ _dct_rows(width).T).ravel()
    middle = np.sort(low)
    return np.packbits(low > (middle[31] + middle[32]) / 2).tobytes().hex()


def image_flags(props: PixelProperties, thresholds: FlagThresholds) -> dict[str, str]:
    """The flags one image earns by itself, each with its reason."""
    found = {}
    if props.highlights < thresholds.dark:
        found[spec.DARK] = (
            f"the brightest 1% of pixels reach only {props.highlights:.2f} of full brightness "
            f"(limit {thresholds.dark:g})"
        )
    if props.shadows > thresholds.light:
        found[spec.LIGHT] = (
            f"the darkest 5% of pixels are at {props.shadows:.2f} of full brightness or more "
            f"(limit {thresholds.light:g})"
        )
    if props.entropy < thresholds.low_information:
        found[spec.LOW_INFORMATION] = (
            f"grey-level entropy {props.entropy:.2f} bits (limit {thresholds.low_information:g})"
        )
    elongation = max(props.aspect_ratio, 1 / props.aspect_ratio)
    if elongation > thresholds.odd_aspect_ratio:
        found[spec.ODD_ASPECT_RATIO] = (
            f"aspect ratio {elongation:.2f}:1 (limit {thresholds.odd_aspect_ratio:g}:1)"
        )
    return found


def flag_columns(flags: dict[str, str]) -> dict[str, Any]:
    """Catalog columns of one image's flags: every flag's boolean and the reasons."""
    columns: dict[str, Any] = {name: name in flags for name in spec.FLAGS}
    columns[spec.FLAG_REASONS] = "; ".join(f"{name}: {reason}" for name, reason in flags.items()) or None
    return columns


def flag_dataset(
    rows: list[dict[str, Any]], thresholds: FlagThresholds, channels: int
) -> list[dict[str, Any]]:
    """Catalog rows with the flags judged against the dataset added: blurry, grayscale, near duplicates.

    Only ingested rows with properties take part; the others are returned as they are. Blur and
    grey are not judged on images flagged dark, light or low_information (crushed detail and
    colour; their exposure is the finding); blur is judged against the median sharpness of the
    others. A dataset is a colour one when its images have three channels and fewer than half are
    grey. Each near duplicate names the closest image before it in path order (ties:
    the first path), so one image of a group stays unflagged, as with exact duplicates.
    """
    rows = [dict(r) for r in rows]
    measured = [r for r in rows if r.get(spec.STATUS) == spec.INGESTED and r.get(spec.SHARPNESS) is not None]
    added: dict[int, dict[str, str]] = {id(r): {} for r in measured}

    # Exposure flags are the finding on a dark, light or flat image: its detail and colour are
    # crushed, so blur and grey are not judged on it (nor does it move the median).
    judged = [r for r in measured if not any(r.get(f) for f in (spec.LOW_INFORMATION, spec.DARK, spec.LIGHT))]
    median = float(np.median([r[spec.SHARPNESS] for r in judged])) if judged else 0.0
    for r in judged:
        if median > 0 and r[spec.SHARPNESS] < thresholds.blurry * median:
            added[id(r)][spec.BLURRY] = (
                f"sharpness {r[spec.SHARPNESS]:.3g} is {r[spec.SHARPNESS] / median:.2f}x the dataset's "
                f"median {median:.3g} (limit {thresholds.blurry:g}x)"
            )

    grey = [r for r in measured if r[spec.COLOURFULNESS] < thresholds.grayscale]
    if channels == 3 and 2 * len(grey) < len(measured):
        judged_ids = {id(r) for r in judged}
        for r in (r for r in grey if id(r) in judged_ids):
            added[id(r)][spec.GRAYSCALE] = (
                f"colourfulness {r[spec.COLOURFULNESS]:.2f} (limit {thresholds.grayscale:g}) "
                f"in a colour dataset ({len(measured) - len(grey)} of {len(measured)} images in colour)"
            )

    hashed = sorted((r for r in measured if r.get(spec.PHASH)), key=lambda r: r[spec.PATH])
    first, second, distance = near_duplicate_pairs(
        hash_array(r[spec.PHASH] for r in hashed), thresholds.near_duplicate
    )
    nearest: dict[int, tuple[int, int]] = {}
    for a, b, d in zip(first.tolist(), second.tolist(), distance.tolist()):
        # a < b in path order: b is the near duplicate of a.
        if b not in nearest or (d, a) < nearest[b]:
            nearest[b] = (d, a)
    for b, (d, a) in nearest.items():
        row = hashed[b]
        row[spec.NEAR_DUPLICATE_OF] = hashed[a][spec.PATH]
        row[spec.NEAR_DUPLICATE_DISTANCE] = d
        added[id(row)]["near_duplicate_of"] = f"pHash distance {d} to {hashed[a][spec.PATH]}"

    for r in measured:
        for name, reason in added[id(r)].items():
            if name in spec.FLAGS:
                r[name] = True
            text = f"{name}: {reason}"
            r[spec.FLAG_REASONS] = f"{r[spec.FLAG_REASONS]}; {text}" if r.get(spec.FLAG_REASONS) else text
    return rows


def hash_array(hashes: Iterable[str]) -> np.ndarray:
    """Hex pHashes as a uint64 array."""
    return np.array([int(h, 16) for h in hashes], dtype=np.uint64)


_M1, _M2, _M4, _H01 = (
    np.uint64(v) for v in (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101)
)


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy 1.26 has no bitwise_count)."""
    x = values - ((values >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return ((x * _H01) >> np.uint64(56)).astype(np.int64)


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) of ``hashes`` (uint64) within ``max_distance`` bits, with its distance.

    Exact, without comparing all n^2 pairs: cut into max_distance + 1 bands of bits, two hashes
    within the distance agree on at least one whole band (pigeonhole), so only hashes sharing a
    band's value are compared. Sorted by (i, j).
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    found: list[np.ndarray] = []
    bands = max_distance + 1
    start = 0
    for band in range(bands):
        width = 64 // bands + (1 if band < 64 % bands else 0)
        keys = (hashes >> np.uint64(start)) & np.uint64((1 << width) - 1)
        start += width
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        offset = 1
        while offset < n:
            # Sorted keys: when no key equals the one `offset` places on, no run is that long.
            same = ordered[offset:] == ordered[:-offset]
            if not same.any():
                break
            a, b = order[:-offset][same], order[offset:][same]
            close = popcount(hashes[a] ^ hashes[b]) <= max_distance
            low, high = np.minimum(a[close], b[close]), np.maximum(a[close], b[close])
            found.append(low.astype(np.int64) * n + high)
            offset += 1
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    pairs = np.unique(np.concatenate(found))
    first, second = pairs // n, pairs % n
    return first, second, popcount(hashes[first] ^ hashes[second])
