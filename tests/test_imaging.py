"""inspect_image: verification, normalisation and Exif parsing of single images."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps, TiffImagePlugin

from components.image_example_gen import spec
from components.image_example_gen.imaging import (
    ImageOptions,
    Rejected,
    inspect_image,
    parse_exif_datetime,
    parse_gps,
    sniff_format,
)
from tests.conftest import encode, gradient

OPTIONS = ImageOptions(channels=3, min_width=8, min_height=8)


def decoded(inspected):
    tensor = tf.io.decode_image(inspected.encoded, expand_animations=False).numpy()
    assert tensor.shape == (inspected.height, inspected.width, inspected.channels)
    return tensor


def rejected_reason(data, options=OPTIONS):
    with pytest.raises(Rejected) as info:
        inspect_image(data, options)
    return info.value.reason


def test_rgb_jpeg_passes_through_unchanged(jpeg_bytes):
    inspected = inspect_image(jpeg_bytes, OPTIONS)
    assert inspected.encoded == jpeg_bytes
    assert (inspected.format, inspected.original_format, inspected.transcoded) == ("jpeg", "jpeg", False)
    assert (inspected.width, inspected.height) == (48, 32)
    decoded(inspected)


def test_zero_byte_file_is_quarantined_as_empty():
    assert rejected_reason(b"") == spec.EMPTY_FILE


def test_text_file_is_quarantined_as_not_an_image():
    assert rejected_reason(b"name,label\ncat.jpg,cat\n") == spec.NOT_AN_IMAGE


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpeg_is_quarantined_with_reason(jpeg_bytes, cut):
    big = encode(gradient(256, 192), "JPEG", quality=95)
    assert rejected_reason(big[: int(len(big) * cut)]) == spec.TRUNCATED_IMAGE


def test_truncated_png_is_quarantined():
    data = encode(gradient(128, 96), "PNG")
    assert rejected_reason(data[: len(data) // 2]) in (spec.TRUNCATED_IMAGE, spec.CORRUPT_IMAGE)


def _png_chunks(data):
    import struct

    chunks, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        chunks.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + length]))
        i += 12 + length
    return chunks


def _png(chunks):
    import struct
    import zlib

    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        for kind, body in chunks
    )


@pytest.mark.parametrize("damage", ["no_final_chunk", "truncated_final_chunk"])
def test_png_that_pillow_reads_but_tensorflow_cannot_is_quarantined_with_reason(damage):
    data = encode(gradient(48, 40), "PNG")
    if damage == "no_final_chunk":
        damaged = _png([c for c in _png_chunks(data) if c[0] != b"IEND"])
    else:
        damaged = data[:-6]
    image = Image.open(io.BytesIO(damaged))
    image.load()  # Pillow decodes every pixel...
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_png(damaged)  # ...the decoder training uses does not.
    with pytest.raises(Rejected) as info:
        inspect_image(damaged, OPTIONS)
    assert info.value.reason == spec.CORRUPT_IMAGE
    assert info.value.detail.startswith("TensorFlow cannot decode the PNG data")


def test_pillow_decompression_bomb_guard_stays_on_and_bombs_are_quarantined():
    assert Image.MAX_IMAGE_PIXELS is not None  # Importing cvpipe does not turn it off.
    chunks = _png_chunks(encode(gradient(16, 16), "PNG"))
    header = (20000).to_bytes(4, "big") * 2 + chunks[0][1][8:]  # 400 MP: past Pillow's own guard.
    data = _png([(b"IHDR", header), *chunks[1:]])
    options = ImageOptions(channels=3, min_width=8, min_height=8, max_pixels=10**9)
    with pytest.raises(Rejected) as info:
        inspect_image(bytes(data), options)
    assert info.value.reason == spec.TOO_MANY_PIXELS and "decompression-bomb" in info.value.detail


def test_corrupt_png_header_is_quarantined():
    data = bytearray(encode(gradient(), "PNG"))
    data[16:24] = b"\xff" * 8  # width and height in IHDR
    assert rejected_reason(bytes(data)) in (spec.CORRUPT_IMAGE, spec.TOO_MANY_PIXELS)


def test_format_outside_allowed_list_is_unsupported():
    icon = encode(gradient(32, 32), "ICO")
    assert rejected_reason(icon) == spec.UNSUPPORTED_FORMAT


def test_decompression_bomb_is_rejected_from_the_header_before_decoding():
    bomb = encode(Image.new("L", (9000, 6000)), "PNG", compress_level=9)
    assert len(bomb) < 200_000
    reason = rejected_reason(bomb, ImageOptions(max_pixels=50_000_000))
    assert reason == spec.TOO_MANY_PIXELS


def test_image_below_minimum_size_is_too_small():
    tiny = encode(gradient(10, 40), "PNG")
    assert rejected_reason(tiny, ImageOptions(min_width=16, min_height=16)) == spec.TOO_SMALL


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_orientation_is_applied(orientation):
    source = gradient(48, 32)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(source, "PNG", exif=exif)
    inspected = inspect_image(data, OPTIONS)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    pixels = decoded(inspected)
    assert pixels.shape == expected.shape
    assert (inspected.width, inspected.height) == ((32, 48) if orientation >= 5 else (48, 32))
    np.testing.assert_array_equal(pixels, expected)
    assert inspected.metadata[spec.ORIENTATION] == orientation


@pytest.mark.parametrize(
    "make,fmt",
    [
        (lambda: gradient(mode="CMYK"), "JPEG"),
        (lambda: gradient(mode="L"), "JPEG"),
        (lambda: gradient(mode="RGBA"), "PNG"),
        (lambda: gradient(mode="LA"), "PNG"),
        (lambda: gradient().quantize(16), "PNG"),
        (lambda: gradient().quantize(16), "GIF"),
        (lambda: gradient(), "TIFF"),
        (lambda: gradient(), "BMP"),
        (lambda: gradient(), "WEBP"),
        (lambda: gradient(mode="1"), "PNG"),
    ],
)
def test_any_mode_and_format_becomes_decodable_rgb(make, fmt):
    inspected = inspect_image(encode(make(), fmt), OPTIONS)
    assert inspected.channels == 3
    assert inspected.original_format == fmt.lower()
    decoded(inspected)


def test_sixteen_bit_grey_is_scaled_not_clipped():
    values = np.full((20, 20), 65535, dtype=np.uint16)
    values[:10] = 32896  # 128 * 257
    data = encode(Image.fromarray(values), "PNG")
    inspected = inspect_image(data, ImageOptions(channels=1, min_width=8, min_height=8))
    pixels = decoded(inspected)
    assert pixels[0, 0, 0] == 128 and pixels[-1, -1, 0] == 255


def test_transparent_pixels_are_composited_over_the_background():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    inspected = inspect_image(
        encode(rgba, "PNG"), ImageOptions(background=(0, 0, 255), min_width=8, min_height=8)
    )
    assert decoded(inspected)[0, 0].tolist() == [0, 0, 255]


def test_grey_layout_converts_colour_images():
    inspected = inspect_image(encode(gradient(), "JPEG"), ImageOptions(channels=1, min_width=8, min_height=8))
    assert inspected.channels == 1 and inspected.format == "png"
    decoded(inspected)


def _rational(value, denominator=10000):
    return TiffImagePlugin.IFDRational(int(round(value * denominator)), denominator)


def test_camera_exif_and_gps_are_read_with_signs():
    exif = Image.Exif()
    exif[0x010F] = "RaspberryPi\x00"
    exif[0x0110] = "RP_imx219"
    exif.get_ifd(0x8769)[0x9003] = "2026:05:01 06:07:08"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "S", (_rational(33, 1), _rational(52, 1), _rational(4.2))
    gps[3], gps[4] = "W", (_rational(151, 1), _rational(12, 1), _rational(36.0))
    gps[5], gps[6] = b"\x01", _rational(3.5, 10)
    inspected = inspect_image(encode(gradient(), "JPEG", exif=exif), OPTIONS)
    meta = inspected.metadata
    assert meta[spec.CAMERA_MAKE] == "RaspberryPi" and meta[spec.CAMERA_MODEL] == "RP_imx219"
    assert meta[spec.CAPTURE_DATETIME] == "2026-05-01T06:07:08"
    assert meta[spec.GPS_LATITUDE] == pytest.approx(-(33 + 52 / 60 + 4.2 / 3600), abs=1e-6)
    assert meta[spec.GPS_LONGITUDE] == pytest.approx(-(151 + 12 / 60 + 36 / 3600), abs=1e-6)
    assert meta[spec.GPS_ALTITUDE] == pytest.approx(-3.5)


def test_exif_text_ends_at_its_first_nul_and_is_trimmed():
    exif = Image.Exif()
    exif[0x010F] = "  NIKON CORPORATION  "
    exif[0x0110] = "ION230\x00F"  # A real camera's model: what follows the NUL is not the model.
    meta = inspect_image(encode(gradient(), "JPEG", exif=exif), OPTIONS).metadata
    assert meta[spec.CAMERA_MAKE] == "NIKON CORPORATION" and meta[spec.CAMERA_MODEL] == "ION230"


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_photos_heic_and_avif_are_read_upright_with_camera_and_gps(fmt):
    # A 48x32 photo taken with the phone turned (Exif orientation 6: shown rotated 90 degrees
    # clockwise), as phones write them: HEIC (pillow-heif turns the orientation into the
    # container's rotation) or AVIF (Pillow keeps it in Exif).
    photo = gradient(48, 32)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15 Pro\x00garbage"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (_rational(10, 1), _rational(30, 1), _rational(0, 1))
    gps[3], gps[4] = "W", (_rational(20, 1), _rational(15, 1), _rational(0, 1))
    data = encode(photo, fmt, exif=exif.tobytes(), quality=95)
    assert sniff_format(data) == fmt

    inspected = inspect_image(data, OPTIONS)
    assert inspected.original_format == fmt.lower() and inspected.format == "png" and inspected.transcoded
    assert (inspected.width, inspected.height) == (32, 48)  # Displayed upright, once.
    upright = np.asarray(photo.transpose(Image.Transpose.ROTATE_270)).astype(int)
    assert np.abs(decoded(inspected).astype(int) - upright).mean() < 12
    meta = inspected.metadata
    assert meta[spec.ORIENTATION] == 6
    assert meta[spec.CAMERA_MAKE] == "Apple" and meta[spec.CAMERA_MODEL] == "iPhone 15 Pro"
    assert meta[spec.GPS_LATITUDE] == pytest.approx(10.5) and meta[spec.GPS_LONGITUDE] == pytest.approx(
        -20.25
    )


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_truncated_phone_photo_is_quarantined_as_damaged_not_as_a_non_image(fmt):
    data = encode(gradient(64, 48), fmt, quality=90)
    with pytest.raises(Rejected) as rejected:
        inspect_image(data[: len(data) // 2], OPTIONS)
    assert rejected.value.reason in (spec.CORRUPT_IMAGE, spec.TRUNCATED_IMAGE)


def test_invalid_gps_values_are_dropped_not_fatal():
    assert parse_gps({1: "N", 2: (_rational(95, 1), 0, 0), 3: "E", 4: (1, 2, 3)}) == {}
    assert parse_gps({1: "N", 2: (TiffImagePlugin.IFDRational(1, 0), 0, 0), 3: "E", 4: (1, 0, 0)}) == {}
    assert parse_gps({2: "garbage", 4: None}) == {}
    assert parse_gps({1: "N", 2: (10, 30, 0), 3: "E", 4: (20, 15, 0)}) == {
        spec.GPS_LATITUDE: 10.5,
        spec.GPS_LONGITUDE: 20.25,
    }


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("2024:02:29 23:59:01", "2024-02-29T23:59:01"),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        (b"2020:01:02 03:04:05\x00", "2020-01-02T03:04:05"),
        (None, None),
    ],
)
def test_exif_datetime_parsing(raw, expected):
    assert parse_exif_datetime(raw) == expected


def test_image_options_reject_bad_channels():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        ImageOptions(channels=2)


def test_multi_picture_jpeg_from_cameras_keeps_the_first_picture():
    first, second = gradient(48, 32), gradient(48, 32).transpose(Image.Transpose.ROTATE_180)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    inspected = inspect_image(data, OPTIONS)
    assert inspected.original_format == "mpo" and inspected.format == "png"
    assert np.abs(decoded(inspected).astype(int) - np.asarray(first).astype(int)).mean() < 8
