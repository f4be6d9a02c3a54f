"""The Beam ingestion end to end on small folders: accounting, decodability, splits, outputs."""

import glob
import json
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image, ImageFilter

from components.image_example_gen import spec
from components.image_example_gen.discovery import Candidate, discover
from components.image_example_gen.imaging import ImageOptions
from components.image_example_gen.ingest import IngestOptions, _PickFirst, ingest
from components.image_example_gen.records import catalog_schema
from tests.conftest import encode, gradient, write

OPTIONS = IngestOptions(image=ImageOptions(channels=3, min_width=16, min_height=16, max_pixels=20_000_000))


def read_examples(examples_dir, split):
    files = sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz")))
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]


def feature(example, name):
    f = example.features.feature[name]
    return (list(f.bytes_list.value) or list(f.int64_list.value) or list(f.float_list.value))[0]


def run(root, out, manifest=None, options=OPTIONS):
    found = discover(str(root), manifest)
    summary = ingest(found, options, span=0, examples_dir=str(out / "examples"), catalog_dir=str(out))
    catalog = pq.read_table(str(out / spec.CATALOG_FILE)).to_pylist()
    return found, summary, {row["path"]: row for row in catalog}


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "images"
    good = encode(gradient(64, 48), "JPEG", quality=95)
    for i in range(6):
        write(root / "cat" / f"cat{i}.jpg", encode(gradient(64 + i, 48), "JPEG"))
        write(root / "dog" / f"dog{i}.png", encode(gradient(48, 64 + i, "L"), "PNG"))
    write(root / "cat" / "copy_a.jpg", good)
    write(root / "dog" / "copy_b.jpg", good)  # Same bytes, other class: a duplicate.
    write(root / "cat" / "empty.jpg", b"")
    write(root / "cat" / "notes.txt", b"not an image")
    big = encode(gradient(300, 200), "JPEG", quality=95)
    write(root / "cat" / "truncated.jpg", big[: len(big) * 2 // 3])
    write(root / "cat" / "tiny.png", encode(gradient(8, 8), "PNG"))
    write(root / "cat" / "bomb.png", encode(Image.new("L", (5000, 5000)), "PNG", compress_level=9))
    write(root / "cat" / "icon.ico", encode(gradient(32, 32), "ICO"))
    write(root / "dog" / "scan.tiff", encode(gradient(40, 40), "TIFF"))
    write(root / "stray.png", good + b"x")
    os.symlink(tmp_path, root / "dog" / "escape")
    return root


def test_every_input_is_accounted_for_and_every_example_decodes(messy_folder, tmp_path):
    out = tmp_path / "out"
    found, summary, catalog = run(messy_folder, out)

    assert summary["seen"] == len(found.candidates) == len(catalog) == 23
    assert summary["seen"] == summary["ingested"] + summary["quarantined"] + summary["duplicates"]
    assert summary["duplicates"] == 1
    assert catalog["dog/copy_b.jpg"]["duplicate_of"] == "cat/copy_a.jpg"
    expected_reasons = {
        "cat/empty.jpg": spec.EMPTY_FILE,
        "cat/notes.txt": spec.NOT_AN_IMAGE,
        "cat/truncated.jpg": spec.TRUNCATED_IMAGE,
        "cat/tiny.png": spec.TOO_SMALL,
        "cat/bomb.png": spec.TOO_MANY_PIXELS,
        "cat/icon.ico": spec.UNSUPPORTED_FORMAT,
        "stray.png": spec.MISSING_LABEL,
        "dog/escape": spec.SYMLINK_ESCAPES_ROOT,
    }
    for path, reason in expected_reasons.items():
        assert (catalog[path]["status"], catalog[path]["reason"]) == (spec.QUARANTINED, reason), path
        assert catalog[path]["detail"]
    assert summary["ingested"] == 14
    assert summary["by_reason"][spec.DUPLICATE] == 1

    ingested = {p for p, row in catalog.items() if row["status"] == spec.INGESTED}
    seen_in_examples = set()
    for split in OPTIONS.split_names:
        for example in read_examples(str(out / "examples"), split):
            path = feature(example, spec.PATH).decode()
            seen_in_examples.add(path)
            row = catalog[path]
            assert row["split"] == split
            image = tf.io.decode_image(feature(example, spec.IMAGE), expand_animations=False)
            assert image.shape == (feature(example, spec.HEIGHT), feature(example, spec.WIDTH), 3)
            assert (row["width"], row["height"]) == (image.shape[1], image.shape[0])
            label = feature(example, spec.LABEL).decode()
            assert found.labels[feature(example, spec.LABEL_INDEX)] == label == row["label"]
    assert seen_in_examples == ingested
    assert catalog["dog/scan.tiff"]["original_format"] == "tiff"
    assert catalog["dog/scan.tiff"]["format"] == "png"
    assert catalog["dog/dog0.png"]["transcoded"]  # Grey PNG converted to RGB.
    assert (out / "examples" / spec.LABELS_FILE).read_text().split() == ["cat", "dog"]
    assert json.loads((out / spec.SUMMARY_FILE).read_text())["seen"] == 23


def test_adding_images_never_moves_existing_ones_between_splits(tmp_path):
    root = tmp_path / "images"
    for i in range(40):
        write(root / ("a" if i % 2 else "b") / f"{i}.png", encode(gradient(20 + i, 20), "PNG"))
    _, _, first = run(root, tmp_path / "one")
    for i in range(40, 80):
        write(root / ("a" if i % 2 else "b") / f"{i}.png", encode(gradient(20 + i, 20), "PNG"))
    _, _, second = run(root, tmp_path / "two")
    assert len(second) == 80
    assert {p: r["split"] for p, r in first.items()} == {p: second[p]["split"] for p in first}
    assert {r["split"] for r in second.values()} == {"train", "eval", "test"}


def test_manifest_extras_are_typed_features(tmp_path):
    root = tmp_path / "images"
    write(root / "x" / "one.jpg", encode(gradient(), "JPEG"))
    write(root / "x" / "two.jpg", encode(gradient(50, 30), "JPEG"))
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,iso,exposure,site\nx/one.jpg,cat,100,0.25,north\n"
        "x/two.jpg,dog,200,0.5,south\n../etc/passwd,cat,1,1,x\n"
    )
    found, summary, catalog = run(
        root, tmp_path / "out", str(manifest), IngestOptions(splits=(("train", 1),), gzip_level=6)
    )
    assert summary == {**summary, "seen": 3, "ingested": 2, "quarantined": 1}
    examples = {
        feature(e, spec.PATH).decode(): e for e in read_examples(str(tmp_path / "out/examples"), "train")
    }
    assert feature(examples["x/one.jpg"], "iso") == 100
    assert feature(examples["x/two.jpg"], "exposure") == 0.5
    assert feature(examples["x/two.jpg"], "site") == b"south"
    assert catalog["x/one.jpg"]["iso"] == 100 and catalog["../etc/passwd"]["reason"] == spec.PATH_ESCAPES_ROOT


def test_pick_first_keeps_smallest_path_and_reports_the_rest():
    schema = catalog_schema({})
    first, second, third = (Candidate(p, "cat") for p in ("b/1.jpg", "a/2.jpg", "c/3.jpg"))
    # A manifest may name a split: copies of one image in two splits are both kept (leakage is
    # reported by the data checks, not hidden here).
    in_train, in_test = Candidate("d/4.jpg", "cat", split="train"), Candidate("e/5.jpg", "cat", split="test")
    with beam.Pipeline() as p:
        results = (
            p
            | beam.Create(
                [
                    ("a1", [(first, 10), (second, 10), (third, 10)]),
                    ("a2", [(third, 5)]),
                    ("a3", [(in_test, 7), (in_train, 7)]),
                ]
            )
            | beam.ParDo(_PickFirst(schema, 0, (("train", 1),))).with_outputs("catalog", main="kept")
        )
        assert_that(
            results.kept,
            equal_to(
                [
                    ("a1", second, 10, "train"),
                    ("a2", third, 5, "train"),
                    ("a3", in_test, 7, "test"),
                    ("a3", in_train, 7, "train"),
                ]
            ),
            label="kept",
        )
        assert_that(
            results.catalog | beam.Map(lambda r: (r["path"], r["status"], r["duplicate_of"])),
            equal_to([("b/1.jpg", spec.DUPLICATE, "a/2.jpg"), ("c/3.jpg", spec.DUPLICATE, "a/2.jpg")]),
            label="duplicates",
        )


def test_non_utf8_file_and_folder_names_are_ingested_with_escaped_text(tmp_path):
    root = tmp_path / "images"
    folder = os.path.join(os.fsencode(str(root)), b"caf\xe9")
    os.makedirs(folder)
    with open(os.path.join(folder, b"im\xffage.png"), "wb") as f:
        f.write(encode(gradient(), "PNG"))
    found, summary, catalog = run(root, tmp_path / "out", options=IngestOptions(splits=(("train", 1),)))
    assert summary["ingested"] == 1
    assert list(catalog) == ["caf\\xe9/im\\xffage.png"]
    assert found.labels == ["caf\\xe9"]


def test_manifest_split_column_predefines_splits_and_rejects_unknown_ones(tmp_path):
    root = tmp_path / "images"
    for i in range(4):
        write(root / f"{i}.png", encode(gradient(40 + i, 32), "PNG"))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,split\n0.png,a,test\n1.png,a,test\n2.png,b,holdout\n3.png,b,\n")
    found, summary, catalog = run(root, tmp_path / "out", str(manifest))
    assert catalog["0.png"]["split"] == catalog["1.png"]["split"] == "test"
    assert catalog["2.png"]["status"] == spec.QUARANTINED and catalog["2.png"]["reason"] == spec.UNKNOWN_SPLIT
    assert "'holdout' is not one of train, eval, test" in catalog["2.png"]["detail"]
    assert catalog["3.png"]["split"] in ("train", "eval", "test")  # Empty: by content hash.
    assert summary["seen"] == 4 and summary["ingested"] == 3


def photo_region(name: str, box: tuple[int, int, int, int]) -> Image.Image:
    """A region of one of scikit-learn's two real photos (640x427)."""
    import sklearn.datasets

    path = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", name)
    with Image.open(path) as image:
        return image.convert("RGB").crop(box)


@pytest.fixture(scope="module")
def pixel_folder(tmp_path_factory):
    """Ordinary photo crops and one image of each flagged kind, in two class folders."""
    root = tmp_path_factory.mktemp("pixels") / "images"
    regions = [(0, 0, 320, 213), (320, 0, 640, 213), (0, 213, 320, 426), (320, 213, 640, 426)]
    for name in ("china.jpg", "flower.jpg"):
        for i, box in enumerate(regions):
            write(root / "a" / f"{name[:-4]}_{i}.jpg", encode(photo_region(name, box), "JPEG", quality=90))
    middle = photo_region("china.jpg", (160, 100, 480, 313))
    write(root / "b" / "dark.jpg", encode(middle.point(lambda v: v // 6), "JPEG"))
    write(
        root / "b" / "light.jpg",
        encode(photo_region("flower.jpg", (160, 100, 480, 313)).point(lambda v: 215 + v // 6), "JPEG"),
    )
    blurred = photo_region("flower.jpg", (100, 50, 420, 263)).filter(ImageFilter.GaussianBlur(8))
    write(root / "b" / "blurred.jpg", encode(blurred, "JPEG"))
    write(root / "b" / "flat.png", encode(Image.new("RGB", (200, 150), (90, 120, 150)), "PNG"))
    write(root / "b" / "banner.jpg", encode(photo_region("china.jpg", (0, 300, 640, 400)), "JPEG"))
    write(
        root / "b" / "grey.jpg",
        encode(photo_region("china.jpg", (50, 50, 370, 263)).convert("L").convert("RGB"), "JPEG"),
    )
    alpha = photo_region("flower.jpg", (200, 200, 440, 380)).convert("RGBA")
    alpha.putalpha(200)
    write(root / "b" / "alpha.png", encode(alpha, "PNG"))
    # Near duplicates of a/china_0.jpg: re-encoded at half size, and cropped by 2%.
    original = photo_region("china.jpg", regions[0])
    write(root / "b" / "z_small_copy.jpg", encode(original.resize((160, 106)), "JPEG", quality=50))
    write(root / "b" / "z_cropped_copy.png", encode(original.crop((4, 3, 320, 213)), "PNG"))
    return root


def test_ingest_measures_pixels_once_and_flags_each_kind_with_its_reason(pixel_folder, tmp_path):
    out = tmp_path / "out"
    _, summary, catalog = run(pixel_folder, out, options=IngestOptions(splits=(("train", 1),)))
    assert summary["ingested"] == len(catalog) == 17
    flagged = {name: sorted(p for p, row in catalog.items() if row[name]) for name in spec.FLAGS}
    assert flagged == {
        spec.DARK: ["b/dark.jpg"],
        spec.LIGHT: ["b/light.jpg"],
        spec.BLURRY: ["b/blurred.jpg"],
        spec.LOW_INFORMATION: ["b/flat.png"],
        spec.ODD_ASPECT_RATIO: ["b/banner.jpg"],
        spec.GRAYSCALE: ["b/grey.jpg"],
    }
    twins = {
        p: (row[spec.NEAR_DUPLICATE_OF], row[spec.NEAR_DUPLICATE_DISTANCE])
        for p, row in catalog.items()
        if row[spec.NEAR_DUPLICATE_OF]
    }
    assert {p: twin for p, (twin, _) in twins.items()} == {
        "b/z_small_copy.jpg": "a/china_0.jpg",
        "b/z_cropped_copy.png": "a/china_0.jpg",
    }
    assert all(d <= 6 for _, d in twins.values())
    assert catalog["b/dark.jpg"][spec.FLAG_REASONS].startswith("dark: the brightest 1% of pixels reach only")
    assert "blurry: sharpness" in catalog["b/blurred.jpg"][spec.FLAG_REASONS]
    assert "near_duplicate_of: pHash distance" in catalog["b/z_small_copy.jpg"][spec.FLAG_REASONS]
    assert catalog["a/china_1.jpg"][spec.FLAG_REASONS] is None
    assert catalog["b/flat.png"][spec.PHASH] is None
    assert summary["pixels"]["measured"] == 17
    assert summary["pixels"]["flagged"] == {**{name: 1 for name in spec.FLAGS}, spec.NEAR_DUPLICATE_OF: 2}

    # The same numbers are example features, for TFDV's statistics.
    examples = {feature(e, spec.PATH).decode(): e for e in read_examples(str(out / "examples"), "train")}
    for path, example in examples.items():
        for name in spec.PIXEL_PROPERTIES:
            assert feature(example, name) == pytest.approx(catalog[path][name], rel=1e-6), (path, name)
        if catalog[path][spec.PHASH]:
            assert feature(example, spec.PHASH).decode() == catalog[path][spec.PHASH]
        else:
            assert spec.PHASH not in example.features.feature


def test_pixel_properties_off_leave_no_properties_and_no_flags(pixel_folder, tmp_path):
    off = IngestOptions(image=ImageOptions(pixel_properties=False), splits=(("train", 1),))
    out = tmp_path / "out"
    _, summary, catalog = run(pixel_folder, out, options=off)
    assert summary["ingested"] == 17 and summary["pixels"]["measured"] == 0
    assert all(row[spec.BRIGHTNESS] is None and row[spec.DARK] is None for row in catalog.values())
    assert all(row[spec.NEAR_DUPLICATE_OF] is None for row in catalog.values())
    example = read_examples(str(out / "examples"), "train")[0]
    assert not set(spec.PIXEL_PROPERTIES) & set(example.features.feature)
