"""The ingestion as a Beam pipeline: candidates in; sharded gzipped TFRecords, catalog, summary out.

Memory stays flat as the number of images grows: image bytes never cross a shuffle. A first pass
reads each file only to hash it; duplicates are resolved on (sha256, path) pairs; a second pass
re-reads each kept file, verifies and normalises it, measures its pixel properties on the pixels
decoded to verify it, and writes it straight to its split's sink. Once the pipeline has run, the
flags judged against the whole dataset (blur, grayscale, near duplicates) are added to the catalog
from its own columns (a few numbers per image; no image is read again).

    >>> with beam.Pipeline() as p:
    ...     write_ingestion(p, discovery, options, span=0, examples_dir="out/examples",
    ...                     catalog_dir="out")
    >>> flagged = flag_catalog("out", options)
    >>> summarize("out", extra={"pixels": flagged})["ingested"]
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import zlib
from typing import Any, Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf
from apache_beam import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.tfrecordio import _TFRecordUtil

from components.image_example_gen import pixels as pixels_lib
from components.image_example_gen import spec
from components.image_example_gen import tasks as tasks_lib
from components.image_example_gen.annotations import AnnotationOptions
from components.image_example_gen.discovery import Candidate, Discovery, is_uri
from components.image_example_gen.imaging import ImageOptions, Rejected, inspect_image
from components.image_example_gen.records import assign_split, catalog_row, catalog_schema, encode_example

_CATALOG = "catalog"


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    """Everything that decides what ingestion produces (serialised into the component's config).

    Defaults equal pipelines/configs/default.yaml's (pinned by tests/test_config.py).
    """

    image: ImageOptions = ImageOptions()
    splits: tuple[tuple[str, int], ...] = spec.DEFAULT_SPLITS
    # gzip level of the TFRecord files. 0 stores: still a gzip stream every TFX reader takes, but
    # encoded images barely compress, and level 1 more than doubled ingest time (bench/ingest.py).
    gzip_level: int = 0
    # When images are flagged (with image.pixel_properties).
    flags: pixels_lib.FlagThresholds = pixels_lib.FlagThresholds()
    # classification (a label per image) or detection (boxes from annotations): tasks.py.
    task: str = "classification"
    # Where detection's annotations are and how they are checked (unused for classification).
    annotations: AnnotationOptions = AnnotationOptions()

    def __post_init__(self):
        if self.task not in spec.TASKS:
            raise ValueError(f"task must be one of {', '.join(spec.TASKS)}, got {self.task!r}")
        names = [name for name, _ in self.splits]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"split names must be unique and non-empty, got {names}")
        if any(weight < 0 for _, weight in self.splits) or sum(w for _, w in self.splits) <= 0:
            raise ValueError(f"split weights must be non-negative with a positive sum: {self.splits}")
        if not 0 <= self.gzip_level <= 9:
            raise ValueError(f"gzip_level must be 0-9, got {self.gzip_level}")

    @property
    def split_names(self) -> list[str]:
        return [name for name, _ in self.splits]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "IngestOptions":
        raw = json.loads(text)
        image = raw.get("image", {})
        image = ImageOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in image.items()})
        splits = tuple((str(name), int(weight)) for name, weight in raw.get("splits", spec.DEFAULT_SPLITS))
        flags = pixels_lib.FlagThresholds(**raw.get("flags", {}))
        return cls(
            image=image,
            splits=splits,
            gzip_level=int(raw.get("gzip_level", 0)),
            flags=flags,
            task=raw.get("task", "classification"),
            annotations=AnnotationOptions(**raw.get("annotations", {})),
        )


class _GzipWriter:
    """A write-only gzip stream at a chosen level over a Beam file handle."""

    def __init__(self, raw, level: int):
        self._raw = raw
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def write(self, data: bytes) -> None:
        self._raw.write(self._compressor.compress(data))

    def close(self) -> None:
        self._raw.write(self._compressor.flush())
        self._raw.close()


class _GzipTFRecordSink(filebasedsink.FileBasedSink):
    """Beam's TFRecord sink (temp files, atomic rename) with a configurable gzip level."""

    def __init__(self, file_path_prefix: str, level: int):
        super().__init__(
            file_path_prefix=file_path_prefix,
            coder=coders.BytesCoder(),
            file_name_suffix=spec.TFRECORD_SUFFIX,
            num_shards=0,
            shard_name_template=None,
            mime_type="application/octet-stream",
            compression_type=CompressionTypes.UNCOMPRESSED,
        )
        self._level = level

    def open(self, temp_path):
        return _GzipWriter(super().open(temp_path), self._level)

    def write_encoded_record(self, file_handle, value):
        _TFRecordUtil.write_record(file_handle, value)

    def close(self, file_handle):
        file_handle.close()


class _IngestDoFn(beam.DoFn):
    """Shared by the passes that read files: the catalog schema, the span and quarantine rows."""

    def __init__(self, root: str, schema, span: int):
        self._root = root
        self._schema = schema
        self._span = span

    def _quarantine(self, candidate: Candidate, reason: str, detail: str, **extra):
        return beam.pvalue.TaggedOutput(
            _CATALOG, _rejected_row(self._schema, candidate, self._span, reason, detail, **extra)
        )

    def _read(self, candidate: Candidate) -> tuple[bytes | None, str]:
        path = os.path.join(self._root, candidate.path)
        try:
            if is_uri(path):
                with tf.io.gfile.GFile(path, "rb") as f:
                    return f.read(), ""
            with open(path, "rb") as f:
                return f.read(), ""
        except OSError as e:
            return None, f"{type(e).__name__}: {e}"
        except tf.errors.OpError as e:
            return None, f"{type(e).__name__}: {e.message}"


class _HashFile(_IngestDoFn):
    """Reads a file once to hash it; unreadable and empty files go to the catalog."""

    def process(self, candidate: Candidate):
        data, error = self._read(candidate)
        if data is None:
            yield self._quarantine(candidate, spec.UNREADABLE_FILE, error)
        elif not data:
            yield self._quarantine(candidate, spec.EMPTY_FILE, "file has zero bytes", byte_size=0)
        else:
            yield hashlib.sha256(data).hexdigest(), (candidate, len(data))


class _PickFirst(beam.DoFn):
    """Keeps the lexicographically first path of each content hash in each split; the rest are duplicates.

    A split is the manifest's, when it names one, or else the content hash's. Copies of one image
    that a manifest puts in two splits are both kept: that is leakage, which the data checks report
    rather than this step hiding it.
    """

    def __init__(self, schema, span: int, splits):
        self._schema = schema
        self._span = span
        self._splits = splits

    def process(self, element):
        sha, entries = element
        by_split: dict[str, list] = {}
        for candidate, size in entries:
            split = candidate.split or assign_split(sha, self._splits)
            by_split.setdefault(split, []).append((candidate, size))
        for split, group in sorted(by_split.items()):
            group = sorted(group, key=lambda e: e[0].path)
            first, byte_size = group[0]
            yield sha, first, byte_size, split
            for candidate, size in group[1:]:
                yield beam.pvalue.TaggedOutput(
                    _CATALOG,
                    catalog_row(
                        self._schema,
                        path=candidate.path,
                        status=spec.DUPLICATE,
                        reason=spec.DUPLICATE,
                        detail=f"same content as {first.path}",
                        span=self._span,
                        label=candidate.label,
                        sha256=sha,
                        byte_size=size,
                        duplicate_of=first.path,
                        **dict(candidate.extras),
                    ),
                )


class _InspectAndEncode(_IngestDoFn):
    """Re-reads a kept file, verifies and normalises it, and emits its example and catalog row."""

    def __init__(self, root: str, options: IngestOptions, vocabulary: list[str], schema, span: int):
        super().__init__(root, schema, span)
        self._options = options
        self._index = {label: i for i, label in enumerate(vocabulary)}
        self._task = tasks_lib.task_for(options)

    def process(self, element):
        sha, candidate, byte_size, split = element
        data, error = self._read(candidate)
        if data is None:
            yield self._quarantine(candidate, spec.UNREADABLE_FILE, error)
            return
        if hashlib.sha256(data).hexdigest() != sha:
            yield self._quarantine(
                candidate,
                spec.FILE_CHANGED,
                "content changed between the hashing and the decoding pass",
                sha256=sha,
            )
            return
        try:
            image = inspect_image(data, self._options.image)
        except Rejected as rejected:
            yield self._quarantine(
                candidate, rejected.reason, rejected.detail, sha256=sha, byte_size=byte_size
            )
            return
        targets, target_columns = self._task.targets(candidate, image, self._index)
        example = encode_example(
            image,
            targets=targets,
            path=candidate.path,
            sha256=sha,
            byte_size=byte_size,
            extras=candidate.extras,
        )
        yield beam.pvalue.TaggedOutput(split, example.SerializeToString())
        metadata = dict(image.metadata)
        if image.pixels is not None:
            metadata.update(image.pixels.features())
            metadata.update(
                pixels_lib.flag_columns(pixels_lib.image_flags(image.pixels, self._options.flags))
            )
        yield beam.pvalue.TaggedOutput(
            _CATALOG,
            catalog_row(
                self._schema,
                path=candidate.path,
                status=spec.INGESTED,
                split=split,
                span=self._span,
                sha256=sha,
                byte_size=byte_size,
                width=image.width,
                height=image.height,
                channels=image.channels,
                format=image.format,
                original_format=image.original_format,
                transcoded=image.transcoded,
                **metadata,
                **target_columns,
                **dict(candidate.extras),
            ),
        )


def _rejected_row(schema, candidate: Candidate, span: int, reason: str, detail: str, **extra):
    return catalog_row(
        schema,
        path=candidate.path,
        status=spec.QUARANTINED,
        reason=reason,
        detail=detail,
        span=span,
        label=candidate.label,
        **dict(candidate.extras),
        **extra,
    )


def _check_split(candidate: Candidate, names: list[str]) -> Candidate:
    """A manifest split that is not a configured split rejects the candidate before it is read."""
    if candidate.reason is not None or candidate.split is None or candidate.split in names:
        return candidate
    detail = f"split {candidate.split!r} is not one of {', '.join(names)}"
    return dataclasses.replace(candidate, reason=spec.UNKNOWN_SPLIT, detail=detail)


def write_ingestion(
    pipeline: beam.Pipeline,
    discovery: Discovery,
    options: IngestOptions,
    *,
    span: int,
    examples_dir: str,
    catalog_dir: str,
) -> None:
    """Adds the ingestion to ``pipeline``; outputs appear when the pipeline runs.

    Writes ``examples_dir/Split-<name>/data_tfrecord-*.gz`` and ``catalog_dir/catalog.parquet``.
    ``discovery`` is the task's (``prepare_inputs``), as ``ingest`` passes it.
    """
    schema = catalog_schema(discovery.extra_columns, tasks_lib.task_for(options).catalog_fields())
    candidates = [_check_split(c, options.split_names) for c in discovery.candidates]
    early = [c for c in candidates if c.reason is not None]
    readable = [c for c in candidates if c.reason is None]

    early_rows = (
        pipeline
        | "EarlyRejections" >> beam.Create(early or [None])
        | "EarlyRows"
        >> beam.FlatMap(lambda c: [] if c is None else [_rejected_row(schema, c, span, c.reason, c.detail)])
    )
    hashed = (
        pipeline
        | "Candidates" >> beam.Create(readable or [None])
        | "DropPlaceholder" >> beam.Filter(lambda c: c is not None)
        | "Spread" >> beam.Reshuffle()
        | "ReadAndHash"
        >> beam.ParDo(_HashFile(discovery.root, schema, span)).with_outputs(_CATALOG, main="hashed")
    )
    picked = (
        hashed.hashed
        | "GroupByContent" >> beam.GroupByKey()
        | "PickFirst"
        >> beam.ParDo(_PickFirst(schema, span, options.splits)).with_outputs(_CATALOG, main="kept")
    )
    encoded = (
        picked.kept
        | "SpreadKept" >> beam.Reshuffle()
        | "InspectAndEncode"
        >> beam.ParDo(
            _InspectAndEncode(discovery.root, options, discovery.labels, schema, span)
        ).with_outputs(_CATALOG, *options.split_names)
    )
    for split in options.split_names:
        _ = encoded[split] | f"Write[{split}]" >> beam.io.Write(
            _GzipTFRecordSink(
                os.path.join(examples_dir, f"Split-{split}", spec.TFRECORD_PREFIX), options.gzip_level
            )
        )
    _ = (
        (early_rows, hashed[_CATALOG], picked[_CATALOG], encoded[_CATALOG])
        | "CatalogRows" >> beam.Flatten()
        | "WriteCatalog"
        >> beam.io.WriteToParquet(
            os.path.join(catalog_dir, spec.CATALOG_FILE), schema, num_shards=1, shard_name_template=""
        )
    )


def write_labels(labels: Iterable[str], *directories: str) -> None:
    text = "".join(f"{label}\n" for label in labels)
    for directory in directories:
        tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(os.path.join(directory, spec.LABELS_FILE), "w") as f:
            f.write(text)


def flag_catalog(catalog_dir: str, options: IngestOptions) -> dict[str, Any]:
    """Adds the flags judged against the dataset to ``catalog.parquet``; returns the flag counts.

    The catalog is rewritten whole (a temporary file renamed over it), with the same rows; it is
    left as it is when no image has pixel properties.
    """
    path = os.path.join(catalog_dir, spec.CATALOG_FILE)
    with tf.io.gfile.GFile(path, "rb") as f:
        table = pq.read_table(pa.BufferReader(f.read()))
    rows = table.to_pylist()
    measured = [r for r in rows if r[spec.STATUS] == spec.INGESTED and r[spec.BRIGHTNESS] is not None]
    if measured:
        rows = pixels_lib.flag_dataset(rows, options.flags, options.image.channels)
        flagged = pa.Table.from_pylist(rows, schema=table.schema)
        if flagged.num_rows != table.num_rows:
            raise RuntimeError(f"flagging changed the catalog's rows: {table.num_rows} -> {flagged.num_rows}")
        buffer = pa.BufferOutputStream()
        pq.write_table(flagged, buffer)
        temporary = f"{path}.tmp"
        with tf.io.gfile.GFile(temporary, "wb") as f:
            f.write(buffer.getvalue().to_pybytes())
        tf.io.gfile.rename(temporary, path, overwrite=True)
        measured = [r for r in rows if r[spec.STATUS] == spec.INGESTED and r[spec.BRIGHTNESS] is not None]
    counts = {name: sum(1 for r in measured if r[name]) for name in spec.FLAGS}
    counts[spec.NEAR_DUPLICATE_OF] = sum(1 for r in measured if r[spec.NEAR_DUPLICATE_OF])
    return {
        "measured": len(measured),
        "thresholds": dataclasses.asdict(options.flags),
        "flagged": counts,
    }


def summarize(
    catalog_dir: str, *, expected: int | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Counts the catalog and writes ``summary.json`` beside it.

    ``expected`` is the number of candidates discovered; a catalog that does not account for every
    one of them is an error, not a summary.
    """
    with tf.io.gfile.GFile(os.path.join(catalog_dir, spec.CATALOG_FILE), "rb") as f:
        catalog = f.read()
    table = pq.read_table(
        pa.BufferReader(catalog), columns=[spec.STATUS, spec.REASON, spec.SPLIT, spec.LABEL]
    )
    rows = table.to_pylist()
    status = collections.Counter(r[spec.STATUS] for r in rows)
    summary = {
        "seen": len(rows),
        "ingested": status[spec.INGESTED],
        "quarantined": status[spec.QUARANTINED],
        "duplicates": status[spec.DUPLICATE],
        "by_reason": dict(
            sorted(
                collections.Counter(r[spec.REASON] for r in rows if r[spec.STATUS] != spec.INGESTED).items()
            )
        ),
        "by_split": dict(
            sorted(
                collections.Counter(r[spec.SPLIT] for r in rows if r[spec.STATUS] == spec.INGESTED).items()
            )
        ),
        "by_label": dict(
            sorted(
                collections.Counter(
                    r[spec.LABEL]
                    for r in rows
                    if r[spec.STATUS] == spec.INGESTED and r[spec.LABEL] is not None
                ).items()
            )
        ),
    }
    summary.update(extra or {})
    if summary["seen"] != summary["ingested"] + summary["quarantined"] + summary["duplicates"]:
        raise RuntimeError(f"catalog statuses do not add up: {summary}")
    if expected is not None and summary["seen"] != expected:
        raise RuntimeError(f"catalog has {summary['seen']} rows for {expected} discovered inputs")
    with tf.io.gfile.GFile(os.path.join(catalog_dir, spec.SUMMARY_FILE), "w") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def read_input(root: str, path: str) -> bytes:
    """An input file's bytes: ``path`` relative to ``root`` (or absolute), local or any URI."""
    full = path if path.startswith("/") or is_uri(path) else os.path.join(root, path)
    if is_uri(full):
        with tf.io.gfile.GFile(full, "rb") as f:
            return f.read()
    with open(full, "rb") as f:
        return f.read()


def prepare_inputs(discovery: Discovery, options: IngestOptions) -> Discovery:
    """The inputs as the task sees them: detection reads the annotations and pairs them with images."""
    return tasks_lib.task_for(options).prepare(discovery, lambda path: read_input(discovery.root, path))


def ingest(
    discovery: Discovery,
    options: IngestOptions,
    *,
    span: int,
    examples_dir: str,
    catalog_dir: str,
    make_pipeline=None,
) -> dict[str, Any]:
    """Runs the ingestion to completion and returns the summary (also written as summary.json).

    ``make_pipeline`` builds the Beam pipeline (a TFX executor passes its own, configured from the
    pipeline's beam arguments); by default a DirectRunner pipeline.
    """
    task = tasks_lib.task_for(options)
    discovery = prepare_inputs(discovery, options)
    pipeline = make_pipeline() if make_pipeline else beam.Pipeline()
    with pipeline as p:
        write_ingestion(p, discovery, options, span=span, examples_dir=examples_dir, catalog_dir=catalog_dir)
    for split in options.split_names:
        # A split that received no image still gets its directory, so readers see an empty split.
        tf.io.gfile.makedirs(os.path.join(examples_dir, f"Split-{split}"))
    write_labels(discovery.labels, examples_dir, catalog_dir)
    flagged = flag_catalog(catalog_dir, options)
    extra = {"span": span, "root": discovery.root, "labels": discovery.labels, "pixels": flagged}
    extra["splits_from"] = discovery.splits_from
    extra["task"] = task.name
    fields = [name for name, _ in task.catalog_fields()]
    if fields:
        with tf.io.gfile.GFile(os.path.join(catalog_dir, spec.CATALOG_FILE), "rb") as f:
            rows = pq.read_table(pa.BufferReader(f.read()), columns=[spec.STATUS, *fields]).to_pylist()
        extra.update(task.summary(rows))
    return summarize(catalog_dir, expected=len(discovery.candidates), extra=extra)
