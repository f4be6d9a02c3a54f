"""Finding the input files: span resolution, class folders or a manifest, and path safety.

Everything here works on file names and stat results only; no image is opened. Each input file or
manifest row becomes one :class:`Candidate`; rows that can already be rejected (a path escaping the
root, a missing file, no label) carry their quarantine reason so they are still accounted for.
A local root is walked with ``os`` (symlinks are resolved and must stay inside the root); a root
with a scheme (``gs://``, ``s3://``, ``ram://``) is listed with ``tf.io.gfile``, where there are no
symlinks.

    >>> root, span = resolve_span("data/span-{SPAN}")
    >>> found = discover(root)
    >>> len(found.candidates), found.labels
    (1200, ['circle', 'square', 'triangle'])
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import re
from typing import Any

import tensorflow as tf

from components.image_example_gen import spec

SPAN_TOKEN = "{SPAN}"
PATH_COLUMN = "path"
LABEL_COLUMN = "label"
SPLIT_COLUMN = "split"  # Optional manifest column: a predefined split instead of the content hash.
_EXTRA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_RESERVED = set(spec.BUILTIN_FEATURES) | {
    spec.STATUS,
    spec.REASON,
    spec.DETAIL,
    spec.SPLIT,
    spec.SPAN,
    spec.DUPLICATE_OF,
    spec.TRANSCODED,
    *spec.FLAG_COLUMNS,
}


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One input file (or manifest row) to account for."""

    path: str  # Relative to the root, POSIX separators; for bad manifest rows "manifest:LINE".
    label: str | None
    extras: tuple[tuple[str, Any], ...] = ()
    reason: str | None = None  # Set when the candidate is rejected before it is read.
    detail: str = ""
    split: str | None = None  # From a manifest's split column; None = assigned by content hash.
    annotation: Any = None  # Detection: the image's annotations.ImageAnnotation (tasks.py).


@dataclasses.dataclass(frozen=True)
class Discovery:
    root: str
    candidates: list[Candidate]
    labels: list[str]  # Sorted vocabulary of the labels of readable candidates.
    extra_columns: dict[str, str]  # Manifest column -> "int" | "float" | "str".
    splits_from: str = "content hash"  # Or "manifest", or the split folders ("folders train/, ...").


# Top-level folders that name a split (case-insensitive), as published image sets, Kaggle's and
# Roboflow's exports and ImageNet lay them out: root/<split>/<class>/image.
SPLIT_FOLDERS = {
    **{name: "train" for name in ("train", "training")},
    **{name: "eval" for name in ("val", "valid", "validation", "eval", "dev")},
    **{name: "test" for name in ("test", "testing")},
}


class LayoutError(ValueError):
    """The image root's folders can be read two ways; the message names both."""


def is_uri(path: str) -> bool:
    """True for a path with a scheme (gs://, s3://, ram://...), read through tf.io.gfile."""
    return bool(_SCHEME.match(path))


def resolve_span(pattern: str, span: int | None = None) -> tuple[str, int]:
    """Resolves a ``{SPAN}`` pattern to the latest (or the given) span's path, as ExampleGen does.

    A pattern without ``{SPAN}`` is span 0. Raises FileNotFoundError naming the pattern when no
    directory matches.
    """
    if SPAN_TOKEN not in pattern:
        return pattern, 0 if span is None else span
    if pattern.count(SPAN_TOKEN) != 1:
        raise ValueError(f"{pattern!r}: {SPAN_TOKEN} may appear only once")
    prefix, suffix = pattern.split(SPAN_TOKEN)
    regex = re.compile(re.escape(prefix.rstrip("/")) + r"(\d+)" + re.escape(suffix.rstrip("/")) + "$")
    spans = {}
    matcher = tf.io.gfile.glob if is_uri(pattern) else glob.glob
    for match in matcher(pattern.replace(SPAN_TOKEN, "*").rstrip("/")):
        found = regex.match(match.rstrip("/"))
        if found:
            spans[int(found.group(1))] = match
    if not spans:
        raise FileNotFoundError(f"no span matches {pattern!r}")
    chosen = max(spans) if span is None else span
    if chosen not in spans:
        raise FileNotFoundError(f"span {chosen} not found for {pattern!r}; found {sorted(spans)}")
    return spans[chosen], chosen


def resolve_inputs(
    input_base: str, manifest: str | None = None, span: int | None = None
) -> tuple[Discovery, int]:
    """The inputs of the span ``input_base`` names (``span``, or the latest when None or negative).

    ``{SPAN}`` in ``manifest`` is replaced by the resolved span.
    """
    root, resolved = resolve_span(input_base, span if span is not None and span >= 0 else None)
    if manifest:
        manifest = manifest.replace(SPAN_TOKEN, str(resolved))
    return discover(root, manifest or None), resolved


def discover(root: str, manifest: str | None = None) -> Discovery:
    """Lists candidates from class folders (``root/<label>/...``) or from a CSV/JSONL manifest."""
    if not (tf.io.gfile.isdir(root) if is_uri(root) else os.path.isdir(root)):
        raise FileNotFoundError(f"image root {root!r} is not a directory")
    splits_from = "content hash"
    if manifest:
        candidates, extra_columns = _from_manifest(root, manifest)
        if any(c.split for c in candidates):
            splits_from = "manifest"
    else:
        candidates = _from_uri_folders(root) if is_uri(root) else _from_folders(root)
        candidates, folders = split_folders(candidates)
        extra_columns = {}
        if folders:
            splits_from = "folders " + ", ".join(f"{name}/" for name in folders)
    labels = sorted({c.label for c in candidates if c.reason is None and c.label})
    return Discovery(root, candidates, labels, extra_columns, splits_from)


def split_folders(candidates: list[Candidate]) -> tuple[list[Candidate], list[str]]:
    """Class-folder candidates read as ``root/<split>/<class>/...`` when every top-level folder
    names a split (SPLIT_FOLDERS): the split is predefined, as a manifest's ``split`` column does,
    and the label is the folder below. Returns the candidates and the split folders (none: the
    candidates unchanged). Split folders beside other folders is ambiguous: LayoutError.
    """
    tops = sorted({c.path.split("/", 1)[0] for c in candidates if "/" in c.path})
    named = [top for top in tops if top.lower() in SPLIT_FOLDERS]
    if not named:
        return candidates, []
    others = [top for top in tops if top.lower() not in SPLIT_FOLDERS]
    if others:
        raise LayoutError(
            f"the image root has split folders ({', '.join(named)}) beside other folders "
            f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}): read as splits, "
            f"{others[0]!r} is in no split; read as class folders, {named[0]!r} is a class. Put "
            "every class folder inside a split folder, point --images at one of them, or list the "
            "images in a manifest (with a split column)"
        )
    out = []
    for candidate in candidates:
        top, _, rest = candidate.path.partition("/")
        if not rest:
            out.append(candidate)  # A file at the root: in no class folder, as before.
            continue
        split = SPLIT_FOLDERS[top.lower()]
        label = safe_text(rest.split("/", 1)[0]) if "/" in rest else None
        if candidate.reason is None and label is None:
            detail = f"file is in split folder {top}/ but not inside a class folder"
            out.append(
                dataclasses.replace(
                    candidate, label=None, split=split, reason=spec.MISSING_LABEL, detail=detail
                )
            )
        else:
            out.append(dataclasses.replace(candidate, label=label, split=split))
    return out, named


def _from_folders(root: str) -> list[Candidate]:
    real_root = os.path.realpath(root)
    candidates = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        rel_dir = os.path.relpath(directory, root)
        entries = sorted(files) + [d for d in dirs if os.path.islink(os.path.join(directory, d))]
        for name in entries:
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            rel = rel.replace(os.sep, "/")
            label = safe_text(rel.split("/", 1)[0]) if "/" in rel else None
            full = os.path.join(root, rel)
            if os.path.islink(full) and not _inside(os.path.realpath(full), real_root):
                candidates.append(
                    Candidate(
                        rel,
                        label,
                        reason=spec.SYMLINK_ESCAPES_ROOT,
                        detail=f"resolves to {os.path.realpath(full)}",
                    )
                )
            elif os.path.isdir(full):
                # A symlinked directory inside the root: its files are listed under their real path.
                continue
            elif label is None:
                candidates.append(
                    Candidate(
                        rel, None, reason=spec.MISSING_LABEL, detail="file is not inside a class folder"
                    )
                )
            else:
                candidates.append(Candidate(rel, label))
    return candidates


def _from_uri_folders(root: str) -> list[Candidate]:
    """``_from_folders`` for a root with a scheme: the same order and labels, no symlinks."""
    root = root.rstrip("/")
    candidates = []
    for directory, dirs, files in tf.io.gfile.walk(root):
        dirs.sort()  # tf.io.gfile.walk descends into this list after yielding it, as os.walk does.
        rel_dir = directory.rstrip("/")[len(root) :].strip("/")
        for name in sorted(f.rstrip("/") for f in files):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            label = safe_text(rel.split("/", 1)[0]) if "/" in rel else None
            if label is None:
                candidates.append(
                    Candidate(
                        rel, None, reason=spec.MISSING_LABEL, detail="file is not inside a class folder"
                    )
                )
            else:
                candidates.append(Candidate(rel, label))
    return candidates


def safe_text(value: str) -> str:
    """File and folder names need not be UTF-8; undecodable bytes become visible escapes (\\xNN)."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _from_manifest(root: str, manifest: str) -> tuple[list[Candidate], dict[str, str]]:
    rows, bad = _read_manifest(manifest)
    extra_names = []
    for row in rows:
        for key in row[1]:
            if key not in (PATH_COLUMN, LABEL_COLUMN, SPLIT_COLUMN) and key not in extra_names:
                extra_names.append(key)
    for name in extra_names:
        if not _EXTRA_NAME.match(name):
            raise ValueError(
                f"manifest {manifest}: column {name!r} is not a valid feature name "
                "(letters, digits and underscores, not starting with a digit)"
            )
        if name in _RESERVED:
            raise ValueError(
                f"manifest {manifest}: column {name!r} clashes with a built-in feature; rename it"
            )
    extra_types = {name: _infer_type([row.get(name) for _, row in rows]) for name in extra_names}

    real_root = root if is_uri(root) else os.path.realpath(root)
    candidates = list(bad)
    for line, row in rows:
        raw_path = row.get(PATH_COLUMN)
        label = row.get(LABEL_COLUMN)
        label = str(label).strip() if label not in (None, "") else None
        split = row.get(SPLIT_COLUMN)
        split = str(split).strip() if split not in (None, "") else None
        extras = tuple(
            (name, _convert(row.get(name), extra_types[name]))
            for name in extra_names
            if row.get(name) not in (None, "")
        )
        path = str(raw_path).strip() if raw_path is not None else ""
        if not path:
            candidates.append(
                Candidate(f"manifest:{line}", label, extras, spec.BAD_MANIFEST_ROW, "row has no path", split)
            )
            continue
        reason, detail = _check_path(root, real_root, path)
        if reason is None and label is None:
            reason, detail = spec.MISSING_LABEL, "manifest row has no label"
        candidates.append(Candidate(path, label, extras, reason, detail, split))
    return candidates, extra_types


def _check_path(root: str, real_root: str, path: str) -> tuple[str | None, str]:
    if os.path.isabs(path) or path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return spec.PATH_ESCAPES_ROOT, "absolute paths are not allowed; give a path under the root"
    normalised = os.path.normpath(path)
    if normalised == ".." or normalised.startswith(".." + os.sep):
        return spec.PATH_ESCAPES_ROOT, f"{path!r} leads outside the root"
    full = os.path.join(root, normalised)
    if is_uri(root):
        if not tf.io.gfile.exists(full):
            return spec.MISSING_FILE, "no such file under the root"
        if tf.io.gfile.isdir(full):
            return spec.NOT_A_FILE, "path is a directory"
        return None, ""
    if not os.path.lexists(full):
        return spec.MISSING_FILE, "no such file under the root"
    if not _inside(os.path.realpath(full), real_root):
        return spec.SYMLINK_ESCAPES_ROOT, f"resolves to {os.path.realpath(full)}"
    if not os.path.exists(full):
        return spec.MISSING_FILE, "dangling symlink"
    if not os.path.isfile(full):
        return spec.NOT_A_FILE, "path is a directory or special file"
    return None, ""


def _read_manifest(manifest: str) -> tuple[list[tuple[int, dict]], list[Candidate]]:
    rows: list[tuple[int, dict]] = []
    bad: list[Candidate] = []
    if manifest.endswith((".jsonl", ".json", ".ndjson")):
        with _open_text(manifest) as f:
            for line_number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("a row must be a JSON object")
                except ValueError as e:
                    bad.append(
                        Candidate(
                            f"manifest:{line_number}",
                            None,
                            reason=spec.BAD_MANIFEST_ROW,
                            detail=f"invalid JSON line: {e}"[:300],
                        )
                    )
                    continue
                rows.append((line_number, row))
        return rows, bad
    with _open_text(manifest) as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or PATH_COLUMN not in reader.fieldnames:
            raise ValueError(
                f"manifest {manifest}: the CSV header must have a {PATH_COLUMN!r} column "
                f"(and usually {LABEL_COLUMN!r}); found {reader.fieldnames}"
            )
        for row in reader:
            if None in row:  # More cells than header columns.
                bad.append(
                    Candidate(
                        f"manifest:{reader.line_num}",
                        None,
                        reason=spec.BAD_MANIFEST_ROW,
                        detail="row has more cells than the header",
                    )
                )
                continue
            rows.append((reader.line_num, row))
    return rows, bad


def _open_text(path: str):
    """A manifest as text: a local file, or one read whole through tf.io.gfile for a URI."""
    if not is_uri(path):
        return open(path, encoding="utf-8", newline="")
    with tf.io.gfile.GFile(path, "rb") as f:
        return io.StringIO(f.read().decode("utf-8"), newline="")


def _infer_type(values: list) -> str:
    present = [v for v in values if v not in (None, "")]
    if not present:
        return "str"
    for kind, parse in (("int", int), ("float", float)):
        try:
            for v in present:
                if isinstance(v, bool):
                    raise ValueError
                if kind == "int" and isinstance(v, float):
                    raise ValueError
                parse(v)
            return kind
        except (TypeError, ValueError):
            continue
    return "str"


def _convert(value, kind: str):
    return {"int": int, "float": float, "str": str}[kind](value)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def fingerprint(discovery: Discovery) -> str:
    """A digest of every candidate's path, size and mtime: changes when the input changes."""
    digest = hashlib.sha256()
    for candidate in discovery.candidates:
        full = os.path.join(discovery.root, candidate.path)
        try:
            size, mtime_ns = _size_and_mtime(full)
            digest.update(f"{candidate.path}|{candidate.label}|{size}|{mtime_ns}\n".encode())
        except (OSError, tf.errors.OpError):
            digest.update(f"{candidate.path}|{candidate.label}|missing\n".encode())
        digest.update(repr((candidate.extras, candidate.split)).encode())
    return digest.hexdigest()


def _size_and_mtime(path: str) -> tuple[int, int]:
    if is_uri(path):
        stat = tf.io.gfile.stat(path)
        return stat.length, stat.mtime_nsec
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns
