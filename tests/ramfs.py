"""A test-only Apache Beam filesystem for TensorFlow's in-process ``ram://`` scheme.

Beam picks a filesystem by ``scheme()`` among the imported subclasses of its ``FileSystem``, so
importing this module is enough: afterwards Beam sinks and sources (FileBasedSink, WriteToParquet,
ReadFromTFRecord, TFDV, TFMA) read and write ``ram://`` paths through ``tf.io.gfile``, the same
files the rest of the code sees. A pipeline root under ``ram://`` is the local stand-in for
``gs://``: any byte written with ``os``, ``shutil`` or ``open`` instead of ``fileio`` lands on the
local disk (in a directory named ``ram:``) instead, which a test can detect.

    >>> import tests.ramfs  # noqa: F401
    >>> _ = beam.Create([b"x"]) | beam.io.WriteToTFRecord("ram://out/data")

The ``ram://`` filesystem lives in one process: run Beam with the in-memory DirectRunner
(``--direct_running_mode=in_memory``), not with worker processes.
"""

from __future__ import annotations

import io
import posixpath

import tensorflow as tf
from apache_beam.io.filesystem import (
    BeamIOError,
    CompressedFile,
    CompressionTypes,
    FileMetadata,
    FileSystem,
)

SCHEME = "ram"
PREFIX = f"{SCHEME}://"


class _GFileIO(io.RawIOBase):
    """A tf.io.gfile.GFile with the file-object surface Beam, gzip and pyarrow expect."""

    def __init__(self, path: str, mode: str):
        super().__init__()
        self._file = tf.io.gfile.GFile(path, mode)
        self._mode = mode
        self._written = 0

    @property
    def mode(self) -> str:
        return self._mode

    def readable(self) -> bool:
        return "r" in self._mode

    def writable(self) -> bool:
        return "w" in self._mode

    def seekable(self) -> bool:
        return self.readable()

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def write(self, data) -> int:
        data = bytes(data)
        self._file.write(data)
        self._written += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self.seekable():
            raise io.UnsupportedOperation("seek on a file open for writing")
        self._file.seek(offset, whence)
        return self._file.tell()

    def tell(self) -> int:
        return self._file.tell() if self.readable() else self._written

    def flush(self) -> None:
        if not self.closed and self.writable():
            self._file.flush()

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class RamFileSystem(FileSystem):
    """Beam ``FileSystem`` for ``ram://`` delegating every operation to ``tf.io.gfile``."""

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def join(self, basepath: str, *paths: str) -> str:
        return posixpath.join(basepath, *paths)

    def split(self, path: str) -> tuple[str, str]:
        if not path.startswith(PREFIX):
            raise ValueError(f"{path!r} is not a {PREFIX} path")
        head, tail = posixpath.split(path[len(PREFIX) :].rstrip("/"))
        return PREFIX + head, tail

    def mkdirs(self, path: str) -> None:
        if tf.io.gfile.exists(path):
            raise IOError(f"{path} already exists")
        tf.io.gfile.makedirs(path)

    def has_dirs(self) -> bool:
        return True

    def _list(self, dir_or_prefix: str):
        if not tf.io.gfile.exists(dir_or_prefix):
            return
        try:
            for directory, _, files in tf.io.gfile.walk(dir_or_prefix):
                for name in files:
                    path = self.join(directory, name)
                    yield self.metadata(path)
        except Exception as e:  # noqa: BLE001 - Beam's contract: one BeamIOError per listing.
            raise BeamIOError("List operation failed", {dir_or_prefix: e}) from e

    def _open(self, path: str, mode: str, compression_type: str):
        compression_type = FileSystem._get_compression_type(path, compression_type)
        raw = _GFileIO(path, mode)
        if compression_type != CompressionTypes.UNCOMPRESSED:
            return CompressedFile(raw, compression_type=compression_type)
        return io.BufferedReader(raw) if "r" in mode else raw

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        directory = posixpath.dirname(path)
        if directory.rstrip("/") not in ("", SCHEME + ":"):
            tf.io.gfile.makedirs(directory)
        return self._open(path, "wb", compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return self._open(path, "rb", compression_type)

    def _each(self, operation: str, pairs, action) -> None:
        failures = {}
        for pair in pairs:
            try:
                action(*pair) if isinstance(pair, tuple) else action(pair)
            except Exception as e:  # noqa: BLE001 - collected and raised as one BeamIOError.
                failures[pair] = e
        if failures:
            raise BeamIOError(f"{operation} operation failed", failures)

    def copy(self, source_file_names, destination_file_names):
        assert len(source_file_names) == len(destination_file_names)
        self._each("Copy", list(zip(source_file_names, destination_file_names)), _copy_tree)

    def rename(self, source_file_names, destination_file_names):
        assert len(source_file_names) == len(destination_file_names)

        def rename(source, destination):
            tf.io.gfile.rename(source, destination, overwrite=True)

        self._each("Rename", list(zip(source_file_names, destination_file_names)), rename)

    def exists(self, path: str) -> bool:
        return tf.io.gfile.exists(path)

    def size(self, path: str) -> int:
        try:
            return tf.io.gfile.stat(path).length
        except Exception as e:  # noqa: BLE001
            raise BeamIOError("Size operation failed", {path: e}) from e

    def last_updated(self, path: str) -> float:
        try:
            return tf.io.gfile.stat(path).mtime_nsec / 1e9
        except Exception as e:  # noqa: BLE001
            raise BeamIOError("Last updated operation failed", {path: e}) from e

    def checksum(self, path: str) -> str:
        return str(self.size(path))

    def metadata(self, path: str) -> FileMetadata:
        try:
            stat = tf.io.gfile.stat(path)
        except Exception as e:  # noqa: BLE001
            raise BeamIOError("Metadata operation failed", {path: e}) from e
        return FileMetadata(path, stat.length, stat.mtime_nsec / 1e9)

    def delete(self, paths):
        def delete(pattern):
            # Like Beam's local filesystem: a path or a glob; directories go with everything in them.
            found = tf.io.gfile.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
            found = [path for path in found if tf.io.gfile.exists(path)]
            if not found:
                raise IOError(f"No files found to delete under: {pattern}")
            for path in found:
                if tf.io.gfile.isdir(path):
                    tf.io.gfile.rmtree(path)
                else:
                    tf.io.gfile.remove(path)

        self._each("Delete", list(paths), delete)


def _copy_tree(source: str, destination: str) -> None:
    if tf.io.gfile.exists(destination):
        if tf.io.gfile.isdir(destination):
            tf.io.gfile.rmtree(destination)
        else:
            tf.io.gfile.remove(destination)
    if not tf.io.gfile.isdir(source):
        tf.io.gfile.copy(source, destination, overwrite=True)
        return
    for directory, _, files in tf.io.gfile.walk(source):
        relative = posixpath.relpath(directory, source)
        target = destination if relative == "." else posixpath.join(destination, relative)
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(posixpath.join(directory, name), posixpath.join(target, name), overwrite=True)
