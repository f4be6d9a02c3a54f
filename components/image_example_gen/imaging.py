"""Decode, verify and normalise one image: the heart of ingestion, free of TFX and Beam.

``inspect_image(data, options)`` either returns an :class:`InspectedImage` whose ``encoded`` bytes
``tf.io.decode_image`` decodes to exactly (height, width, channels), or raises :class:`Rejected`
with a quarantine reason from ``spec``.

    >>> inspected = inspect_image(open("cat.jpg", "rb").read(), ImageOptions(channels=3))
    >>> inspected.width, inspected.height, inspected.format
    (640, 480, 'jpeg')
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from typing import Any

import numpy as np
import pillow_heif
from PIL import Image, ImageFile, UnidentifiedImageError

from components.image_example_gen import pixels as pixels_lib
from components.image_example_gen import spec

# HEIC/HEIF, phones' default photo format, through its Pillow plugin (libheif); Pillow reads AVIF
# itself. The plugin applies the container's rotation and mirroring while decoding, sets the
# decoded image's Exif orientation to 1 and keeps the file's in ``info["original_orientation"]``.
pillow_heif.register_heif_opener()

# The pixel limit (options.max_pixels) is checked by inspect_image from the header, before any
# pixel is decoded. Pillow's own decompression-bomb guard stays on for every program that imports
# cvpipe: an image past it (over 2 x Image.MAX_IMAGE_PIXELS) is quarantined as too_many_pixels.
# A truncated file must fail to load rather than be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Formats tf.io.decode_image decodes to a 3-D tensor; everything else is transcoded to PNG.
_TF_NATIVE_FORMATS = {"JPEG": "jpeg", "PNG": "png"}
_MODE_FOR_CHANNELS = {1: "L", 3: "RGB"}

_EXIF_MAKE = 0x010F
_EXIF_MODEL = 0x0110
_EXIF_DATETIME = 0x0132
_EXIF_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_EXIF_DATETIME_ORIGINAL = 0x9003
_GPS_IFD = 0x8825


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """How images are checked and normalised.

    channels: 3 (RGB) or 1 (grey); every ingested image is converted to this layout.
    max_pixels: width * height above this is quarantined (decompression bomb guard), read from the
      header before decoding.
    min_width, min_height: smaller images (after Exif orientation) are quarantined.
    allowed_formats: Pillow format names accepted as input; other image formats are quarantined.
    background: RGB colour that transparent pixels are composited over.
    pixel_properties: measure brightness, contrast, sharpness, colourfulness, entropy, aspect
      ratio and a perceptual hash (pixels.py) on the pixels decoded for verification.

    The defaults are those of ``ingest:`` in pipelines/configs/default.yaml, which a pipeline run
    passes in (IngestConfig.to_options); tests/test_config.py pins the two equal.
    """

    channels: int = 3
    max_pixels: int = 50_000_000
    min_width: int = 16
    min_height: int = 16
    allowed_formats: tuple[str, ...] = (
        "JPEG",
        "MPO",
        "PNG",
        "GIF",
        "BMP",
        "TIFF",
        "WEBP",
        "PPM",
        "HEIF",
        "AVIF",
    )
    background: tuple[int, int, int] = (255, 255, 255)
    pixel_properties: bool = True

    def __post_init__(self):
        if self.channels not in _MODE_FOR_CHANNELS:
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.max_pixels <= 0:
            raise ValueError(f"max_pixels must be positive, got {self.max_pixels}")
        if self.min_width < 1 or self.min_height < 1:
            raise ValueError("min_width and min_height must be at least 1")


class Rejected(Exception):
    """An image that must be quarantined; ``reason`` is one of the spec reasons."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class InspectedImage:
    encoded: bytes
    format: str  # "jpeg" or "png": what ``encoded`` is.
    original_format: str  # lower-case Pillow format of the input file.
    width: int
    height: int
    channels: int
    transcoded: bool
    metadata: dict[str, Any]  # Exif fields from spec (camera, datetime, orientation, GPS).
    pixels: pixels_lib.PixelProperties | None = None  # With options.pixel_properties.


def inspect_image(data: bytes, options: ImageOptions) -> InspectedImage:
    """Verifies that ``data`` is a whole, decodable image and normalises it for TensorFlow."""
    if not data:
        raise Rejected(spec.EMPTY_FILE, "file has zero bytes")
    try:
        return _inspect(data, options)
    except Rejected:
        raise
    except Exception as e:  # Whatever a hostile file provokes in a decoder is a quarantine reason.
        raise Rejected(spec.CORRUPT_IMAGE, f"unexpected decoder failure: {_describe(e)}") from None


def _inspect(data: bytes, options: ImageOptions) -> InspectedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise Rejected(spec.TOO_MANY_PIXELS, f"Pillow's decompression-bomb guard: {_describe(e)}") from None
    except UnidentifiedImageError:
        known = sniff_format(data)
        if known:
            raise Rejected(spec.CORRUPT_IMAGE, f"{known} signature but the header does not parse") from None
        raise Rejected(spec.NOT_AN_IMAGE, "not a recognised image format") from None
    except Exception as e:  # Pillow raises many types on malformed headers.
        raise Rejected(spec.CORRUPT_IMAGE, f"header unreadable: {_describe(e)}") from None

    fmt = image.format or "UNKNOWN"
    if fmt not in options.allowed_formats:
        raise Rejected(spec.UNSUPPORTED_FORMAT, f"format {fmt} is not in {list(options.allowed_formats)}")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise Rejected(spec.CORRUPT_IMAGE, f"invalid size {width}x{height}")
    if width * height > options.max_pixels:
        raise Rejected(
            spec.TOO_MANY_PIXELS,
            f"{width}x{height} = {width * height} pixels exceeds max_pixels={options.max_pixels}",
        )

    metadata = read_exif(image)
    orientation = metadata.get(spec.ORIENTATION) or 1
    if "original_orientation" in image.info:  # HEIF: already applied by the decoder.
        metadata[spec.ORIENTATION] = _valid_orientation(image.info["original_orientation"])
        orientation = 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if width < options.min_width or height < options.min_height:
        raise Rejected(
            spec.TOO_SMALL,
            f"{width}x{height} is below the minimum {options.min_width}x{options.min_height}",
        )

    target_mode = _MODE_FOR_CHANNELS[options.channels]
    passthrough = (
        fmt in _TF_NATIVE_FORMATS
        and orientation == 1
        and image.mode == target_mode
        and "transparency" not in image.info
        and getattr(image, "n_frames", 1) == 1
    )
    if passthrough and fmt == "JPEG":
        # TensorFlow's own decoder is the one that must accept the file later. At 1/8 scale it
        # still entropy-decodes every scan, so truncation fails exactly as in a full decode; the
        # pixel properties are measured on that decode (at 1/4 to 1/1 for images under 512 pixels).
        ratio = pixels_lib.block_factor(width, height) if options.pixel_properties else 8
        decoded = _verify_jpeg_with_tensorflow(data, width, height, options.channels, ratio)
        measured = _measure(decoded, width, height, options)
        return InspectedImage(
            data, "jpeg", "jpeg", width, height, options.channels, False, metadata, measured
        )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
    except Exception as e:
        message = _describe(e)
        reason = spec.TRUNCATED_IMAGE if "truncated" in message.lower() else spec.CORRUPT_IMAGE
        raise Rejected(reason, f"pixel data does not decode: {message}") from None

    if passthrough:
        # Pillow tolerates what libpng (TensorFlow's decoder, which reads the file in training)
        # refuses, e.g. a missing or truncated final chunk: the file must pass both.
        _verify_png_with_tensorflow(data, width, height, options.channels)
        measured = _measure(image, width, height, options)
        return InspectedImage(data, "png", "png", width, height, options.channels, False, metadata, measured)

    try:
        normalised = _normalise(image, orientation, options)
    except Exception as e:
        raise Rejected(spec.CORRUPT_IMAGE, f"cannot convert mode {image.mode}: {_describe(e)}") from None
    buffer = io.BytesIO()
    normalised.save(buffer, format="PNG", compress_level=1)
    return InspectedImage(
        encoded=buffer.getvalue(),
        format="png",
        original_format=fmt.lower(),
        width=normalised.width,
        height=normalised.height,
        channels=options.channels,
        transcoded=True,
        metadata=metadata,
        pixels=_measure(normalised, normalised.width, normalised.height, options),
    )


def _measure(decoded: Image.Image | np.ndarray, width: int, height: int, options: ImageOptions):
    """The pixel properties of pixels already decoded (a Pillow image or a (h, w, c) uint8 array)."""
    if not options.pixel_properties:
        return None
    if isinstance(decoded, np.ndarray):
        decoded = Image.fromarray(decoded[..., 0] if decoded.shape[-1] == 1 else decoded)
    return pixels_lib.measure(decoded, width=width, height=height)


def _verify_jpeg_with_tensorflow(data: bytes, width: int, height: int, channels: int, ratio: int = 8):
    """Decodes at 1/``ratio`` scale with TensorFlow, checks the shape; returns the pixels (numpy)."""
    import tensorflow as tf

    try:
        pixels = tf.io.decode_jpeg(data, channels=channels, ratio=ratio)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        ended = data.rstrip(b"\x00").endswith(b"\xff\xd9")
        reason = spec.CORRUPT_IMAGE if ended else spec.TRUNCATED_IMAGE
        message = str(e).strip().splitlines()[-1][:200]
        raise Rejected(reason, f"TensorFlow cannot decode the JPEG data: {message}") from None
    expected = (-(-height // ratio), -(-width // ratio), channels)
    if tuple(pixels.shape) != expected:
        raise Rejected(spec.CORRUPT_IMAGE, f"decoded shape {tuple(pixels.shape)} != header {expected}")
    return pixels.numpy()


def _verify_png_with_tensorflow(data: bytes, width: int, height: int, channels: int) -> None:
    import tensorflow as tf

    try:
        pixels = tf.io.decode_png(data, channels=channels)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        message = str(e).strip().splitlines()[-1][:200]
        raise Rejected(spec.CORRUPT_IMAGE, f"TensorFlow cannot decode the PNG data: {message}") from None
    if tuple(pixels.shape) != (height, width, channels):
        raise Rejected(
            spec.CORRUPT_IMAGE, f"decoded shape {tuple(pixels.shape)} != header {(height, width, channels)}"
        )


_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def sniff_format(data: bytes) -> str | None:
    """The image format a file's magic bytes claim, so a damaged image is told from a non-image."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":  # ISO base media: the major brand tells HEIF from AVIF (and video).
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIF"
        if brand in (b"avif", b"avis"):
            return "AVIF"
    return None


_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def _normalise(image: Image.Image, orientation: int, options: ImageOptions) -> Image.Image:
    """Applies Exif orientation and converts any mode to the configured channel layout."""
    if orientation != 1:
        image = _apply_orientation(image, orientation)
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _to_8bit_grey(image)
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA"):
        image = image.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("RGB")
    elif mode == "L" and "transparency" in image.info:
        image = image.convert("LA")
    elif mode == "RGB" and "transparency" in image.info:
        image = image.convert("RGBA")

    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*options.background, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")

    target_mode = _MODE_FOR_CHANNELS[options.channels]
    if image.mode != target_mode:
        image = image.convert(target_mode)
    return image


def _apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }[orientation]
    return image.transpose(method)


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """Scales 16-bit and 32-bit grey to 8 bits (Pillow's convert("L") would clip instead)."""
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and pixels.max(initial=0) > 255):
        pixels = pixels / 257.0
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="L")


def read_exif(image: Image.Image) -> dict[str, Any]:
    """Camera make/model, capture time (ISO 8601), orientation and signed decimal GPS.

    Malformed Exif never rejects an image: unreadable fields are left out.
    """
    out: dict[str, Any] = {}
    try:
        exif = image.getexif()
    except Exception:
        return out
    make = _clean_text(exif.get(_EXIF_MAKE))
    model = _clean_text(exif.get(_EXIF_MODEL))
    if make:
        out[spec.CAMERA_MAKE] = make
    if model:
        out[spec.CAMERA_MODEL] = model
    out[spec.ORIENTATION] = _valid_orientation(exif.get(_EXIF_ORIENTATION, 1))
    try:
        exif_ifd = exif.get_ifd(_EXIF_IFD)
    except Exception:
        exif_ifd = {}
    captured = parse_exif_datetime(exif_ifd.get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME))
    if captured:
        out[spec.CAPTURE_DATETIME] = captured
    try:
        gps = exif.get_ifd(_GPS_IFD)
    except Exception:
        gps = {}
    out.update(parse_gps(gps))
    return out


def _valid_orientation(value) -> int:
    try:
        orientation = int(value if value is not None else 1)
    except (TypeError, ValueError):
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def parse_gps(gps: dict) -> dict[str, float]:
    """Exif GPS IFD (tags 1-6) to signed decimal degrees and metres; invalid values are dropped."""
    out: dict[str, float] = {}
    lat = _dms_to_degrees(gps.get(2), gps.get(1), negative_ref="S", limit=90.0)
    lon = _dms_to_degrees(gps.get(4), gps.get(3), negative_ref="W", limit=180.0)
    if lat is not None and lon is not None:
        out[spec.GPS_LATITUDE] = lat
        out[spec.GPS_LONGITUDE] = lon
    altitude = _to_float(gps.get(6))
    if altitude is not None:
        ref = gps.get(5)
        if isinstance(ref, bytes):
            ref = ref[:1] == b"\x01"
        elif isinstance(ref, str):
            ref = ref.strip("\x00") == "1"
        out[spec.GPS_ALTITUDE] = -altitude if ref in (1, True) else altitude
    return out


def _dms_to_degrees(dms, ref, negative_ref: str, limit: float) -> float | None:
    if dms is None:
        return None
    try:
        parts = [_to_float(v) for v in (dms if isinstance(dms, (tuple, list)) else (dms,))]
    except TypeError:
        return None
    if not parts or any(p is None for p in parts) or len(parts) > 3:
        return None
    degrees = sum(p / 60.0**i for i, p in enumerate(parts))
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if isinstance(ref, str) and ref.strip("\x00 ").upper() == negative_ref:
        degrees = -degrees
    if not math.isfinite(degrees) or abs(degrees) > limit:
        return None
    return round(degrees, 7)


def _to_float(value) -> float | None:
    if value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return result if math.isfinite(result) else None


def parse_exif_datetime(value) -> str | None:
    """'YYYY:MM:DD HH:MM:SS' to 'YYYY-MM-DDTHH:MM:SS'; anything else (blank, zeros) to None."""
    text = _clean_text(value)
    if not text or len(text) < 19:
        return None
    date, _, clock = text[:19].partition(" ")
    pieces = date.split(":")
    if len(pieces) != 3 or not all(p.isdigit() for p in pieces) or pieces[0] == "0000":
        return None
    if not clock.replace(":", "").isdigit():
        return None
    return f"{pieces[0]}-{pieces[1]}-{pieces[2]}T{clock}"


def _clean_text(value) -> str | None:
    """An Exif ASCII value as text: it ends at its first NUL (Exif 2.3, 4.6.2: what follows is
    padding or garbage, e.g. ``ION230\\x00F`` is ``ION230``), surrounding spaces trimmed."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).split("\x00", 1)[0].strip()
    return text or None


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]
