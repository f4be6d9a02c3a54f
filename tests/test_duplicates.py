"""Near duplicates confirmed on pixels, and label conflicts (components/data_checks/duplicates.py)."""

import io

import numpy as np
import pytest
from PIL import Image

from components.data_checks import checks, duplicates
from components.image_example_gen import pixels, spec


def layout(seed: int, size=(320, 256)) -> np.ndarray:
    """A smooth large-scale layout (what a pHash sees): the same seed, the same layout."""
    coarse = np.random.default_rng(seed).uniform(40, 215, (5, 4, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC), dtype=np.float64)


def textured(layout_seed: int, texture_seed: int, size=(320, 256)) -> Image.Image:
    """A photo-like image: a layout plus fine texture (what tells two images of one layout apart)."""
    rng = np.random.default_rng(texture_seed)
    width, height = size
    texture = Image.fromarray(rng.uniform(0, 255, (height // 3, width // 3)).astype(np.uint8))
    fine = np.asarray(texture.resize(size, Image.Resampling.BICUBIC), dtype=np.float64)[..., None] - 128
    return Image.fromarray(np.clip(layout(layout_seed, size) + 0.15 * fine, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def copies(image: Image.Image) -> dict[str, bytes]:
    width, height = image.size
    crop = (
        round(0.05 * width),
        round(0.05 * height),
        width - round(0.05 * width),
        height - round(0.05 * height),
    )
    return {
        "reencode": jpeg(image, 75),
        "half": jpeg(image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)),
        "crop": jpeg(image.crop(crop)),
    }


def phash(data: bytes) -> str:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return pixels.measure(image, width=image.width, height=image.height).phash


def distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    original = textured(1, 10)
    return {
        "original.jpg": jpeg(original),
        **{f"{kind}.jpg": data for kind, data in copies(original).items()},
        "lookalike.jpg": jpeg(textured(1, 11)),  # The same layout, another texture: another picture.
        "other.jpg": jpeg(textured(2, 12)),
    }


def row(path, split, label, data, status=spec.INGESTED, duplicate_of=None):
    return {
        spec.PATH: path,
        spec.STATUS: status,
        spec.SPLIT: split,
        spec.LABEL: label,
        spec.SHA256: str(hash(data)),
        spec.PHASH: phash(data) if status == spec.INGESTED else None,
        spec.DUPLICATE_OF: duplicate_of,
    }


def confirmer(images) -> duplicates.Confirmer:
    return duplicates.Confirmer(lambda path: images[path])


def candidate(images, first: str, second: str) -> bool:
    """Whether the pair is a pHash candidate: whole hashes, or one's whole and the other's centre."""
    found = [confirmer(images).hashes(path) for path in (first, second)]
    whole, centre = (np.array([h[k] for h in found], dtype=np.uint64) for k in (0, 1))
    return (0, 1) in duplicates.hash_candidates(whole, centre, duplicates.CANDIDATE_DISTANCE)


@pytest.mark.parametrize("kind", ["reencode", "half", "crop"])
def test_confirmation_accepts_a_reencoded_half_size_or_5_percent_cropped_copy(images, kind):
    value = confirmer(images).score("original.jpg", f"{kind}.jpg")
    assert value >= duplicates.MIN_SCORE, value
    assert candidate(images, "original.jpg", f"{kind}.jpg")


def test_confirmation_rejects_a_different_image_of_the_same_layout(images):
    # The pHash sees the layout only: close enough to be a candidate, so the pixels must decide.
    assert distance(phash(images["original.jpg"]), phash(images["lookalike.jpg"])) <= 12
    assert candidate(images, "original.jpg", "lookalike.jpg")
    assert confirmer(images).score("original.jpg", "lookalike.jpg") < duplicates.MIN_SCORE
    assert confirmer(images).score("original.jpg", "other.jpg") < duplicates.MIN_SCORE


def test_unreadable_image_leaves_the_pair_unconfirmed(images):
    missing = duplicates.Confirmer(lambda path: images[path] if path != "gone.jpg" else b"not an image")
    assert missing.score("original.jpg", "gone.jpg") is None


def conflicts(rows, images):
    confirmed = duplicates.confirmed_pairs(rows, confirmer(images), fallback_distance=6)
    return checks.label_conflict(rows, checks.CheckOptions(), confirmed)


def test_label_conflict_fires_for_byte_identical_copies_under_two_labels_in_one_split(images):
    data = images["original.jpg"]
    rows = [
        row("cat/a.jpg", "train", "cat", data),
        # Ingestion dropped the second copy within the split, naming the first.
        row("dog/a.jpg", None, "dog", data, status=spec.DUPLICATE, duplicate_of="cat/a.jpg"),
        row("dog/b.jpg", "train", "dog", images["other.jpg"]),
    ]
    listed, found = conflicts(rows, images)
    assert [(a.check, a.severity, a.split) for a in found] == [(checks.LABEL_CONFLICT, checks.ERROR, "train")]
    assert "cat/a.jpg ('cat') = train dog/a.jpg ('dog')" in found[0].description
    (pair,) = listed["pairs"]
    assert (pair["kind"], pair["label"], pair["twin_label"], pair["twin_shown"]) == (
        "identical",
        "cat",
        "dog",
        "cat/a.jpg",  # The dropped copy is shown by the kept one's thumbnail.
    )


def test_label_conflict_fires_for_byte_identical_copies_under_two_labels_across_splits(images):
    data = images["original.jpg"]
    rows = [row("cat/a.jpg", "train", "cat", data), row("dog/a.jpg", "eval", "dog", data)]
    listed, found = conflicts(rows, images)
    assert [(a.check, a.severity, a.split) for a in found] == [(checks.LABEL_CONFLICT, checks.ERROR, "eval")]
    (pair,) = listed["pairs"]
    assert (pair["path"], pair["split"], pair["twin"], pair["twin_split"]) == (
        "dog/a.jpg",
        "eval",
        "cat/a.jpg",
        "train",
    )
    # The same bytes in two splits are also split_leakage, as before.
    assert checks.SPLIT_LEAKAGE in {a.check for a in checks.catalog_checks(rows, checks.CheckOptions())}


@pytest.mark.parametrize("split", ["train", "test"])
def test_label_conflict_fires_for_a_confirmed_near_duplicate_under_two_labels(images, split):
    rows = [
        row("original.jpg", "train", "cat", images["original.jpg"]),
        row("crop.jpg", split, "dog", images["crop.jpg"]),
    ]
    listed, found = conflicts(rows, images)
    assert [(a.check, a.severity, a.split) for a in found] == [(checks.LABEL_CONFLICT, checks.ERROR, split)]
    (pair,) = listed["pairs"]
    assert pair["kind"] == "near" and pair["confirm_score"] >= duplicates.MIN_SCORE
    assert {pair["label"], pair["twin_label"]} == {"cat", "dog"}


def test_a_confirmed_near_duplicate_across_splits_is_leakage_with_its_score(images):
    rows = [
        row("original.jpg", "train", "cat", images["original.jpg"]),
        row("crop.jpg", "eval", "cat", images["crop.jpg"]),
        row("other.jpg", "eval", "cat", images["other.jpg"]),
    ]
    confirmed = duplicates.confirmed_pairs(rows, confirmer(images), fallback_distance=6)
    options = checks.CheckOptions()
    pairs, found = checks.near_duplicate_leakage(rows, 6, options, confirmed=confirmed)
    assert [(a.check, a.severity, a.split) for a in found] == [
        (checks.NEAR_DUPLICATE_LEAKAGE, checks.WARNING, "eval")
    ]
    (pair,) = pairs["across_splits"]
    assert (pair["path"], pair["twin"]) == ("crop.jpg", "original.jpg")
    assert pair["confirm_score"] >= duplicates.MIN_SCORE
    assert pairs["confirm"]["min_score"] == options.near_duplicate_confirm
    assert checks.label_conflict(rows, options, confirmed)[1] == []  # One label: no conflict.


def test_look_alikes_with_close_hashes_are_not_flagged(images):
    rows = [
        row("cat/original.jpg", "train", "cat", images["original.jpg"]),
        row("dog/lookalike.jpg", "eval", "dog", images["lookalike.jpg"]),
    ]
    pictures = {"cat/original.jpg": images["original.jpg"], "dog/lookalike.jpg": images["lookalike.jpg"]}
    assert candidate(images, "original.jpg", "lookalike.jpg")  # pHash alone would pair them.
    confirmed = duplicates.confirmed_pairs(rows, duplicates.Confirmer(pictures.__getitem__))
    assert confirmed == []
    assert checks.near_duplicate_leakage(rows, 6, checks.CheckOptions(), confirmed=confirmed)[1] == []
    assert checks.label_conflict(rows, checks.CheckOptions(), confirmed)[1] == []


def test_label_conflict_is_configurable_like_the_other_checks(images):
    data = images["original.jpg"]
    rows = [row("cat/a.jpg", "train", "cat", data), row("dog/a.jpg", "eval", "dog", data)]
    options = checks.CheckOptions(
        severities=(*checks.DEFAULT_SEVERITIES.items(), (checks.LABEL_CONFLICT, "warning"))
    )
    assert [a.severity for a in checks.label_conflict(rows, options)[1]] == [checks.WARNING]
    assert checks.DEFAULT_SEVERITIES[checks.LABEL_CONFLICT] == checks.ERROR


def test_a_pair_with_an_unreadable_image_falls_back_to_the_plain_phash_rule_without_a_conflict(images):
    rows = [
        row("original.jpg", "train", "cat", images["original.jpg"]),
        row("reencode.jpg", "eval", "dog", images["reencode.jpg"]),
    ]
    gone = duplicates.Confirmer(lambda path: images[path] if path == "original.jpg" else b"moved away")
    (pair,) = duplicates.confirmed_pairs(rows, gone, fallback_distance=6)
    assert (pair["first"][spec.PATH], pair["second"][spec.PATH], pair["confirm_score"]) == (
        "original.jpg",
        "reencode.jpg",
        None,
    )
    assert duplicates.confirmed_pairs(rows, gone) == []  # No fallback: nothing unconfirmed is kept.
    # Leakage is reported on the pHash alone, as before; a label conflict (an error) needs confirming.
    assert checks.near_duplicate_leakage(rows, 6, checks.CheckOptions(), confirmed=[pair])[1]
    assert checks.label_conflict(rows, checks.CheckOptions(), [pair])[1] == []
