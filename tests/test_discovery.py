"""Finding inputs: class folders, manifests, path safety and span selection."""

import json
import os

import pytest

from components.image_example_gen import spec
from components.image_example_gen.discovery import LayoutError, discover, fingerprint, resolve_span
from tests.conftest import encode, gradient, write


@pytest.fixture
def root(tmp_path):
    image = encode(gradient(), "PNG")
    write(tmp_path / "images" / "cat" / "a.png", image)
    write(tmp_path / "images" / "dog" / "b.png", image)
    write(tmp_path / "outside.png", image)
    return tmp_path / "images"


def by_path(found):
    return {c.path: c for c in found.candidates}


def test_class_folders_give_labels_and_sorted_vocabulary(root):
    write(root / "dog" / "nested" / "c.png", b"x")
    found = discover(str(root))
    assert found.labels == ["cat", "dog"]
    assert by_path(found)["dog/nested/c.png"].label == "dog"
    assert all(c.reason is None for c in found.candidates)


def test_file_outside_class_folders_is_quarantined_as_unlabelled(root):
    write(root / "stray.jpg", b"x")
    assert by_path(discover(str(root)))["stray.jpg"].reason == spec.MISSING_LABEL


def test_split_folders_over_class_folders_are_predefined_splits(tmp_path):
    image = encode(gradient(), "PNG")
    for split in ("Train", "validation", "TEST"):  # Any case; val, valid, dev, eval, testing too.
        for label in ("cat", "dog"):
            write(tmp_path / split / label / f"{split}-{label}.png", image)
    write(tmp_path / "Train" / "stray.png", image)
    found = discover(str(tmp_path))
    assert found.labels == ["cat", "dog"]
    assert found.splits_from == "folders TEST/, Train/, validation/"
    found_by_path = by_path(found)
    assert (
        found_by_path["Train/cat/Train-cat.png"].split,
        found_by_path["Train/cat/Train-cat.png"].label,
    ) == (
        "train",
        "cat",
    )
    assert found_by_path["validation/dog/validation-dog.png"].split == "eval"
    assert found_by_path["TEST/dog/TEST-dog.png"].split == "test"
    stray = found_by_path["Train/stray.png"]
    assert stray.reason == spec.MISSING_LABEL and "split folder Train/" in stray.detail


def test_class_folders_alone_are_still_classes_split_by_content_hash(root):
    found = discover(str(root))
    assert found.splits_from == "content hash" and {c.split for c in found.candidates} == {None}


def test_split_folders_beside_class_folders_are_an_error_naming_both_readings(tmp_path):
    image = encode(gradient(), "PNG")
    write(tmp_path / "train" / "cat" / "a.png", image)
    write(tmp_path / "dog" / "b.png", image)
    with pytest.raises(
        LayoutError, match=r"read as splits, 'dog' is in no split; read as class folders, 'train'"
    ):
        discover(str(tmp_path))


def test_symlink_leading_outside_the_root_is_quarantined(root):
    os.symlink(root.parent / "outside.png", root / "cat" / "link.png")
    os.symlink(root.parent, root / "cat" / "linkdir")
    candidates = by_path(discover(str(root)))
    assert candidates["cat/link.png"].reason == spec.SYMLINK_ESCAPES_ROOT
    assert candidates["cat/linkdir"].reason == spec.SYMLINK_ESCAPES_ROOT


def test_manifest_rows_are_checked_for_escapes_missing_files_and_labels(root, tmp_path):
    os.symlink(root.parent / "outside.png", root / "cat" / "sneaky.png")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,exposure,iso,site\n"
        "cat/a.png,cat,0.5,100,north\n"
        "../outside.png,cat,,,\n"
        f"{root.parent / 'outside.png'},cat,,,\n"
        "cat/missing.png,cat,,,\n"
        "cat/sneaky.png,cat,,,\n"
        "dog/b.png,,,,\n"
        "cat,cat,,,\n"
        ",cat,,,\n"
    )
    found = discover(str(root), str(manifest))
    reasons = {c.path: c.reason for c in found.candidates}
    assert reasons == {
        "cat/a.png": None,
        "../outside.png": spec.PATH_ESCAPES_ROOT,
        str(root.parent / "outside.png"): spec.PATH_ESCAPES_ROOT,
        "cat/missing.png": spec.MISSING_FILE,
        "cat/sneaky.png": spec.SYMLINK_ESCAPES_ROOT,
        "dog/b.png": spec.MISSING_LABEL,
        "cat": spec.NOT_A_FILE,
        "manifest:9": spec.BAD_MANIFEST_ROW,
    }
    assert found.extra_columns == {"exposure": "float", "iso": "int", "site": "str"}
    assert dict(by_path(found)["cat/a.png"].extras) == {"exposure": 0.5, "iso": 100, "site": "north"}
    assert found.labels == ["cat"]


def test_jsonl_manifest_with_a_broken_line_accounts_for_it(root, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"path": "cat/a.png", "label": "cat", "lens": "wide"}) + "\n"
        "{not json\n" + json.dumps({"path": "dog/b.png", "label": "dog"}) + "\n"
    )
    found = discover(str(root), str(manifest))
    assert [(c.path, c.reason) for c in found.candidates] == [
        ("manifest:2", spec.BAD_MANIFEST_ROW),
        ("cat/a.png", None),
        ("dog/b.png", None),
    ]
    assert found.extra_columns == {"lens": "str"}


def test_manifest_column_clashing_with_a_builtin_feature_fails_early(root, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,width\ncat/a.png,cat,3\n")
    with pytest.raises(ValueError, match="clashes with a built-in"):
        discover(str(root), str(manifest))


def test_csv_manifest_without_path_column_is_a_clear_error(root, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,label\ncat/a.png,cat\n")
    with pytest.raises(ValueError, match="'path' column"):
        discover(str(root), str(manifest))


def test_latest_span_is_selected_and_a_span_can_be_pinned(tmp_path):
    for span in (1, 2, 10):
        (tmp_path / f"span-{span}").mkdir()
    (tmp_path / "span-x").mkdir()
    pattern = str(tmp_path / "span-{SPAN}")
    assert resolve_span(pattern) == (str(tmp_path / "span-10"), 10)
    assert resolve_span(pattern + "/", 2) == (str(tmp_path / "span-2"), 2)
    with pytest.raises(FileNotFoundError, match="span 3 not found"):
        resolve_span(pattern, 3)
    with pytest.raises(FileNotFoundError, match="no span matches"):
        resolve_span(str(tmp_path / "nothing-{SPAN}"))
    assert resolve_span(str(tmp_path)) == (str(tmp_path), 0)


def test_fingerprint_changes_when_a_file_is_added(root):
    before = fingerprint(discover(str(root)))
    assert fingerprint(discover(str(root))) == before
    write(root / "cat" / "new.png", b"new")
    assert fingerprint(discover(str(root))) != before
