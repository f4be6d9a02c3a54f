"""Pixel properties, flags and near duplicates (components/image_example_gen/pixels.py) on real photos."""

import io
import itertools
import os

import numpy as np
import pytest
import sklearn.datasets
from PIL import Image, ImageFilter

from components.image_example_gen import pixels, spec
from components.image_example_gen.imaging import ImageOptions, inspect_image
from tests.conftest import encode, gradient

PHOTOS = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
THRESHOLDS = pixels.FlagThresholds()


def photo(name: str = "china.jpg") -> Image.Image:
    """scikit-learn's two real JPEG photos (640x427)."""
    with Image.open(os.path.join(PHOTOS, name)) as image:
        return image.convert("RGB")


def measured(image: Image.Image) -> pixels.PixelProperties:
    return pixels.measure(image, width=image.width, height=image.height)


def distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.mark.parametrize("name", ["china.jpg", "flower.jpg"])
def test_an_ordinary_photo_is_not_flagged_and_its_degraded_copies_are(name):
    original = photo(name)
    props = measured(original)
    assert pixels.image_flags(props, THRESHOLDS) == {}
    assert 0.2 < props.brightness < 0.7 and props.contrast > 0.1 and props.colourfulness > 20
    assert props.entropy > 6 and props.aspect_ratio == pytest.approx(640 / 427)

    dark = measured(original.point(lambda v: v // 6))
    assert list(pixels.image_flags(dark, THRESHOLDS)) == [spec.DARK]
    assert "brightest 1% of pixels reach only" in pixels.image_flags(dark, THRESHOLDS)[spec.DARK]
    light = measured(original.point(lambda v: 215 + v // 6))
    assert list(pixels.image_flags(light, THRESHOLDS)) == [spec.LIGHT]
    flat = measured(Image.new("RGB", original.size, (120, 130, 140)))
    assert spec.LOW_INFORMATION in pixels.image_flags(flat, THRESHOLDS)
    assert flat.phash is None and flat.sharpness == 0 and flat.entropy == 0  # Nothing to hash.
    banner = original.crop((0, 0, 640, 120))
    assert list(pixels.image_flags(measured(banner), THRESHOLDS)) == [spec.ODD_ASPECT_RATIO]

    # Exposure and contrast do not change sharpness; blur does.
    assert measured(original.point(lambda v: 100 + v // 5)).sharpness == pytest.approx(
        props.sharpness, rel=0.1
    )
    blurred = measured(original.filter(ImageFilter.GaussianBlur(8)))
    assert blurred.sharpness < THRESHOLDS.blurry * props.sharpness
    grey = measured(original.convert("L").convert("RGB"))
    assert grey.colourfulness < THRESHOLDS.grayscale < props.colourfulness
    assert measured(original.convert("L")).colourfulness == 0


def test_perceptual_hash_survives_reencoding_resizing_and_small_crops_but_tells_photos_apart():
    original = photo()
    reference = measured(original).phash
    copies = {
        "jpeg quality 40": Image.open(io.BytesIO(encode(original, "JPEG", quality=40))),
        "half size": original.resize((320, 213)),
        "quarter size, re-encoded": Image.open(io.BytesIO(encode(original.resize((160, 107)), "JPEG"))),
        "2% cropped": original.crop((6, 4, 634, 423)),
        "blurred": original.filter(ImageFilter.GaussianBlur(2)),
    }
    for name, copy in copies.items():
        assert distance(reference, measured(copy.convert("RGB")).phash) <= THRESHOLDS.near_duplicate, name
    assert distance(reference, measured(photo("flower.jpg")).phash) > 20
    assert distance(reference, measured(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).phash) > 20


def brute_force(hashes, max_distance):
    return {
        (i, j, bin(int(a) ^ int(b)).count("1"))
        for (i, a), (j, b) in itertools.combinations(enumerate(hashes.tolist()), 2)
        if bin(int(a) ^ int(b)).count("1") <= max_distance
    }


@pytest.mark.parametrize("max_distance", [0, 3, 6, 12])
def test_near_duplicate_pairs_are_exactly_the_brute_force_pairs(max_distance):
    rng = np.random.default_rng(max_distance)
    base = rng.integers(0, 2**64, size=300, dtype=np.uint64)
    near = []
    for h in base[:60]:  # Twins at 0..14 bits, so some are in range and some are not.
        bits = rng.choice(64, size=rng.integers(0, 15), replace=False)
        near.append(int(h) ^ sum(1 << int(b) for b in bits))
    same = [int(base[0])] * 5  # A crowded bucket: many identical hashes.
    hashes = np.array([*base.tolist(), *near, *same], dtype=np.uint64)
    first, second, found = pixels.near_duplicate_pairs(hashes, max_distance)
    assert set(zip(first.tolist(), second.tolist(), found.tolist())) == brute_force(hashes, max_distance)
    assert (first < second).all()


def catalog(path, sharpness=1.0, colourfulness=30.0, phash="0f0f0f0f0f0f0f0f", **extra):
    return {
        spec.PATH: path,
        spec.STATUS: spec.INGESTED,
        spec.SHARPNESS: sharpness,
        spec.COLOURFULNESS: colourfulness,
        spec.PHASH: phash,
        spec.LOW_INFORMATION: False,
        spec.FLAG_REASONS: None,
        spec.NEAR_DUPLICATE_OF: None,
        spec.NEAR_DUPLICATE_DISTANCE: None,
        **{name: False for name in spec.FLAGS if name != spec.LOW_INFORMATION},
        **extra,
    }


def test_dataset_flags_judge_blur_against_the_median_and_grey_only_in_a_colour_dataset():
    hashes = [f"{i * 0x0101010101010101 ^ 0x00FF00FF00FF00FF:016x}" for i in range(1, 9)]
    rows = [catalog(f"sharp/{i}.jpg", sharpness=1.0 + i / 10, phash=h) for i, h in enumerate(hashes)]
    rows += [
        catalog("soft/blurred.jpg", sharpness=0.2, phash="123456789abcdef0"),
        catalog("soft/flat.png", sharpness=0.0, phash=None, low_information=True),  # Not judged blurry.
        catalog("soft/dark.jpg", sharpness=0.1, colourfulness=0.5, phash=None, dark=True),  # Nor grey.
        catalog("grey/photo.jpg", colourfulness=0.4, phash="fedcba9876543210"),
        {spec.PATH: "broken.jpg", spec.STATUS: spec.QUARANTINED},
    ]
    flagged = {r[spec.PATH]: r for r in pixels.flag_dataset(rows, THRESHOLDS, channels=3)}
    assert [p for p, r in flagged.items() if r.get(spec.BLURRY)] == ["soft/blurred.jpg"]
    assert "0.16x the dataset's median 1.25" in flagged["soft/blurred.jpg"][spec.FLAG_REASONS]
    assert [p for p, r in flagged.items() if r.get(spec.GRAYSCALE)] == ["grey/photo.jpg"]
    assert flagged["broken.jpg"] == {spec.PATH: "broken.jpg", spec.STATUS: spec.QUARANTINED}

    # Mostly grey images: a grey dataset stored as RGB, where grey is not a flaw.
    grey_rows = [catalog(f"{i}.png", colourfulness=0.0, phash=None) for i in range(5)]
    assert not any(r[spec.GRAYSCALE] for r in pixels.flag_dataset(grey_rows, THRESHOLDS, channels=3))


def test_a_near_duplicate_names_the_closest_earlier_path():
    rows = [
        catalog("a.jpg", phash="ffff0000ffff0000"),
        catalog("b.jpg", phash="ffff0000ffff0007"),  # 3 bits from a.
        catalog("c.jpg", phash="ffff0000ffff0001"),  # 1 bit from a, 2 from b: a is closest.
        catalog("d.jpg", phash="0123456789abcdef"),
    ]
    flagged = {r[spec.PATH]: r for r in pixels.flag_dataset(rows, THRESHOLDS, channels=3)}
    assert flagged["a.jpg"][spec.NEAR_DUPLICATE_OF] is None  # The first of the group stays clean.
    assert (flagged["b.jpg"][spec.NEAR_DUPLICATE_OF], flagged["b.jpg"][spec.NEAR_DUPLICATE_DISTANCE]) == (
        "a.jpg",
        3,
    )
    assert (flagged["c.jpg"][spec.NEAR_DUPLICATE_OF], flagged["c.jpg"][spec.NEAR_DUPLICATE_DISTANCE]) == (
        "a.jpg",
        1,
    )
    assert flagged["c.jpg"][spec.FLAG_REASONS] == "near_duplicate_of: pHash distance 1 to a.jpg"
    assert flagged["d.jpg"][spec.NEAR_DUPLICATE_OF] is None


def noisy(width, height, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    image = gradient(width, height, "RGB")
    pixels_ = np.clip(np.asarray(image, dtype=np.int16) + rng.integers(-20, 20, (height, width, 3)), 0, 255)
    return Image.fromarray(pixels_.astype(np.uint8), "RGB").convert(mode)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    "name,data",
    [
        ("tiny jpeg", lambda: encode(noisy(16, 16), "JPEG")),
        ("large jpeg", lambda: encode(noisy(4000, 3000), "JPEG", quality=80)),
        ("strip jpeg", lambda: encode(noisy(2000, 16), "JPEG")),
        ("grey jpeg", lambda: encode(noisy(300, 200, "L"), "JPEG")),
        ("png with alpha", lambda: encode(noisy(90, 60, "RGBA"), "PNG")),
        ("grey png", lambda: encode(noisy(70, 50, "L"), "PNG")),
        (
            "16-bit png",
            lambda: encode(Image.fromarray(np.asarray(noisy(40, 40, "L"), np.uint16) * 257), "PNG"),
        ),
        ("palette gif", lambda: encode(noisy(64, 48).convert("P"), "GIF")),
        ("cmyk tiff", lambda: encode(noisy(40, 30).convert("CMYK"), "TIFF")),
        ("flat png", lambda: encode(Image.new("RGB", (32, 32), (9, 9, 9)), "PNG")),
    ],
)
def test_every_kind_of_image_gets_properties_in_range(name, data, channels):
    inspected = inspect_image(data(), ImageOptions(channels=channels))
    props = inspected.pixels
    assert 0 <= props.brightness <= 1 and 0 <= props.contrast <= 0.5 and 0 <= props.entropy <= 8
    assert props.sharpness >= 0 and props.colourfulness >= 0
    assert props.aspect_ratio == pytest.approx(inspected.width / inspected.height)
    assert all(np.isfinite(getattr(props, f)) for f in spec.PIXEL_PROPERTIES)
    assert (props.phash is None) == (name == "flat png")
    if channels == 1:
        assert props.colourfulness == 0


def test_pass_through_jpeg_is_measured_on_the_verification_decode_like_a_full_decode():
    data = encode(photo(), "JPEG", quality=90)
    inspected = inspect_image(data, ImageOptions())
    assert not inspected.transcoded  # Kept byte for byte: only TensorFlow's scaled decode was made.
    full = measured(Image.open(io.BytesIO(data)).convert("RGB"))
    for name in ("brightness", "contrast", "entropy", "sharpness", "colourfulness"):
        assert getattr(inspected.pixels, name) == pytest.approx(getattr(full, name), rel=0.05), name
    assert distance(inspected.pixels.phash, full.phash) <= 2
    sizes = ((4000, 3000), (640, 427), (256, 64), (200, 100), (64, 48))
    assert [pixels.block_factor(*size) for size in sizes] == [8, 8, 4, 2, 1]


def test_properties_can_be_turned_off():
    inspected = inspect_image(encode(photo(), "JPEG"), ImageOptions(pixel_properties=False))
    assert inspected.pixels is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"dark": 1.5}, "flags.dark: 0-1"),
        ({"odd_aspect_ratio": 0.5}, "flags.odd_aspect_ratio: at least 1"),
        ({"near_duplicate": 40}, "flags.near_duplicate: a distance 0-32"),
    ],
)
def test_flag_thresholds_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pixels.FlagThresholds(**kwargs)
