"""Data validation: each injected anomaly is found, the gate stops or warns, a clean dataset passes."""

import csv
import glob
import json
import os
import shutil

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
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


def test_validation_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="validation.gate: fail or warn"):
        load_config(None, {"validation": {"gate": "maybe"}})
    with pytest.raises(ConfigError, match="validation.severities.leakage: unknown check"):
        load_config(None, {"validation": {"severities": {"leakage": "error"}}})
    with pytest.raises(ConfigError, match="validation.drift_features.width: linf or js"):
        load_config(None, {"validation": {"drift_features": {"width": "kl"}}})
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


@pytest.fixture(scope="module")
def drift_run(tmp_path_factory):
    """Span 0 balanced, span 1 mostly circles: (output dir, span-0 result, gate error)."""
    root = tmp_path_factory.mktemp("drift")
    write_sample_data(str(root / "images" / "span-0"), kind="shapes", count=120, seed=1)
    span1 = root / "images" / "span-1"
    write_sample_data(str(span1), kind="shapes", count=180, seed=2)
    for shape in ("square", "triangle"):
        for path in sorted(glob.glob(str(span1 / shape / "*.jpg")))[20:]:
            os.remove(path)
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
    return out, first, str(error.value), lines


def test_clean_span_passes_and_a_shifted_span_drifts(drift_run):
    out, first, message, lines = drift_run
    with open(os.path.join(first.outputs["DataChecks"]["checks"][0], "checks.json")) as f:
        clean = json.load(f)
    assert clean["verdict"] == "pass" and clean["anomalies"] == []
    assert clean["drift"]["note"] == "no previous span: drift not compared"
    # Span 0's statistics are kept at a stable place, where the next span finds them.
    store = out / "pipeline_root" / "cvpipe" / "statistics"
    assert json.load(open(store / "span-0" / "span.json"))["verdict"] == "pass"
    assert os.path.exists(store / "span-0" / "Split-train" / "FeatureStats.pb")

    (second,) = [
        c
        for c in glob.glob(str(out / "pipeline_root/DataChecks/checks/*/checks.json"))
        if json.load(open(c))["span"] == 1
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
    assert [a["title"] for a in drifted["anomalies"]] == ["drift [train/label]"]
    assert "drift [train/label]" in message


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
    assert len(images) == 8 + 8 + 6 + 1 and all(images)  # circle, square, 6 triangles, hexagon.
    assert os.path.getsize(report) < 1_000_000

    drift_out = drift_run[0]
    (drift_report,) = [
        p
        for p in glob.glob(str(drift_out / "pipeline_root/ValidationReport/report/*/index.html"))
        if "span 0 (" in open(p, encoding="utf-8").read()
    ]
    requests, text, _ = open_offline(drift_report, os.path.join(SCREENSHOTS, "report-drift.png"))
    assert requests == [f"file://{drift_report}"]
    assert "FAIL: training blocked by the data gate" in text and "drifted" in text
    assert "label drifted from the previous span: L-infinity distance" in text
    assert "L-infinity" in text and "Jensen-Shannon" in text


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
