"""Publishing a directory as a numbered model version, with a manifest, on any filesystem.

TF Serving loads ``<base>/<model_name>/<version>/`` and ignores other names. Every byte goes
through ``tf.io.gfile``, so ``base`` may be a local path or a ``gs://`` / ``s3://`` URI:

- On a filesystem with an atomic directory rename (local, NFS), the version is written under a
  dot-name in the same directory and renamed into place: a reader never sees it half-written.
- On an object store there is no directory rename (a "rename" copies object by object). The
  version is first written completely under the dot-name, then copied into ``<version>/`` with
  ``saved_model.pb`` (what makes it a loadable SavedModel) and then the manifest last. Until
  ``saved_model.pb`` lands, the version is not a SavedModel and TF Serving's load of it fails and
  is retried (``--max_num_load_retries``); cvpipe itself only counts a version as pushed once its
  manifest exists (``complete_versions``).

    >>> push_directory("trained/serving_model", "out/serving", "cvpipe", {"accuracy": 0.98})
    'out/serving/cvpipe/1795466000'
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import tensorflow as tf

MANIFEST = "cvpipe_manifest.json"
SAVED_MODEL_FILE = "saved_model.pb"
STAGING_PREFIX = ".staging-"
_RENAMING_SCHEMES = ("", "file")  # Filesystems whose directory rename is atomic.


def scheme(path: str) -> str:
    return path.split("://", 1)[0] if "://" in path else ""


def walk_files(root: str) -> list[str]:
    """Every file under ``root``, as paths relative to it (sorted)."""
    found = []
    for directory, _, files in tf.io.gfile.walk(root):
        relative = directory[len(root.rstrip("/")) :].strip("/")
        found += [os.path.join(relative, name) if relative else name for name in files]
    return sorted(found)


def file_digests(root: str) -> dict[str, str]:
    digests = {}
    for relative in walk_files(root):
        digest = hashlib.sha256()
        with tf.io.gfile.GFile(os.path.join(root, relative), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digests[relative] = digest.hexdigest()
    return digests


def list_versions(model_dir: str) -> list[int]:
    """The numbered versions under a TF Serving model directory, newest first."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    names = (entry.rstrip("/") for entry in tf.io.gfile.listdir(model_dir))
    return sorted((int(n) for n in names if n.isdigit()), reverse=True)


def read_manifest(version_dir: str) -> dict[str, Any] | None:
    """The manifest of a pushed version, or None while it is incomplete (or not cvpipe's)."""
    try:
        with tf.io.gfile.GFile(os.path.join(version_dir, MANIFEST)) as f:
            return json.load(f)
    except (tf.errors.NotFoundError, ValueError):
        return None


def complete_versions(base_dir: str, model_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, manifest) of every complete pushed version, newest first."""
    model_dir = os.path.join(base_dir, model_name)
    found = []
    for version in list_versions(model_dir):
        path = os.path.join(model_dir, str(version))
        manifest = read_manifest(path)
        if manifest is not None:
            found.append((path, manifest))
    return found


def next_version(model_dir: str) -> int:
    """Seconds since the epoch, bumped past any existing version (TF Serving serves the highest)."""
    return max([int(time.time())] + [v + 1 for v in list_versions(model_dir)])


def copy_files(source: str, target: str, files: list[str]) -> None:
    """Copies ``files`` (relative paths, in this order) from ``source`` to ``target``."""
    for relative in files:
        destination = os.path.join(target, relative)
        tf.io.gfile.makedirs(os.path.dirname(destination))
        tf.io.gfile.copy(os.path.join(source, relative), destination, overwrite=True)


def push_directory(
    source: str, base_dir: str, model_name: str, manifest: dict[str, Any], version: int | None = None
) -> str:
    """Copies ``source`` to ``base_dir/model_name/<version>``, made visible last; returns that path.

    ``version`` defaults to the next free one; a given version that already exists is an error.
    """
    if not tf.io.gfile.isdir(source):
        raise FileNotFoundError(f"nothing to push: {source} is not a directory")
    model_dir = os.path.join(base_dir, model_name)
    tf.io.gfile.makedirs(model_dir)
    version = next_version(model_dir) if version is None else int(version)
    target = os.path.join(model_dir, str(version))
    if tf.io.gfile.exists(target):
        raise FileExistsError(f"{target} already exists")
    staging = os.path.join(model_dir, f"{STAGING_PREFIX}{version}-{os.getpid()}")
    if tf.io.gfile.exists(staging):
        tf.io.gfile.rmtree(staging)
    files = walk_files(source)
    copy_files(source, staging, files)
    full_manifest = {
        "model_name": model_name,
        "version": version,
        "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **manifest,
        "files": file_digests(staging),
    }
    with tf.io.gfile.GFile(os.path.join(staging, MANIFEST), "w") as f:
        json.dump(full_manifest, f, indent=2, sort_keys=True)
    if scheme(base_dir) in _RENAMING_SCHEMES:
        tf.io.gfile.rename(staging, target)  # One atomic rename.
        return target
    # Object store: the SavedModel's graph, then the manifest, land last.
    last = [name for name in (SAVED_MODEL_FILE,) if name in files]
    copy_files(staging, target, [name for name in files if name not in last] + last + [MANIFEST])
    tf.io.gfile.rmtree(staging)
    return target


def find_pushed(base_dir: str, model_name: str, source: str) -> str | None:
    """The newest complete version whose manifest names ``source``, if any: pushing is idempotent."""
    for path, manifest in complete_versions(base_dir, model_name):
        if manifest.get("source_model") == source:
            return path
    return None
