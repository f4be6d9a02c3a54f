"""Detection's data half: annotations in three formats, boxes moved with Exif, bad boxes accounted for."""

import glob
import io
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from components.image_example_gen import spec
from components.image_example_gen.annotations import (
    AnnotationOptions,
    ImageAnnotation,
    RawBox,
    clean_boxes,
    find_annotations,
    orient_box,
    parse_coco,
    parse_voc,
    parse_yolo,
)
from components.image_example_gen.discovery import discover
from components.image_example_gen.imaging import ImageOptions, _apply_orientation
from components.image_example_gen.ingest import IngestOptions, ingest
from tests.conftest import encode, write

OPTIONS = AnnotationOptions()


def coco(images, annotations, categories=("circle", "square")):
    return json.dumps(
        {
            "images": [
                {"id": i + 1, "file_name": name, "width": 64, "height": 48} for i, name in enumerate(images)
            ],
            "annotations": [
                {"id": i + 1, "image_id": image_id, "category_id": category_id, "bbox": bbox, "iscrowd": 0}
                for i, (image_id, category_id, bbox) in enumerate(annotations)
            ],
            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(categories)],
        }
    ).encode()


def reasons(issues):
    return [issue.reason for issue in issues]


# --- COCO --------------------------------------------------------------------------------------


def test_coco_boxes_are_pixels_from_the_top_left_and_listed_images_without_boxes_are_negatives():
    parsed = parse_coco(coco(["a.jpg", "b.jpg"], [(1, 2, [10, 4, 20, 16]), (1, 1, [0, 0, 5, 5])]))
    assert parsed.categories == ["circle", "square"] and parsed.records == []
    a = parsed.images["a.jpg"]
    assert [(b.xmin, b.ymin, b.xmax, b.ymax, b.category) for b in a.boxes] == [
        (10, 4, 30, 20, "square"),
        (0, 0, 5, 5, "circle"),
    ]
    assert a.size == (64, 48) and parsed.images["b.jpg"].boxes == ()


@pytest.mark.parametrize(
    "data,message",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "no 'images' list"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"images": {"a": 1}}', "no 'images' list"),
    ],
)
def test_coco_file_that_does_not_parse_is_a_record_not_a_crash(data, message):
    parsed = parse_coco(data, "annotations.json")
    (record,) = parsed.records
    assert record.reason == spec.MALFORMED_ANNOTATIONS and message in record.detail and parsed.images == {}


def test_coco_bad_entries_become_issues_or_records_and_the_image_keeps_its_good_boxes():
    data = json.loads(coco(["a.jpg"], [(1, 1, [1, 1, 10, 10]), (1, 9, [2, 2, 5, 5]), (7, 1, [0, 0, 4, 4])]))
    data["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [1, "x", 2, 2]})
    data["images"].append({"id": 5})  # No file_name.
    parsed = parse_coco(json.dumps(data).encode(), "ann.json")
    a = parsed.images["a.jpg"]
    assert len(a.boxes) == 1
    assert sorted(reasons(a.issues)) == [spec.BAD_ANNOTATION, spec.UNKNOWN_CATEGORY]
    assert sorted(r.reason for r in parsed.records) == [
        spec.ANNOTATION_WITHOUT_IMAGE,
        spec.MALFORMED_ANNOTATIONS,
    ]


# --- Pascal VOC --------------------------------------------------------------------------------

VOC = b"""<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height></size>
<object><name>dog</name><difficult>0</difficult><bndbox><xmin>4</xmin><ymin>5</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
<object><name>cat</name><bndbox><xmin>1</xmin><ymin>x</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
<object><name>emu</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
</annotation>"""


def test_voc_objects_are_parsed_and_bad_objects_are_issues():
    filename, annotation = parse_voc(VOC, "a.xml", names=["cat", "dog"])
    assert filename == "a.jpg" and annotation.size == (64, 48)
    assert [(b.xmin, b.ymin, b.xmax, b.ymax, b.category) for b in annotation.boxes] == [(4, 5, 30, 40, "dog")]
    assert reasons(annotation.issues) == [spec.BAD_ANNOTATION, spec.UNKNOWN_CATEGORY]


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>&lol3;</filename></annotation>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<annotation><filename>&x;</filename></annotation>"""


@pytest.mark.parametrize(
    "data,message",
    [
        (BOMB, "unsafe XML refused"),
        (EXTERNAL, "unsafe XML refused"),
        (b"<annotation><object>", "not well-formed XML"),
        (b"<html></html>", "not <annotation>"),
    ],
)
def test_voc_xml_bombs_entities_and_broken_files_are_refused_with_a_reason(data, message):
    record = parse_voc(data, "bad.xml")
    assert record.reason == spec.MALFORMED_ANNOTATIONS and message in record.detail


# --- YOLO --------------------------------------------------------------------------------------


def test_yolo_lines_are_fractions_and_bad_lines_are_issues():
    text = b"0 0.5 0.5 0.25 0.5\n1 0.1 0.1\n1 a 0.1 0.1 0.1\n7 0.5 0.5 0.1 0.1\n0 0.5 0.5 -0.1 0.2\n"
    text += b"0 3 3 0.1 0.1\n\n"
    annotation = parse_yolo(text, "a.txt", ["circle", "square"])
    (box,) = annotation.boxes
    assert box.normalised and (box.xmin, box.ymin, box.xmax, box.ymax) == (0.375, 0.25, 0.625, 0.75)
    assert reasons(annotation.issues) == [
        spec.BAD_ANNOTATION,
        spec.BAD_ANNOTATION,
        spec.UNKNOWN_CATEGORY,
        spec.DEGENERATE_BOX,
        spec.BOX_OUTSIDE_IMAGE,
    ]
    assert "a.txt:2: 3 fields, expected 5" in str(annotation.issues[0])


# --- finding and pairing -----------------------------------------------------------------------


def reader(files):
    return lambda path: files[path]


def test_auto_finds_coco_at_the_root_or_in_annotations_and_accounts_for_missing_images():
    files = {
        "x/a.jpg": b"",
        "b.jpg": b"",
        "annotations/instances_train.json": coco(["a.jpg", "gone.jpg"], [(1, 1, [0, 0, 4, 4])]),
    }
    found = find_annotations(files, OPTIONS, reader(files))
    assert found.format == "coco" and found.files == ["annotations/instances_train.json"]
    assert list(found.images) == ["x/a.jpg"]  # By unique name.
    (record,) = found.records
    assert record.reason == spec.ANNOTATION_WITHOUT_IMAGE and record.path == "gone.jpg"


def test_auto_finds_voc_beside_images_or_in_an_annotations_folder():
    files = {
        "JPEGImages/a.jpg": b"",
        "Annotations/a.xml": VOC,
        "other/b.png": b"",
        "other/b.xml": VOC.replace(b"a.jpg", b"nothing.jpg"),
        "Annotations/c.xml": VOC.replace(b"a.jpg", b"c.jpg"),
        "Annotations/d.xml": b"<annotation",
    }
    found = find_annotations(files, OPTIONS, reader(files))
    assert found.format == "voc" and found.vocabulary == ["dog", "emu"]  # Names of parsed boxes.
    assert sorted(found.images) == ["JPEGImages/a.jpg", "other/b.png"]
    assert sorted((r.path, r.reason) for r in found.records) == [
        ("Annotations/c.xml", spec.ANNOTATION_WITHOUT_IMAGE),
        ("Annotations/d.xml", spec.MALFORMED_ANNOTATIONS),
    ]


def test_auto_finds_yolo_beside_images_or_in_labels_with_names_from_classes_or_data_yaml():
    files = {
        "images/train/a.jpg": b"",
        "labels/train/a.txt": b"1 0.5 0.5 0.2 0.2\n",
        "c.jpg": b"",
        "c.txt": b"0 0.5 0.5 0.2 0.2\n",
        "orphan.txt": b"0 0.5 0.5 0.2 0.2\n",
        "data.yaml": b"names: {0: circle, 1: square}\n",
    }
    found = find_annotations(files, OPTIONS, reader(files))
    assert (
        found.format == "yolo" and found.vocabulary == ["circle", "square"] and found.unannotated_is_negative
    )
    assert found.images["images/train/a.jpg"].boxes[0].category == "square"
    assert found.images["c.jpg"].boxes[0].category == "circle"
    assert [(r.path, r.reason) for r in found.records] == [("orphan.txt", spec.ANNOTATION_WITHOUT_IMAGE)]
    assert set(found.files) == {"data.yaml", "labels/train/a.txt", "c.txt", "orphan.txt"}


def test_setup_problems_are_clear_errors():
    with pytest.raises(ValueError, match="no annotations were found"):
        find_annotations(["a.jpg"], OPTIONS, reader({}))
    with pytest.raises(ValueError, match="YOLO annotations need their class names"):
        find_annotations(["a.jpg", "a.txt"], OPTIONS, reader({"a.txt": b""}))
    with pytest.raises(ValueError, match="annotations.orientation"):
        AnnotationOptions(orientation="sideways")


# --- cleaning boxes ----------------------------------------------------------------------------


def boxes_of(*raw, size=None):
    return ImageAnnotation(tuple(raw), (), size, "a.json")


def clean(annotation, width=100, height=50, orientation=1, **options):
    return clean_boxes(
        annotation,
        width=width,
        height=height,
        orientation=orientation,
        vocabulary=["cat", "dog"],
        options=AnnotationOptions(**options),
    )


def test_a_box_just_outside_is_clipped_with_a_reason_and_one_further_out_is_dropped():
    kept, issues = clean(
        boxes_of(
            RawBox(-0.8, 10, 20, 50.9, "cat", "a"),  # Within 1 px: clipped.
            RawBox(90, 10, 102, 20, "dog", "b"),  # 2 px over a 100 px side at 1%: dropped.
        )
    )
    (box,) = kept
    assert (box.xmin, box.ymin, box.xmax, box.ymax) == (0.0, 0.2, 0.2, 1.0)
    assert reasons(issues) == [spec.BOX_CLIPPED, spec.BOX_OUTSIDE_IMAGE]
    kept, issues = clean(boxes_of(RawBox(90, 10, 102, 20, "dog", "b")), clip_tolerance=0.05)
    assert len(kept) == 1 and kept[0].xmax == 1.0 and reasons(issues) == [spec.BOX_CLIPPED]


def test_empty_unknown_and_duplicate_boxes_are_dropped_with_reasons():
    kept, issues = clean(
        boxes_of(
            RawBox(10, 10, 10, 20, "cat", "zero width"),
            RawBox(30, 10, 20, 20, "cat", "negative width"),
            RawBox(10, 10, 10.5, 20, "cat", "under min_size"),
            RawBox(10, 10, 40, 40, "emu", "unknown"),
            RawBox(10, 10, 40, 40, "cat", "first"),
            RawBox(10, 10, 40, 40.5, "cat", "twin"),
            RawBox(10, 10, 40, 40, "dog", "other class"),
        )
    )
    assert [(b.category, b.xmin) for b in kept] == [("cat", 0.1), ("dog", 0.1)]
    assert reasons(issues) == [spec.DEGENERATE_BOX] * 3 + [spec.UNKNOWN_CATEGORY, spec.DUPLICATE_BOX]


def test_a_declared_size_with_width_and_height_swapped_hints_at_the_orientation_setting():
    kept, issues = clean(boxes_of(RawBox(1, 1, 5, 5, "cat", "a"), size=(50, 100)), orientation=6)
    assert len(kept) == 1 and reasons(issues) == [spec.SIZE_MISMATCH]
    assert "ingest.annotations.orientation" in issues[0].detail


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_box_moves_a_box_exactly_as_the_pixels_move(orientation):
    mask = np.zeros((30, 40), np.uint8)
    mask[5:12, 8:20] = 255  # Rows 5-11, columns 8-19 of a 40x30 stored image.
    image = Image.fromarray(mask)
    moved = np.asarray(_apply_orientation(image, orientation) if orientation != 1 else image)
    rows, cols = np.nonzero(moved)
    h, w = moved.shape
    expected = (cols.min() / w, rows.min() / h, (cols.max() + 1) / w, (rows.max() + 1) / h)
    assert orient_box((8 / 40, 5 / 30, 20 / 40, 12 / 30), orientation) == pytest.approx(expected)


# --- end to end --------------------------------------------------------------------------------


def read_examples(examples_dir):
    files = sorted(glob.glob(os.path.join(examples_dir, "Split-*", "*.gz")))
    examples = [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]
    return {e.features.feature[spec.PATH].bytes_list.value[0].decode(): e.features.feature for e in examples}


def detection_options(**annotations):
    return IngestOptions(
        image=ImageOptions(pixel_properties=False),
        splits=(("train", 1),),
        task="detection",
        annotations=AnnotationOptions(**annotations),
    )


def test_boxes_drawn_on_stored_pixels_land_on_the_object_for_all_eight_exif_orientations(tmp_path):
    root = tmp_path / "images"
    stored = Image.new("RGB", (64, 48), (70, 70, 70))
    ImageDraw.Draw(stored).rectangle([8, 4, 23, 15], fill=(255, 0, 0))  # 16x12 pixels at (8, 4).
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        write(root / f"o{orientation}.jpg", encode(stored, "JPEG", quality=95, exif=exif))
    names = [f"o{k}.jpg" for k in range(1, 9)]
    write(root / "annotations.json", coco(names, [(k, 1, [8, 4, 16, 12]) for k in range(1, 9)], ["red"]))

    out = tmp_path / "out"
    summary = ingest(
        discover(str(root)),
        detection_options(orientation="stored"),
        span=0,
        examples_dir=str(out / "examples"),
        catalog_dir=str(out),
    )
    assert summary["ingested"] == 8 and summary["objects"]["boxes"] == 8
    assert summary["objects"]["box_issues"] == {}
    for path, feature in read_examples(str(out / "examples")).items():
        pixels = tf.io.decode_image(feature[spec.IMAGE].bytes_list.value[0]).numpy().astype(int)
        h, w, _ = pixels.shape
        red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
        rows, cols = np.nonzero(red)
        found = (cols.min() / w, rows.min() / h, (cols.max() + 1) / w, (rows.max() + 1) / h)
        box = tuple(
            feature[f"image/object/bbox/{k}"].float_list.value[0] for k in ("xmin", "ymin", "xmax", "ymax")
        )
        assert box == pytest.approx(found, abs=1.5 / min(w, h)), path
        assert (w, h) == ((48, 64) if path in ("o5.jpg", "o6.jpg", "o7.jpg", "o8.jpg") else (64, 48))
        assert list(feature[spec.OBJECT_LABEL].int64_list.value) == [0]
        assert list(feature[spec.OBJECT_TEXT].bytes_list.value) == [b"red"]


def test_cvpipe_ingest_of_scenes_for_detection_accounts_for_every_input_and_box(tmp_path, capsys):
    from pipelines.cli import main
    from pipelines.sample_data import write_sample_data

    root = tmp_path / "scenes"
    assert write_sample_data(str(root), kind="scenes", count=16, seed=5) == 16
    data = json.loads((root / "annotations.json").read_text())
    truth = {}
    for image in data["images"]:
        truth[image["file_name"]] = sum(1 for a in data["annotations"] if a["image_id"] == image["id"])
    # Bad annotations on scene 0: clipped, outside, duplicate, unknown category; one for a missing image.
    first = data["images"][0]
    extra = [
        {"image_id": first["id"], "category_id": 1, "bbox": [-1, 100, 20, 28.5]},  # Clipped by <1.3 px.
        {"image_id": first["id"], "category_id": 2, "bbox": [120, 0, 30, 30]},  # Far outside.
        {"image_id": first["id"], "category_id": 9, "bbox": [0, 0, 10, 10]},  # Unknown category.
        {"image_id": first["id"], "category_id": 3, "bbox": [2, 2, 50, 50]},
        {"image_id": first["id"], "category_id": 3, "bbox": [2, 2, 50, 50.5]},  # Duplicate.
    ]
    data["images"].append({"id": 999, "file_name": "lost.jpg", "width": 128, "height": 128})
    extra.append({"image_id": 999, "category_id": 1, "bbox": [0, 0, 10, 10]})
    for i, annotation in enumerate(extra):
        data["annotations"].append({"id": 1000 + i, "iscrowd": 0, **annotation})
    (root / "annotations.json").write_text(json.dumps(data))
    write(root / "unlisted" / "stray.png", encode(Image.new("RGB", (32, 32), (9, 9, 9)), "PNG"))
    write(root / "broken.jpg", b"\xff\xd8\xff\xe0 not really")
    data["images"].append({"id": 1000, "file_name": "broken.jpg"})
    (root / "annotations.json").write_text(json.dumps(data))
    config = tmp_path / "detection.yaml"
    config.write_text("task: detection\ningest:\n  pixel_properties: false\n  splits: {train: 3, eval: 1}\n")

    out = tmp_path / "out"
    assert main(["ingest", "--images", str(root), "--output", str(out), "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "Boxes:" in printed and "box_issues" in printed

    summary = json.loads((out / spec.SUMMARY_FILE).read_text())
    catalog = {r["path"]: r for r in pq.read_table(str(out / spec.CATALOG_FILE)).to_pylist()}
    examples = read_examples(str(out / "examples"))
    # Every input accounted for: 16 scenes, the stray image, the broken one, the lost image's record.
    assert summary["seen"] == len(catalog) == 19
    assert summary["seen"] == summary["ingested"] + summary["quarantined"] + summary["duplicates"]
    assert summary["ingested"] == len(examples) == 16
    assert catalog["unlisted/stray.png"]["reason"] == spec.UNANNOTATED_IMAGE
    assert catalog["lost.jpg"]["reason"] == spec.ANNOTATION_WITHOUT_IMAGE
    assert catalog["broken.jpg"]["status"] == spec.QUARANTINED
    assert (out / "examples" / spec.LABELS_FILE).read_text() == "circle\nsquare\ntriangle\n"

    truth[first["file_name"]] += 2  # The clipped box and the first of the pair are kept.
    for path, count in truth.items():
        feature = examples[path]
        assert len(feature[spec.OBJECT_XMIN].float_list.value) == count == catalog[path][spec.BOX_COUNT], path
        labels = list(feature[spec.OBJECT_LABEL].int64_list.value)
        texts = [t.decode() for t in feature[spec.OBJECT_TEXT].bytes_list.value]
        assert (
            [["circle", "square", "triangle"][i] for i in labels] == texts == catalog[path][spec.BOX_CLASSES]
        )
        for key in ("xmin", "ymin", "xmax", "ymax"):
            assert all(0 <= v <= 1 for v in feature[f"image/object/bbox/{key}"].float_list.value)
        assert spec.LABEL not in feature and catalog[path][spec.LABEL] is None
    issues = catalog[first["file_name"]][spec.BOX_ISSUES]
    assert sorted(i.split(":")[0] for i in issues) == sorted(
        [spec.BOX_CLIPPED, spec.BOX_OUTSIDE_IMAGE, spec.UNKNOWN_CATEGORY, spec.DUPLICATE_BOX]
    )
    objects = summary["objects"]
    assert objects["boxes"] == sum(truth.values())
    assert objects["negatives"] == sum(1 for c in truth.values() if c == 0)
    assert objects["images_with_box_issues"] == 1
    assert objects["box_issues"] == {
        spec.BOX_CLIPPED: 1,
        spec.BOX_OUTSIDE_IMAGE: 1,
        spec.DUPLICATE_BOX: 1,
        spec.UNKNOWN_CATEGORY: 1,
    }
    assert summary["task"] == "detection" and summary["labels"] == ["circle", "square", "triangle"]


def test_scenes_are_deterministic_and_boxes_are_tight_on_the_drawn_objects(tmp_path):
    from pipelines.sample_data import write_sample_data

    for name in ("a", "b"):
        write_sample_data(str(tmp_path / name), kind="scenes", count=10, seed=1)
    for path in sorted(os.listdir(tmp_path / "a")):
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    data = json.loads((tmp_path / "a" / "annotations.json").read_text())
    counts = [sum(1 for a in data["annotations"] if a["image_id"] == i["id"]) for i in data["images"]]
    assert max(counts) <= 4 and len(data["categories"]) == 3
    for image in data["images"]:
        pixels = np.asarray(
            Image.open(io.BytesIO((tmp_path / "a" / image["file_name"]).read_bytes())).convert("RGB")
        )
        for a in (a for a in data["annotations"] if a["image_id"] == image["id"]):
            x, y, w, h = a["bbox"]
            assert 12 <= w <= 48 and x + w <= 128 and y + h <= 128
        assert pixels.shape == (128, 128, 3)


def test_detection_schema_is_the_classification_schema_without_labels_plus_the_boxes():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    import schemas

    def load(path):
        with open(path) as f:
            return {f.name: f for f in text_format.Parse(f.read(), schema_pb2.Schema()).feature}

    classification, detection = load(schemas.SCHEMAS["classification"]), load(schemas.SCHEMAS["detection"])
    assert set(classification) - set(detection) == {spec.LABEL, spec.LABEL_INDEX}
    assert set(detection) - set(classification) == set(spec.OBJECT_FEATURES)
    for name in set(classification) & set(detection):
        assert classification[name] == detection[name], name


def test_config_task_reaches_the_ingest_options_and_bad_annotation_settings_name_the_field(tmp_path):
    from pipelines.config import ConfigError, load_config

    assert (
        load_config().task == "classification" and load_config().ingest.to_options().task == "classification"
    )
    path = tmp_path / "d.yaml"
    path.write_text("task: detection\ningest:\n  annotations: {orientation: stored, clip_tolerance: 0.02}\n")
    options = load_config(str(path)).ingest.to_options()
    assert options.task == "detection"
    assert options.annotations == AnnotationOptions(orientation="stored", clip_tolerance=0.02)
    assert IngestOptions.from_json(options.to_json()) == options
    path.write_text("ingest:\n  annotations: {orientation: sideways}\n")
    with pytest.raises(ConfigError, match=r"ingest\.annotations\.orientation: one of displayed, stored"):
        load_config(str(path))
    path.write_text("task: segmentation\n")
    with pytest.raises(ConfigError, match=r"task: one of classification, detection"):
        load_config(str(path))


def test_yolo_and_voc_problems_end_up_in_the_catalog_and_images_keep_their_good_boxes(tmp_path):
    root = tmp_path / "yolo"
    image = encode(Image.new("RGB", (40, 20), (30, 30, 30)), "PNG")
    write(root / "images" / "a.png", image)
    write(root / "labels" / "a.txt", b"0 0.5 0.5 0.5 0.5\n0 0.5 0.5 0.5\n3 0.5 0.5 0.1 0.1\n")
    write(root / "images" / "negative.png", encode(Image.new("RGB", (40, 20), (60, 30, 30)), "PNG"))
    write(root / "labels" / "orphan.txt", b"0 0.5 0.5 0.5 0.5\n")
    write(root / "classes.txt", b"cat\ndog\n")
    out = tmp_path / "out"
    summary = ingest(
        discover(str(root)), detection_options(), span=0, examples_dir=str(out / "e"), catalog_dir=str(out)
    )
    catalog = {r["path"]: r for r in pq.read_table(str(out / spec.CATALOG_FILE)).to_pylist()}
    assert sorted(catalog) == ["images/a.png", "images/negative.png", "labels/orphan.txt"]
    assert catalog["images/a.png"][spec.BOX_CLASSES] == ["cat"]
    assert [i.split(":")[0] for i in catalog["images/a.png"][spec.BOX_ISSUES]] == [
        spec.BAD_ANNOTATION,
        spec.UNKNOWN_CATEGORY,
    ]
    assert catalog["images/negative.png"][spec.BOX_COUNT] == 0
    assert catalog["labels/orphan.txt"]["reason"] == spec.ANNOTATION_WITHOUT_IMAGE
    assert summary["objects"]["negatives"] == 1 and summary["objects"]["boxes"] == 1
    assert summary["objects"]["box_issues"] == {spec.BAD_ANNOTATION: 1, spec.UNKNOWN_CATEGORY: 1}
    box = read_examples(str(out / "e"))["images/a.png"]
    assert [box[f"image/object/bbox/{k}"].float_list.value[0] for k in ("xmin", "ymin", "xmax", "ymax")] == [
        0.25,
        0.25,
        0.75,
        0.75,
    ]


def test_a_broken_coco_file_leaves_every_image_unannotated_rather_than_negative(tmp_path):
    from components.image_example_gen.ingest import prepare_inputs

    root = tmp_path / "coco"
    write(root / "a.jpg", b"x")
    write(root / "annotations.json", b'{"images": [')
    write(root / "Annotations" / "bomb.xml", BOMB)  # Not read: COCO comes first in auto detection.
    prepared = prepare_inputs(discover(str(root)), detection_options())
    rows = {c.path: c.reason for c in prepared.candidates}
    assert rows == {
        "a.jpg": spec.UNANNOTATED_IMAGE,
        "annotations.json": spec.MALFORMED_ANNOTATIONS,  # The file's own catalog row.
        "Annotations/bomb.xml": None,  # An input file like any other (quarantined when read).
    }
    voc = prepare_inputs(discover(str(root)), detection_options(format="voc"))
    assert {c.path: c.reason for c in voc.candidates} == {
        "a.jpg": spec.UNANNOTATED_IMAGE,
        "annotations.json": None,
        "Annotations/bomb.xml": spec.MALFORMED_ANNOTATIONS,
    }
