"""README snippets run, so the docs cannot drift from the code."""

import ast
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


def run_statements(block, namespace):
    """Runs a snippet statement by statement; returns (source, value) of each bare expression."""
    values = []
    for statement in ast.parse(block).body:
        source = ast.get_source_segment(block, statement)
        if isinstance(statement, ast.Expr):
            values.append(
                (source, eval(compile(ast.Expression(statement.value), "<readme>", "eval"), namespace))
            )
        else:
            exec(compile(ast.Module([statement], type_ignores=[]), "<readme>", "exec"), namespace)
    return values


def test_readme_catalog_queries_return_rows_of_a_real_catalog(shapes_examples, monkeypatch):
    from components.image_example_gen.records import catalog_schema

    columns = catalog_schema({}).names
    for block in python_blocks("schemas/README.md") + python_blocks("README.md"):
        for name in re.findall(r"\b([a-z_]+) (?:==|<|>=|!=)", block):
            assert name in columns, name
    catalog = os.path.join(os.path.dirname(shapes_examples[0]), "catalog.parquet")  # 240 sample shapes.
    real_read_parquet = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda path, **kwargs: real_read_parquet(catalog, **kwargs))
    total = len(real_read_parquet(catalog))
    queried = []
    for path in ("README.md", "schemas/README.md"):
        for block in python_blocks(path):
            if "read_parquet" in block:
                queried += [(path, v) for source, v in run_statements(block, {}) if ".query(" in source]
    assert [path for path, _ in queried] == ["README.md", "schemas/README.md"]
    for path, rows in queried:
        assert 0 < len(rows) <= total, path
        assert set(rows.columns) >= set(columns), path
    assert len(queried[0][1]) < total  # The capture-time condition really filters.


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


def test_edge_pusher_readme_snippet_runs(tmp_path, capsys):
    from components.image_model.model import ModelParams, build_model
    from components.tflite_exporter import convert
    from components.tflite_exporter import spec as tflite_spec

    (block,) = python_blocks("components/edge_pusher/README.md")
    exported = tmp_path / "tflite"
    exported.mkdir()
    network = build_model(ModelParams(num_classes=2, image_size=16, width=4, depth=1, input_dtype="float32"))
    model = convert.add_metadata(
        convert.convert(network, "float32"),
        ["cat", "dog"],
        name="cvpipe (float32)",
        version=tflite_spec.UNPUSHED_VERSION,
        description="test",
        author="cvpipe",
    )
    (exported / "model_float32.tflite").write_bytes(model)
    (exported / tflite_spec.LABELS_FILE).write_text("cat\ndog\n")
    (exported / tflite_spec.PARITY_FILE).write_text("{}")
    exec(block, {"TFLITE_DIR": str(exported), "EDGE_DIR": str(tmp_path / "edge")})
    assert capsys.readouterr().out == (
        "True 1795466000 ['cat', 'dog']\n['labels.txt', 'model_float32.tflite', 'parity.json']\n"
    )
