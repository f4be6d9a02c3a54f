"""The cvpipe command line: sample data, ingestion, and the whole pipeline end to end."""

import glob
import json
import os
import re

import pyarrow.parquet as pq
import pytest
import tensorflow_data_validation as tfdv

from components.image_example_gen import spec
from pipelines.cli import main
from tests.conftest import cvpipe_in_fresh_process, write


def test_sample_data_digits_are_real_grey_pngs(tmp_path, capsys):
    assert main(["sample-data", str(tmp_path / "d"), "--kind", "digits", "--count", "40"]) == 0
    files = glob.glob(str(tmp_path / "d" / "*" / "*.png"))
    assert len(files) == 40 and "Wrote 40 digits images" in capsys.readouterr().out
    assert {os.path.basename(os.path.dirname(f)) for f in files} <= set("0123456789")


def test_ingest_prints_summary_and_writes_outputs(tmp_path, capsys):
    images = tmp_path / "images"
    main(["sample-data", str(images), "--count", "30"])
    write(images / "circle" / "broken.jpg", b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "out"
    assert main(["ingest", "--images", str(images), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Ingested 30 of 31 files" in printed and "corrupt_image: 1" in printed
    assert str(out / "catalog.parquet") in printed
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["seen"], summary["ingested"], summary["quarantined"]) == (31, 30, 1)
    table = pq.read_table(str(out / "catalog.parquet")).to_pandas()
    pi = table[(table.camera_make == "RaspberryPi") & (table.gps_longitude < 0)]
    assert len(pi) == 30  # The catalog answers "which images came from the Pi, west of Greenwich".
    assert glob.glob(str(out / "examples" / "Split-train" / "*.gz"))


def test_bad_config_exits_with_a_message_naming_the_field(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("ingest:\n  chanels: 3\n")
    code = main(
        ["ingest", "--images", str(tmp_path), "--output", str(tmp_path / "o"), "--config", str(config)]
    )
    assert code == 2 and "ingest.chanels: unknown field" in capsys.readouterr().err


def test_missing_image_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["ingest", "--images", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "is not a directory" in capsys.readouterr().err


FAST_MODEL = """
model: {image_size: 32}
training: {epochs: 10}
tuning: {max_trials: 2, epochs: 2, search_space: {width: [12, 16], depth: [1], learning_rate: [0.004]}}
evaluation: {min_accuracy: 0.5}  # Mechanics, not accuracy: three classes, ~20 eval images.
edge: {max_accuracy_drop: 0.3, min_agreement: 0.7}  # Mechanics: ~20 eval images, one is 5 points.
"""


def kill_during(args, marker: str, seconds_after: float) -> str:
    """Runs the installed `cvpipe ARGS` and kills it (and its workers) once ``marker`` is printed."""
    import signal
    import subprocess
    import sys
    import time

    script = os.path.join(os.path.dirname(sys.executable), "cvpipe")
    process = subprocess.Popen(
        [script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if marker in line:
                time.sleep(seconds_after)
                break
        assert process.poll() is None, "".join(lines)[-3000:]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    return "".join(lines)


@pytest.mark.slow
def test_run_killed_in_training_resumes_trains_blesses_pushes_and_reuses_the_cache(tmp_path, capsys):
    images = tmp_path / "images"
    main(["sample-data", str(images), "--count", "210"])
    write(images / "square" / "truncated.jpg", (images / "square" / "square_00001.jpg").read_bytes()[:900])
    config = tmp_path / "fast.yaml"
    config.write_text(FAST_MODEL)
    out = tmp_path / "run"
    args = ["run", "--images", str(images), "--output", str(out), "--config", str(config)]
    # Killed as soon as Keras starts epoch 5: on a fast machine the remaining epochs of this small
    # model take well under a second, and a run killed after its fit completed (which removes the
    # backup) would have nothing to resume from.
    killed = kill_during(args, "Epoch 5/10", seconds_after=0)
    assert "< Tuner finished" in killed and "Trainer finished" not in killed
    backups = glob.glob(str(out / "pipeline_root" / "Trainer" / ".backup" / "**" / "*.index"), recursive=True)
    assert backups, "killed after the fit completed: no backup left to resume from"

    assert main(args) == 0  # Started again: reuses what finished, redoes the Trainer, completes.
    printed = capsys.readouterr().out
    # The Trainer resumed from its last completed epoch (BackupAndRestore), not from the start.
    before = [int(e) for e in re.findall(r"^Epoch (\d+)/10", killed, re.M)]
    epochs = [int(e) for e in re.findall(r"^Epoch (\d+)/10", printed, re.M)]
    assert epochs == list(range(epochs[0], 11)) and epochs[0] > before[0], (before, epochs)
    # Progress: a line per node as it is reused, starts and finishes (with its duration).
    assert "  = Tuner reused from cache" in printed and "  > Trainer started" in printed
    assert re.search(r"  < EdgePusher finished in \d+\.\ds", printed)
    nodes = (
        "InputFingerprint",
        "ImageExampleGen",
        "ServedModel",
        "StatisticsGen",
        "SchemaGen",
        "ExampleValidator",
        "DataChecks",
        "ValidationReport",
        "DataGate",
        "Tuner",
        "Trainer",
        "TFLiteExporter",
        "Evaluator",
        "ServingPusher",
        "EdgePusher",
        "ModelReview",
    )
    for node in nodes[:10]:  # Up to the Tuner: finished before the kill.
        assert f"{node}: cached" in printed, node
    for node in nodes[10:]:
        assert f"{node}: ran" in printed, node
    assert "Ingested 210 of 211 files: 1 quarantined" in printed
    assert "Data validation: PASS: no error anomalies" in printed
    report = next(line.split(None, 1)[1] for line in printed.splitlines() if line.startswith("Report:"))
    assert report.endswith("index.html") and os.path.isfile(report)
    assert "Evaluation: BLESSED" in printed
    versions = glob.glob(str(out / "serving" / "cvpipe" / "[0-9]*"))
    assert len(versions) == 1 and f"Serving model: {versions[0]}" in printed
    edge = out / "edge" / "cvpipe" / os.path.basename(versions[0])  # Same version as serving.
    assert f"Edge model:    {edge}" in printed and "TFLite int8: accuracy" in printed
    assert {"model_int8.tflite", "labels.txt", "parity.json", "cvpipe_manifest.json"} <= set(os.listdir(edge))
    review_page = next(line[14:] for line in printed.splitlines() if line.startswith("Model review: "))
    assert review_page.endswith("model_review.html") and os.path.isfile(review_page)
    # Training throughput in the run's metrics: the Trainer's, and every tuning trial's.
    trained = json.loads(next(out.glob("pipeline_root/Trainer/model_run/*/metrics.json")).read_text())
    assert trained["images_per_second"] > 0 and trained["first_epoch_images_per_second"] > 0
    # It went on from the best trial's weights (2-epoch trials): only the remaining epochs.
    best = json.loads(next(out.glob("pipeline_root/Tuner/tuner_results/*/best_trial.json")).read_text())
    assert trained["continued_from"]["epochs"] == best["epochs"] in (1, 2)
    done = best["epochs"]
    assert f"Trained:   {10 - done} epochs on from the best trial's weights (its {done})" in printed
    tuning = json.loads(next(out.glob("pipeline_root/Tuner/tuner_results/*/trials.json")).read_text())
    assert tuning["worker_restarts"] == [] and len(tuning["trials"]) >= 1
    assert all(t["status"] == "COMPLETED" and t["images_per_second"] > 0 for t in tuning["trials"])

    stats_files = glob.glob(str(out / "pipeline_root/StatisticsGen/statistics/*/Split-train/FeatureStats.pb"))
    stats = tfdv.load_stats_binary(stats_files[0]).datasets[0]
    image = next(f for f in stats.features if f.path.step[0] == spec.IMAGE)
    assert "image_format_histogram" in {c.name for c in image.custom_stats}
    # The pixel properties measured while ingesting are example features with TFDV statistics.
    assert {"brightness", "contrast", "sharpness", "colourfulness", "phash"} <= {
        f.path.step[0] for f in stats.features
    }

    samples = [str(p) for p in sorted(images.glob("*/*_0000[0-5].jpg"))]
    assert main(["predict", str(out / "serving" / "cvpipe"), *samples]) == 0
    served = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [row[0] for row in served] == samples and {row[1] for row in served} <= {
        "circle",
        "square",
        "triangle",
    }
    assert main(["predict", str(edge / "model_int8.tflite"), *samples]) == 0
    edge_labels = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    assert sum(a == b[1] for a, b in zip(edge_labels, served)) >= len(samples) - 1

    assert main(["lineage", str(out)]) == 0
    lineage = capsys.readouterr().out
    assert f"  serving: {versions[0]}" in lineage and f"  edge:    {edge}" in lineage
    assert f"  span 0 of {images}" in lineage and "  validation:  pass" in lineage
    assert "ImageExampleGen/examples/" in lineage and "StatisticsGen/statistics/" in lineage
    assert "SchemaGen/schema/" in lineage and "ValidationReport/report/" in lineage
    assert "  hyperparameters: {" in lineage and '"width": ' in lineage and "evaluation:  BLESSED" in lineage
    assert main(["lineage", str(edge)]) == 0 and f"  serving: {versions[0]}" in capsys.readouterr().out
    # Reading a run starts fast: lineage and report import neither TensorFlow, TFX nor Beam.
    fresh = cvpipe_in_fresh_process(["lineage", str(out)])
    assert (fresh.code, fresh.heavy, fresh.out) == (0, [], lineage), fresh.err
    fresh = cvpipe_in_fresh_process(["report", str(out)])
    assert (fresh.code, fresh.heavy) == (0, []), fresh.err
    reviewed = str(out / "model_review.html")
    assert fresh.out == f"Report: {out / 'validation_report.html'}\nModel review: {reviewed}\n"
    page = (out / "validation_report.html").read_text(encoding="utf-8")
    assert "PASS" in page
    classes = page.split('<section id="classes">')[1].split("</section>")[0]
    assert classes.count("data:image/jpeg;base64,") == 3 * 8  # 8 thumbnails per class.
    for section in ("quality", "near-duplicates", "properties"):  # What the pixels show.
        assert f'<section id="{section}">' in page, section
    # The model review beside it, the two linked, each opening offline in headless Chromium.
    from tests.test_data_checks import SCREENSHOTS, open_offline

    assert 'href="model_review.html"' in page
    review = json.loads(open(os.path.join(os.path.dirname(review_page), "review.json")).read())
    assert [s["split"] for s in review["splits"]] == ["eval", "test"]
    by_split = json.loads(next(out.glob("pipeline_root/ImageExampleGen/catalog/*/summary.json")).read_text())
    assert {s["split"]: s["examples"] for s in review["splits"]} == {
        split: by_split["by_split"][split] for split in ("eval", "test")
    }
    assert review["edge"][0]["mode"] == "int8" and review["blessed"] is True
    assert len(review["tuning"]["trials"]) == len(tuning["trials"]) and review["history"]["epoch"][-1] == 9
    requests, text, thumbnails = open_offline(reviewed, os.path.join(SCREENSHOTS, "model-review-run.png"))
    assert requests == [f"file://{reviewed}"] and all(thumbnails)
    assert len(thumbnails) == len(review["mistakes"]) + len(review["edge"][0]["disagreements"])
    assert "cvpipe model review: blessed by the Evaluator" in text and "Data validation report" in text
    for section in ("Confusion matrix", "Most confident mistakes", "TFLite against the SavedModel"):
        assert section in text, section
    assert "Tuning trials" in text and f"Training resumed at epoch {epochs[0]}" in text
    assert f"Epochs 1-{done} are the best tuning trial's" in text  # Killed, then resumed.
    assert 'href="validation_report.html"' in (out / "model_review.html").read_text(encoding="utf-8")
    requests, text, _ = open_offline(str(out / "validation_report.html"))
    assert requests == [f"file://{out / 'validation_report.html'}"] and "Model review" in text

    assert main(args) == 0
    rerun = capsys.readouterr().out
    for node in nodes:  # Nothing re-runs: the baseline is looked up only when the data changes.
        assert f"{node}: cached" in rerun
        assert f"  = {node} reused from cache" in rerun
    assert len(glob.glob(str(out / "serving" / "cvpipe" / "[0-9]*"))) == 1
    assert f"Serving model: {versions[0]}" in rerun
    assert main(["report", str(out)]) == 0  # The cached ModelReview's page, for the same examples.
    assert f"Model review: {reviewed}" in capsys.readouterr().out

    write(images / "circle" / "new.jpg", (images / "circle" / "circle_00000.jpg").read_bytes() + b"\0")
    assert main(args + ["--validate-only"]) == 0
    assert "ImageExampleGen: ran" in capsys.readouterr().out  # New input: not served from cache.
    # The data report of the new examples does not link the review of a model trained on the old ones.
    assert main(["report", str(out)]) == 0
    assert "Model review" not in capsys.readouterr().out
    assert 'href="model_review.html"' not in (out / "validation_report.html").read_text(encoding="utf-8")


def test_installed_console_script_runs_from_any_directory(tmp_path):
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(sys.executable), "cvpipe")
    result = subprocess.run(
        [script, "sample-data", str(tmp_path / "s"), "--count", "3"],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Wrote 3 shapes images" in result.stdout


def test_run_with_an_unwritable_pipeline_root_is_a_one_line_error(tmp_path, capsys):
    images = tmp_path / "images"
    main(["sample-data", str(images), "--count", "6"])
    capsys.readouterr()
    args = [
        "run",
        "--images",
        str(images),
        "--output",
        str(tmp_path / "out"),
        "--pipeline-root",
        "nosuch://b/r",
    ]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("cvpipe: error: --pipeline-root nosuch://b/r: cannot write there (")
    assert "not implemented" in error and len(error.splitlines()) == 1
    assert not os.path.exists(tmp_path / "out" / "metadata.sqlite")  # Nothing ran.
