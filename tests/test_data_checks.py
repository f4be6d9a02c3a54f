"""Data validation: each injected anomaly is found, the gate stops or warns, a clean dataset passes."""

import csv
import glob
import hashlib
import json
import os
import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from google.protobuf import text_format
from PIL import Image, ImageFilter
from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from components.data_checks import checks
from components.data_checks.executor import DataGateError
from components.image_example_gen import spec
from pipelines.config import ConfigError, load_config, merge
from pipelines.runner import run_pipeline, write_report
from pipelines.sample_data import write_sample_data
from tests.conftest import cvpipe_in_fresh_process, encode, write


def row(path, split, label, sha=None, status=spec.INGESTED, reason=None):
    return {
        spec.PATH: path,
        spec.STATUS: status,
        spec.REASON: reason,
        spec.SPLIT: split,
        spec.LABEL: label,
        spec.SHA256: sha or path,
    }


def balanced(n=12):
    return [row(f"{label}/{i}", "train", label) for label in "abc" for i in range(n)] + [
        row(f"{label}/e{i}", "eval", label) for label in "abc" for i in range(2)
    ]


def kinds(found):
    return sorted({a.check for a in found})


def test_catalog_checks_pass_a_clean_catalog():
    assert checks.catalog_checks(balanced(), checks.CheckOptions(), labels="abc") == []


def test_each_catalog_check_fires_on_its_own_injection():
    options = checks.CheckOptions()
    bad = [row(f"bad/{i}", None, "a", status=spec.QUARANTINED, reason=spec.TOO_SMALL) for i in range(3)]
    found = checks.catalog_checks(balanced() + bad, options)
    assert kinds(found) == [checks.QUARANTINE_RATE]
    assert "3 of 45 input files quarantined" in found[0].description and "too_small 3" in found[0].description

    few = [
        r for r in balanced() if r[spec.PATH] in ("c/0", "c/1", "c/2") or not r[spec.PATH].startswith("c/")
    ]
    found = checks.catalog_checks(few, options)
    assert kinds(found) == [checks.MIN_CLASS_COUNT] and "'c' has 3 train images" in found[0].description

    leak = balanced() + [row("copy-of-a0", "test", "a", sha="a/0")]
    found = checks.catalog_checks(leak, options)
    assert kinds(found) == [checks.SPLIT_LEAKAGE]
    assert found[0].split == "test" and "copy-of-a0 = train a/0" in found[0].description

    unseen = balanced() + [row("d/0", "eval", "d")]
    found = checks.catalog_checks(unseen, options)
    assert {checks.LABEL_NOT_IN_TRAIN, checks.MIN_CLASS_COUNT} == set(kinds(found))

    skewed = balanced() + [row(f"a/x{i}", "train", "a") for i in range(120)]
    found = checks.catalog_checks(skewed, options)
    assert kinds(found) == [checks.CLASS_IMBALANCE] and found[0].severity == checks.WARNING

    # A class whose every image was quarantined is still a class with too few images.
    found = checks.catalog_checks(balanced(), options, labels="abcz")
    assert [a.description for a in found] == ["class 'z' has 0 train images (minimum 10)"]


def test_data_with_nothing_to_train_on_is_an_error_at_the_gate_naming_why():
    options = checks.CheckOptions()
    every_file_quarantined = [
        row(f"x/{i}", None, "a", status=spec.QUARANTINED, reason=spec.NOT_AN_IMAGE) for i in range(4)
    ]
    for rows, expected in [
        ([], "the train split has no images (0 input files, 0 ingested)"),
        (every_file_quarantined, "no images (4 input files, 0 ingested, quarantined: not_an_image 4)"),
        (
            [row(f"a/{i}", "train", "a") for i in range(20)],
            "at least two classes with train images; found 1: 'a'",
        ),
    ]:
        found = [
            a for a in checks.catalog_checks(rows, options, labels="a") if a.check == checks.NOTHING_TO_TRAIN
        ]
        assert len(found) == 1 and expected in found[0].description, (expected, found)
        assert checks.decide(found, "fail")["blocks_training"] is True
    # A detector has no label per image: no object class at all is what it cannot train on.
    boxed = [row(f"p/{i}", "train", None) for i in range(20)]
    found = checks.catalog_checks(boxed, options, labels=[], by_label=False)
    assert kinds(found) == [checks.NOTHING_TO_TRAIN] and "name no category" in found[0].description
    assert checks.catalog_checks(boxed, options, labels=["raccoon"], by_label=False) == []


def test_severities_and_gate_decide_the_verdict():
    found = checks.catalog_checks(balanced() + [row("copy", "test", "a", sha="a/0")], checks.CheckOptions())
    assert checks.decide(found, "fail")["blocks_training"] is True
    assert checks.decide(found, "warn") == {
        "verdict": "fail",
        "gate": "warn",
        "blocks_training": False,
        "reason": "1 error anomaly: split_leakage [test/sha256]",
    }
    relaxed = checks.CheckOptions(severities=((checks.SPLIT_LEAKAGE, checks.WARNING),))
    found = checks.catalog_checks(balanced() + [row("copy", "test", "a", sha="a/0")], relaxed)
    assert checks.decide(found, "fail")["verdict"] == "pass"


def pixel_row(path, split, label, phash, brightness=0.5, sha=None, **values):
    return {
        **row(path, split, label, sha=sha),
        spec.PHASH: phash,
        spec.BRIGHTNESS: brightness,
        spec.CONTRAST: values.get("contrast", 0.2),
        spec.SHARPNESS: values.get("sharpness", 1.0),
        spec.COLOURFULNESS: values.get("colourfulness", 30.0),
    }


def test_near_duplicate_leakage_is_found_across_splits_and_spans_but_not_for_byte_identical_copies():
    options = checks.CheckOptions()
    train = [pixel_row(f"a/{i}", "train", "a", f"{i * 0x1111111111111111:016x}") for i in range(1, 9)]
    rows = train + [
        pixel_row("a/t1", "test", "a", f"{0x1111111111111111 ^ 0b101:016x}"),  # 2 bits from a/1.
        pixel_row("a/t2", "test", "a", f"{0x2222222222222222:016x}", sha="a/2"),  # a/2's very bytes.
        pixel_row("a/e1", "eval", "a", "0123456789abcdef"),  # Unlike anything.
        pixel_row("a/t3", "test", "a", None),  # A flat image: no hash, never matched.
    ]
    baseline = [
        {spec.PATH: "old/9", spec.SPLIT: "train", spec.PHASH: "0123456789abcdee", spec.SHA256: "x"},
        {spec.PATH: "old/8", spec.SPLIT: "test", spec.PHASH: f"{0x1111111111111111:016x}", spec.SHA256: "y"},
    ]
    pairs, found = checks.near_duplicate_leakage(rows, 6, options, baseline, baseline_span=4)
    assert [(a.check, a.split, a.severity) for a in found] == [
        (checks.NEAR_DUPLICATE_LEAKAGE, "test", checks.WARNING),
        (checks.NEAR_DUPLICATE_LEAKAGE, "eval", checks.WARNING),
    ]
    assert found[0].description == (
        "1 test image(s) are near duplicates of train images (pHash distance <= 6): a/t1 ~ a/1 (2)"
    )
    assert found[1].description.startswith("1 eval image(s) are near duplicates of span 4's train images")
    assert [(p["path"], p["twin"], p["distance"]) for p in pairs["across_splits"]] == [("a/t1", "a/1", 2)]
    assert [(p["path"], p["twin"]) for p in pairs["across_spans"]] == [("a/e1", "old/9")]  # Not old/8: test.
    assert checks.near_duplicate_leakage(rows, 1, options)[1] == []  # Tighter than 2 bits: nothing.
    # The byte-identical copy is split_leakage's, an error by default.
    assert checks.SPLIT_LEAKAGE in [a.check for a in checks.catalog_checks(rows, options)]


def test_a_class_darker_than_the_others_is_a_property_imbalance():
    rng = np.random.default_rng(0)
    rows = [pixel_row(f"day/{i}", "train", "day", "0", brightness=rng.uniform(0.4, 0.8)) for i in range(20)]
    rows += [
        pixel_row(f"dusk/{i}", "train", "dusk", "0", brightness=rng.uniform(0.3, 0.7)) for i in range(20)
    ]
    clean_classes, clean = checks.property_imbalance(rows, checks.CheckOptions())
    assert clean == [] and [c["label"] for c in clean_classes] == ["day", "dusk"]
    night = [
        pixel_row(f"night/{i}", "train", "night", "0", brightness=rng.uniform(0.05, 0.25)) for i in range(12)
    ]
    few = [
        pixel_row(f"rare/{i}", "train", "rare", "0", brightness=0.99) for i in range(4)
    ]  # Too few to judge.
    classes, found = checks.property_imbalance(rows + night + few, checks.CheckOptions())
    assert [(a.check, a.feature, a.split, a.severity) for a in found] == [
        (checks.PROPERTY_IMBALANCE, spec.BRIGHTNESS, "train", checks.WARNING)
    ]
    assert found[0].description.startswith(
        "class 'night' is darker than the other classes: its image is the lower brightness in 100% of pairs"
    )
    by_label = {c["label"]: c for c in classes}
    assert by_label["night"]["share_above"][spec.BRIGHTNESS] == 0.0
    assert spec.BRIGHTNESS not in by_label["rare"]["share_above"]
    assert by_label["rare"]["median"][spec.BRIGHTNESS] == 0.99


def test_validation_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="validation.gate: fail or warn"):
        load_config(None, {"validation": {"gate": "maybe"}})
    with pytest.raises(ConfigError, match="validation.severities.leakage: unknown check"):
        load_config(None, {"validation": {"severities": {"leakage": "error"}}})
    with pytest.raises(ConfigError, match="validation.drift_features.width: linf or js"):
        load_config(None, {"validation": {"drift_features": {"width": "kl"}}})
    with pytest.raises(ConfigError, match=r"validation.property_imbalance: in \(0.5, 1\]"):
        load_config(None, {"validation": {"property_imbalance": 0.3}})
    with pytest.raises(ConfigError, match="ingest.flags.sharp: unknown flag"):
        load_config(None, {"ingest": {"flags": {"sharp": 0.1}}})
    with pytest.raises(ConfigError, match="ingest.flags.near_duplicate: a whole number of bits"):
        load_config(None, {"ingest": {"flags": {"near_duplicate": 2.5}}})
    with pytest.raises(ConfigError, match="ingest.flags.dark: 0-1"):
        load_config(None, {"ingest": {"flags": {"dark": 3}}})
    flags = load_config(None, {"ingest": {"flags": {"near_duplicate": 2}}}).ingest.to_options().flags
    assert (flags.near_duplicate, flags.dark) == (2, 0.2)  # One key overrides; the rest stay.
    config = load_config(None, {"validation": {"severities": {"drift": "warning"}}})
    options = config.validation.check_options()
    assert options.severity(checks.DRIFT) == checks.WARNING
    assert options.severity(checks.SPLIT_LEAKAGE) == checks.ERROR
    assert dict(options.drift_features)["label"] == checks.LINF


def labelled_schema(path, labels):
    """The checked-in schema plus the dataset's label vocabulary as a string domain."""
    with open(schemas.DEFAULT_SCHEMA) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    label = next(f for f in schema.feature if f.name == spec.LABEL)
    label.string_domain.value.extend(labels)
    with open(path, "w") as f:
        f.write(text_format.MessageToString(schema))
    return str(path)


def noise_png(seed, size):
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """One dataset with every anomaly injected, run up to the gate: (output dir, error, images)."""
    root = tmp_path_factory.mktemp("bad")
    images = root / "images"
    write_sample_data(str(images), kind="shapes", count=120, seed=5)
    for path in sorted(glob.glob(str(images / "triangle" / "*.jpg")))[6:]:
        os.remove(path)  # 6 triangles: too few for training.
    for i in range(8):
        write(images / "tiny" / f"tiny_{i}.png", noise_png(i, 8))  # Quarantined as too small.
    write(images / "odd" / "hexagon.png", noise_png(99, 40))  # A label outside the vocabulary.
    leaked = sorted(glob.glob(str(images / "circle" / "*.jpg")))[0]
    shutil.copy(leaked, images / "circle" / "leaked_copy.jpg")
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "label", "split"])
        for path in sorted(glob.glob(str(images / "*" / "*"))):
            rel = os.path.relpath(path, images)
            label = {"tiny": "circle", "odd": "hexagon"}.get(rel.split("/")[0], rel.split("/")[0])
            split = {leaked: "train", str(images / "circle" / "leaked_copy.jpg"): "test"}.get(path, "")
            out.writerow([rel, label, split])
    overrides = {
        "input": {"images": str(images), "manifest": str(manifest)},
        "validation": {"schema": labelled_schema(root / "schema.pbtxt", ["circle", "square", "triangle"])},
    }
    out = root / "run"
    with pytest.raises(DataGateError) as error:
        run_pipeline(load_config(None, overrides), str(out), echo=lambda _: None, train=False)
    return out, str(error.value), overrides


def read_checks(out):
    (path,) = glob.glob(str(out / "pipeline_root" / "DataChecks" / "checks" / "*" / "checks.json"))
    with open(path) as f:
        return json.load(f)


def test_injected_anomalies_stop_the_run_before_training(bad_run):
    out, message, _ = bad_run
    result = read_checks(out)
    assert result["verdict"] == "fail" and result["blocks_training"]
    found = {(a["check"], a.get("feature")) for a in result["anomalies"]}
    assert (checks.QUARANTINE_RATE, None) in found
    assert (checks.MIN_CLASS_COUNT, spec.LABEL) in found
    assert (checks.SPLIT_LEAKAGE, spec.SHA256) in found
    tfdv_label = [a for a in result["anomalies"] if a["source"] == "tfdv" and a["feature"] == spec.LABEL]
    assert tfdv_label and "hexagon" in tfdv_label[0]["description"]
    by_title = {a["title"]: a["description"] for a in result["anomalies"] if a["severity"] == "error"}
    assert "class 'triangle' has" in by_title["min_class_count [train/label]"]
    assert "too_small 8" in by_title["quarantine_rate"]
    # The gate's message names every error anomaly and where the report is; the report exists.
    assert message.startswith("cvpipe data gate: the data failed validation")
    for title in by_title:
        assert title in message
    report = message.split("Report: ")[1].splitlines()[0]
    assert os.path.isfile(report)
    assert not glob.glob(str(out / "pipeline_root" / "Trainer"))


def test_warn_only_gate_lets_the_same_data_through(bad_run):
    out, _, overrides = bad_run
    warn = load_config(None, merge(overrides, {"validation": {"gate": "warn"}}))
    result = run_pipeline(warn, str(out), echo=lambda _: None, train=False)
    assert result.nodes["ImageExampleGen"] == "cached" and result.nodes["DataGate"] == "ran"
    checks_uri = result.outputs["DataChecks"]["checks"][0]
    with open(os.path.join(checks_uri, "checks.json")) as f:
        assert json.load(f)["verdict"] == "fail"
    report = os.path.join(result.outputs["ValidationReport"]["report"][0], "index.html")
    assert "FAIL: the gate is warn-only, so the run went on" in open(report, encoding="utf-8").read()


def test_report_command_renders_an_existing_run(bad_run, tmp_path):
    out, _, _ = bad_run
    path = write_report(str(out), str(tmp_path / "r.html"))
    page = open(path, encoding="utf-8").read()
    assert "FAIL" in page and "leaked_copy.jpg" in page and "tiny/tiny_0.png" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_report_and_lineage_of_a_run_import_neither_tensorflow_tfx_nor_beam(bad_run, tmp_path):
    out, _, _ = bad_run
    fresh = cvpipe_in_fresh_process(["report", str(out), "--out", str(tmp_path / "r.html")])
    assert (fresh.code, fresh.heavy) == (0, []), fresh.err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "FAIL" in page and "leaked_copy.jpg" in page and "data:image/jpeg;base64," in page
    fresh = cvpipe_in_fresh_process(["lineage", str(out)])  # Validated only: nothing was pushed.
    assert (fresh.code, fresh.heavy) == (2, []) and "no pushed model recorded" in fresh.err


def copy_into(source, folder, name, wanted_splits, make):
    """``make(image, attempt)`` saved under ``folder`` until its content hash puts it in a wanted split."""
    from components.image_example_gen.records import assign_split

    with Image.open(source) as image:
        image = image.convert("RGB")
        for attempt in range(60):
            data = make(image, attempt)
            if assign_split(hashlib.sha256(data).hexdigest(), spec.DEFAULT_SPLITS) in wanted_splits:
                return write(folder / name, data)
    raise AssertionError(f"no copy of {source} landed in {wanted_splits}")


def in_split(path, split):
    from components.image_example_gen.records import assign_split

    with open(path, "rb") as f:
        return assign_split(hashlib.sha256(f.read()).hexdigest(), spec.DEFAULT_SPLITS) == split


def reencoded(image, attempt):
    return encode(image, "JPEG", quality=95 - attempt)


@pytest.fixture(scope="module")
def drift_run(tmp_path_factory):
    """Span 0 balanced; span 1 mostly circles, brighter (a new camera), with one image of each
    quality flag but odd_aspect_ratio (its size would drift width), and near duplicates of train
    images in eval/test, of this span's and of span 0's.

    Span 1 runs twice: as configured (label drift stops it), and with property_drift an error and
    drift a warning. Returns (output dir, span-0 result, gate error, progress lines, second error).
    """
    root = tmp_path_factory.mktemp("drift")
    span0 = root / "images" / "span-0"
    write_sample_data(str(span0), kind="shapes", count=120, seed=1)
    span1 = root / "images" / "span-1"
    write_sample_data(str(span1), kind="shapes", count=180, seed=2)
    for shape in ("square", "triangle"):
        for path in sorted(glob.glob(str(span1 / shape / "*.jpg")))[20:]:
            os.remove(path)
    for path in glob.glob(str(span1 / "*" / "*.jpg")):  # The new camera: brighter, same Exif.
        with Image.open(path) as image:
            exif = image.info["exif"]
            brighter = image.point(lambda v: min(255, int(v * 1.5) + 40))
        brighter.save(path, "JPEG", quality=92, exif=exif)
    circles = sorted(glob.glob(str(span1 / "circle" / "*.jpg")))
    with Image.open(circles[0]) as image:
        shape = image.convert("RGB")
    write(span1 / "circle" / "q_dark.jpg", encode(shape.point(lambda v: v // 6), "JPEG"))
    write(span1 / "circle" / "q_light.jpg", encode(shape.point(lambda v: 215 + v // 6), "JPEG"))
    write(span1 / "circle" / "q_blurred.jpg", encode(shape.filter(ImageFilter.GaussianBlur(3)), "JPEG"))
    write(span1 / "circle" / "q_flat.png", encode(Image.new("RGB", (64, 64), (128, 128, 128)), "PNG"))
    write(span1 / "circle" / "q_grey.jpg", encode(shape.convert("L").convert("RGB"), "JPEG"))
    # Re-encoded copies that the content hash puts in eval or test, of a train image of this span
    # and of span 0.
    twin1 = next(p for p in circles[1:] if in_split(p, "train"))
    copy_into(twin1, span1 / "circle", "z_copy_of_span1.jpg", ("eval", "test"), reencoded)
    twin0 = next(p for p in sorted(glob.glob(str(span0 / "square" / "*.jpg"))) if in_split(p, "train"))
    copy_into(twin0, span1 / "square", "z_copy_of_span0.jpg", ("eval", "test"), reencoded)

    out = root / "run"
    pattern = str(root / "images" / "span-{SPAN}")
    first = run_pipeline(
        load_config(None, {"input": {"images": pattern, "span": 0}}),
        str(out),
        echo=lambda _: None,
        train=False,
    )
    lines = []
    with pytest.raises(DataGateError) as error:
        run_pipeline(
            load_config(None, {"input": {"images": pattern}}), str(out), echo=lines.append, train=False
        )
    severities = {"drift": "warning", "property_drift": "error"}
    strict = load_config(None, {"input": {"images": pattern}, "validation": {"severities": severities}})
    with pytest.raises(DataGateError) as strict_error:
        run_pipeline(strict, str(out), echo=lambda _: None, train=False)
    return out, first, str(error.value), lines, str(strict_error.value)


def test_clean_span_passes_and_a_shifted_span_drifts(drift_run):
    out, first, message, lines, _ = drift_run
    with open(os.path.join(first.outputs["DataChecks"]["checks"][0], "checks.json")) as f:
        clean = json.load(f)
    assert clean["verdict"] == "pass"
    # The sample shapes (one shape on dark noise, in similar places) have pHash look-alikes, which
    # near_duplicate_leakage reports as warnings; nothing else is found.
    assert {a["check"] for a in clean["anomalies"]} <= {checks.NEAR_DUPLICATE_LEAKAGE}
    assert all(a["severity"] == checks.WARNING for a in clean["anomalies"])
    assert clean["drift"]["note"] == "no previous span: drift not compared"
    # Span 0's statistics and pixel table are kept at a stable place, where the next span finds them.
    store = out / "pipeline_root" / "cvpipe" / "statistics"
    assert json.load(open(store / "span-0" / "span.json"))["verdict"] == "pass"
    assert os.path.exists(store / "span-0" / "Split-train" / "FeatureStats.pb")
    assert len(pq.read_table(store / "span-0" / "pixels.parquet")) == 120

    (second,) = [  # Span 1 as configured (not the rerun with property_drift an error).
        c
        for c in glob.glob(str(out / "pipeline_root/DataChecks/checks/*/checks.json"))
        if json.load(open(c))["span"] == 1 and json.load(open(c))["options"]["severities"]["drift"] == "error"
    ]
    with open(second) as f:
        drifted = json.load(f)
    rows = {r["feature"]: r for r in drifted["drift"]["features"]}
    assert drifted["drift"]["baseline_span"] == 0
    assert drifted["drift"]["baseline_statistics"] == str(
        out / "pipeline_root" / "cvpipe" / "statistics" / "span-0"
    )
    assert rows["label"]["drifted"] and rows["label"]["value"] > 0.2
    assert rows["label"]["comparator"] == "L-infinity" and rows["width"]["comparator"] == "Jensen-Shannon"
    assert not rows["width"]["drifted"] and not rows["camera_make"]["drifted"]
    errors = [a["title"] for a in drifted["anomalies"] if a["severity"] == checks.ERROR]
    assert errors == ["drift [train/label]"]
    assert "drift [train/label]" in message
    # The brighter camera: brightness drifted (TFDV's Jensen-Shannon on the example feature).
    assert rows["brightness"]["check"] == checks.PROPERTY_DRIFT and rows["brightness"]["drifted"]
    assert rows["brightness"]["value"] > 0.1 and rows["brightness"]["comparator"] == "Jensen-Shannon"
    warned = {(a["check"], a["feature"]) for a in drifted["anomalies"] if a["severity"] == checks.WARNING}
    assert (checks.PROPERTY_DRIFT, spec.BRIGHTNESS) in warned
    # Near duplicates of train images in eval/test: of this span's, and of span 0's.
    leaks = [a["description"] for a in drifted["anomalies"] if a["check"] == checks.NEAR_DUPLICATE_LEAKAGE]
    assert any("are near duplicates of train images" in d for d in leaks)
    assert any("are near duplicates of span 0's train images" in d for d in leaks)
    pairs = drifted["near_duplicates"]
    assert pairs["baseline_span"] == 0 and pairs["distance"] == 6
    assert "circle/z_copy_of_span1.jpg" in {p["path"] for p in pairs["across_splits"]}
    twins = [p for p in pairs["across_spans"] if p["path"] == "square/z_copy_of_span0.jpg"]
    assert twins and min(p["distance"] for p in twins) <= 2  # Its source; look-alikes may follow.

    # Each injected image carries its flag in span 1's catalog.
    (catalog,) = [
        c
        for c in glob.glob(str(out / "pipeline_root/ImageExampleGen/catalog/*/catalog.parquet"))
        if "q_dark" in str(pq.read_table(c).column(spec.PATH).to_pylist())
    ]
    flagged = {r[spec.PATH]: r for r in pq.read_table(catalog).to_pylist()}
    for name, flag in [
        ("dark", spec.DARK),
        ("light", spec.LIGHT),
        ("blurred", spec.BLURRY),
        ("flat", spec.LOW_INFORMATION),
        ("grey", spec.GRAYSCALE),
    ]:
        (path,) = [p for p in flagged if f"q_{name}." in p]
        assert [p for p, r in flagged.items() if r[flag]] == [path]  # That image, and only that one.
        assert f"{flag}: " in flagged[path][spec.FLAG_REASONS], path
    copy = flagged["circle/z_copy_of_span1.jpg"]
    assert (
        copy[spec.NEAR_DUPLICATE_OF].startswith("circle/circle_") and copy[spec.NEAR_DUPLICATE_DISTANCE] <= 2
    )


def test_the_gate_stops_on_property_drift_when_it_is_an_error(drift_run):
    strict = drift_run[4]  # Span 1 again with drift a warning and property_drift an error.
    blocking = [line for line in strict.splitlines() if line.startswith("  - ")]
    assert blocking and all(line.startswith("  - property_drift [train/") for line in blocking)
    assert "  - property_drift [train/brightness]: brightness drifted from the previous span" in strict


CHROMIUM = os.environ.get("CVPIPE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-output")


def open_offline(path, screenshot=None):
    """Opens ``path`` in headless Chromium with JavaScript off; returns (requests, text, images ok)."""
    from playwright.sync_api import sync_playwright

    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
            # Every request is recorded; anything but the file itself is refused.
            context.route(
                "**/*",
                lambda route: route.continue_() if route.request.url == f"file://{path}" else route.abort(),
            )
            context.on("request", lambda request: requests.append(request.url))
            page = context.new_page()
            page.goto(f"file://{path}", wait_until="load")
            text = page.inner_text("body")
            images = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            if screenshot:
                os.makedirs(os.path.dirname(screenshot), exist_ok=True)
                page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()
    return requests, text, images


def section(page: str, anchor: str) -> str:
    """The HTML of one report section."""
    return page.split(f'<section id="{anchor}">')[1].split("</section>")[0]


def test_the_browser_check_sees_a_page_that_fetches(tmp_path):
    """Control: a page with one external image is caught, so the offline assertions below can fail."""
    page = tmp_path / "fetches.html"
    page.write_text('<html><body><p>hello</p><img src="http://127.0.0.1:9/x.png"></body></html>')
    requests, text, _ = open_offline(str(page))
    assert "http://127.0.0.1:9/x.png" in requests and "hello" in text


def test_report_opens_offline_in_chromium_and_shows_every_anomaly(bad_run, drift_run):
    out, message, _ = bad_run
    report = message.split("Report: ")[1].splitlines()[0]
    requests, text, images = open_offline(report, os.path.join(SCREENSHOTS, "report-injected.png"))
    assert requests == [f"file://{report}"]  # No network request, not even a failed one.
    assert "FAIL: training blocked by the data gate" in text
    for shown in (
        "quarantine_rate",
        "too_small 8",
        "min_class_count",
        "class 'triangle' has",
        "split_leakage",
        "leaked_copy.jpg",
        "hexagon",
        "tiny/tiny_0.png",
    ):
        assert shown in text, shown
    assert all(images)
    page = open(report, encoding="utf-8").read()
    assert section(page, "classes").count("<img") == 8 + 8 + 6 + 1  # circle, square, 6 triangles, hexagon.
    assert os.path.getsize(report) < 1_000_000

    drift_report = drift_run[2].split("Report: ")[1].splitlines()[0]
    requests, text, images = open_offline(drift_report, os.path.join(SCREENSHOTS, "report-drift.png"))
    assert requests == [f"file://{drift_report}"] and all(images)
    assert "FAIL: training blocked by the data gate" in text and "drifted" in text
    assert "label drifted from the previous span: L-infinity distance" in text
    assert "L-infinity" in text and "Jensen-Shannon" in text
    # What the pixels show: each flag with its images, near-duplicate pairs side by side (of this
    # span and of span 0), and the property histograms of each split beside span 0's.
    page = open(drift_report, encoding="utf-8").read()
    quality = section(page, "quality")
    shown_flags = [f for f in spec.FLAGS if f != spec.ODD_ASPECT_RATIO]  # An odd size would drift width.
    for flag in shown_flags:
        assert f'<h3 id="flag-{flag}">{flag}' in quality, flag
    assert quality.count("data:image/jpeg;base64,") >= len(shown_flags)
    assert "circle/q_dark.jpg" in text and "the brightest 1% of pixels reach only" in quality
    within_span, across_spans = section(page, "near-duplicates").split("Across spans")
    pair = next(p for p in across_spans.split('<div class="pair">') if "z_copy_of_span0.jpg" in p)
    assert pair.count("data:image/jpeg;base64,") == 2 and "span 0 train" in pair  # Both sides shown.
    shown_pairs = within_span.split('<div class="pair">')[1:]
    assert shown_pairs and all(p.count("data:image/jpeg;base64,") == 2 for p in shown_pairs)
    assert "brightness drifted from the previous span: Jensen-Shannon" in text
    properties = section(page, "properties")
    assert re.search(r"span 0 train \(\d+\)", properties) and properties.count('<svg class="hist"') >= 6 * 4
    assert "By class (train)" in text
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_cli_exits_3_with_the_gate_message_and_warn_only_prints_the_verdict(bad_run, tmp_path, capsys):
    import yaml

    from pipelines.cli import main

    out, _, overrides = bad_run
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(overrides))
    args = ["run", "--output", str(out), "--config", str(config), "--validate-only"]
    assert main(args) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("cvpipe data gate: the data failed validation")
    assert "  - split_leakage [test/sha256]:" in captured.err and "\nReport: " in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert "  ! DataGate failed after" in captured.out

    config.write_text(yaml.safe_dump(merge(overrides, {"validation": {"gate": "warn"}})))
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Data validation: FAIL (gate: warn, so the run went on): 5 error anomalies" in printed
    assert "  error   split_leakage [test/sha256]: 1 test image(s) are byte-identical" in printed
    assert "Report:    " in printed


def test_statistics_store_compares_with_the_last_span_that_passed(tmp_path):
    from components.data_checks import store

    stats = tmp_path / "stats"
    os.makedirs(stats / "Split-train")
    (stats / "Split-train" / "FeatureStats.pb").write_bytes(b"")
    root = str(tmp_path / "store")
    assert store.baseline_for(root, 5) is None
    store.publish(root, 3, str(stats), "pass")
    store.publish(root, 4, str(stats), "fail")  # Drifted data is not the next span's baseline.
    store.publish(root, 7, str(stats), "pass")
    os.makedirs(tmp_path / "store" / "span-6" / "Split-train")  # Half-written: no span.json yet.
    assert store.baseline_for(root, 5).span == 3
    assert store.baseline_for(root, 8).span == 7
    assert store.baseline_for(root, 3) is None
    assert os.path.exists(os.path.join(store.baseline_for(root, 5).uri, "Split-train", "FeatureStats.pb"))


def test_report_thumbnails_stop_reading_once_every_label_is_full(shapes_examples, tmp_path):
    from components.validation_report.render import sample_thumbnails

    examples_dir, labels, _ = shapes_examples
    shutil.copytree(os.path.join(examples_dir, "Split-train"), tmp_path / "Split-train")
    shutil.copy(os.path.join(examples_dir, spec.LABELS_FILE), tmp_path / spec.LABELS_FILE)
    write(tmp_path / "Split-eval" / "data_tfrecord-00000.gz", b"not a TFRecord")  # Never read.
    found = sample_thumbnails(str(tmp_path), ["train", "eval"], per_class=2, max_classes=60)
    assert sorted(found) == sorted(labels) and all(len(v) == 2 for v in found.values())
    os.remove(tmp_path / spec.LABELS_FILE)  # No vocabulary: every split is read, the bad one too.
    with pytest.raises(Exception, match="corrupted record|DataLoss|not a gzip|incorrect header"):
        sample_thumbnails(str(tmp_path), ["train", "eval"], per_class=2, max_classes=60)
