"""Artifact files on any filesystem, without TensorFlow's import for local paths.

A local path is served by the standard library; a URI with a scheme (``gs://``, ``s3://``,
``ram://``, ``hdfs://``...) goes to ``tf.io.gfile``, which knows every filesystem the pipeline
writes to, and TensorFlow is imported then, not before. Reading a local run (``cvpipe lineage``,
``cvpipe report``) so never pays TensorFlow's start-up. The names follow ``tf.io.gfile`` and TFX's
``fileio``, and so do the results (text is UTF-8, line endings are kept as they are).

    with fileio.open("gs://bucket/root/DataChecks/checks/7/checks.json") as f:
        checks = json.load(f)
    fileio.listdir("out/pipeline_root/StatisticsGen/statistics/4")  # ['Split-eval', 'Split-train']
"""

from __future__ import annotations

import builtins
import glob as _glob
import os
import re
from typing import IO

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str) -> bool:
    """True for a path with a scheme (``gs://b/x``), which goes to TensorFlow's filesystems."""
    return _SCHEME.match(path) is not None


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def open(path: str, mode: str = "r") -> IO:
    """A file object, as ``tf.io.gfile.GFile(path, mode)``: text is UTF-8, newlines untranslated.

    (Named like TFX's ``fileio.open``; inside this module the builtin is ``builtins.open``.)
    """
    if is_uri(path):
        return _gfile().GFile(path, mode)
    if "b" in mode:
        return builtins.open(path, mode)
    return builtins.open(path, mode, encoding="utf-8", newline="")


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_uri(path) else os.path.exists(path)


def listdir(path: str) -> list[str]:
    """The entries of a directory (an object store may end a directory's name with "/")."""
    return _gfile().listdir(path) if is_uri(path) else os.listdir(path)


def glob(pattern: str) -> list[str]:
    return _gfile().glob(pattern) if is_uri(pattern) else _glob.glob(pattern)


def makedirs(path: str) -> None:
    """Creates ``path`` and its parents; nothing when it exists."""
    if is_uri(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def rename(source: str, destination: str, overwrite: bool = False) -> None:
    if is_uri(source) or is_uri(destination):
        _gfile().rename(source, destination, overwrite=overwrite)
    elif overwrite:
        os.replace(source, destination)
    elif os.path.exists(destination):
        raise FileExistsError(destination)
    else:
        os.rename(source, destination)
