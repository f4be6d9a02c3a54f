"""README snippets run, so the docs cannot drift from the code."""

import os
import re

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_component_readme_snippet_runs(tmp_path, capsys):
    (block,) = python_blocks("components/image_example_gen/README.md")
    exec(block, {"IMAGES_DIR": str(tmp_path)})
    assert "['catalog', 'examples']" in capsys.readouterr().out


def test_schema_readme_catalog_queries_use_real_columns(tmp_path, monkeypatch):
    from components.image_example_gen.records import catalog_schema

    columns = catalog_schema({}).names
    for block in python_blocks("schemas/README.md") + python_blocks("README.md"):
        for name in re.findall(r"\b([a-z_]+) (?:==|<|>=|!=)", block):
            assert name in columns, name
    empty = pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    monkeypatch.setattr(pd, "read_parquet", lambda path: empty)
    for block in python_blocks("schemas/README.md"):
        exec(block, {})


def test_serving_pusher_readme_snippet_runs(tmp_path, capsys):
    (block,) = python_blocks("components/serving_pusher/README.md")
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"x")
    exec(block, {"MODEL_DIR": str(model), "SERVING_DIR": str(tmp_path / "serving")})
    assert capsys.readouterr().out == "['saved_model.pb']\nTrue\n"


def test_tflite_and_model_readme_snippets_run(capsys):
    for path in ("components/tflite_exporter/README.md", "components/image_model/README.md"):
        (block,) = python_blocks(path)
        exec(block, {})
    out = capsys.readouterr().out
    assert "True" in out and "(2, 3)" in out


def test_data_checks_and_report_readme_snippets_run(capsys):
    (block,) = python_blocks("components/data_checks/README.md")
    exec(block, {})
    assert capsys.readouterr().out.splitlines() == [
        "error min_class_count [train/label]",
        "error split_leakage [test/sha256]",
        "error label_not_in_train [test/label]",
        "True",
    ]
    (block,) = python_blocks("components/validation_report/README.md")
    exec(block, {})
    assert capsys.readouterr().out == "True False\n"


def test_served_model_and_evaluator_readme_snippets_run(tmp_path, capsys):
    (block,) = python_blocks("components/served_model/README.md")
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"x")
    exec(block, {"MODEL_DIR": str(model), "SERVING_DIR": str(tmp_path / "serving")})
    assert capsys.readouterr().out == "None\nTrue Trainer/model/7\n"
    (block,) = python_blocks("components/model_evaluator/README.md")
    exec(block, {})
    assert capsys.readouterr().out == "['blessing', 'evaluation', 'metrics']\n"


def test_input_fingerprint_readme_snippet_runs(tmp_path, capsys):
    from tests.conftest import encode, gradient, write

    for span, count in ((1, 1), (2, 3)):
        for i in range(count):
            write(str(tmp_path / f"span-{span}" / "cat" / f"{i}.jpg"), encode(gradient(), "JPEG"))
    (block,) = python_blocks("components/input_fingerprint/README.md")
    exec(block, {"IMAGES_DIR": str(tmp_path)})
    assert capsys.readouterr().out == "2 3 64\n"
