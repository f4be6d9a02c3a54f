"""TFRecord files of tf.train.Example read without TensorFlow (the report's thumbnails).

    for example in read_examples("examples/Split-train/data_tfrecord-00000-of-00001.gz"):
        example["label"]  # [b"circle"]: each feature as the list of its values (bytes, float or int)
    records = list(read_records(path))  # The serialized records, for parse_example.

A TFRecord file is a sequence of records, each framed as: uint64 length, uint32 masked CRC-32C of
those 8 bytes, the data, uint32 masked CRC-32C of the data (little-endian); a GZIP file is that
stream compressed. The CRCs are checked when the fast (C) ``google_crc32c`` is installed, as it is
with TFX; without it a corrupted record is still caught by the gzip stream's own CRC-32 or by the
Example failing to parse, only later.

tf.train.Example is decoded by protobuf from a copy of its definition (tensorflow/core/example/
example.proto and feature.proto) in a private descriptor pool, so it never clashes with
TensorFlow's own ``tensorflow.Example`` when both are loaded.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import Iterator

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import DecodeError

from components import fileio

try:
    import google_crc32c
except ImportError:  # Installed with TFX (its Google Cloud clients); without it, no CRC check.
    google_crc32c = None

# Fields, numbers and types as tensorflow/core/example/{example,feature}.proto (proto3).
_EXAMPLE_PROTO = """
name: "cvpipe/tfrecords/example.proto"
package: "cvpipe.tfrecords"
syntax: "proto3"
message_type {
  name: "BytesList"
  field { name: "value" number: 1 label: LABEL_REPEATED type: TYPE_BYTES }
}
message_type {
  name: "FloatList"
  field { name: "value" number: 1 label: LABEL_REPEATED type: TYPE_FLOAT options { packed: true } }
}
message_type {
  name: "Int64List"
  field { name: "value" number: 1 label: LABEL_REPEATED type: TYPE_INT64 options { packed: true } }
}
message_type {
  name: "Feature"
  field { name: "bytes_list" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".cvpipe.tfrecords.BytesList" oneof_index: 0 }
  field { name: "float_list" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".cvpipe.tfrecords.FloatList" oneof_index: 0 }
  field { name: "int64_list" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".cvpipe.tfrecords.Int64List" oneof_index: 0 }
  oneof_decl { name: "kind" }
}
message_type {
  name: "Features"
  field { name: "feature" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".cvpipe.tfrecords.Features.FeatureEntry" }
  nested_type {
    name: "FeatureEntry"
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
            type_name: ".cvpipe.tfrecords.Feature" }
    options { map_entry: true }
  }
}
message_type {
  name: "Example"
  field { name: "features" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".cvpipe.tfrecords.Features" }
}
"""

_HEADER = struct.Struct("<QI")  # Length, masked CRC-32C of the length.
_FOOTER = struct.Struct("<I")  # Masked CRC-32C of the data.
_CHUNK = 1 << 20  # Reads of a record's data, so a corrupted length cannot ask for exabytes at once.


class CorruptRecordError(ValueError):
    """A TFRecord file or record that is not what TensorFlow writes (truncated, altered, not gzip)."""


def _example_class():
    pool = descriptor_pool.DescriptorPool()
    file = text_format.Parse(_EXAMPLE_PROTO, descriptor_pb2.FileDescriptorProto())
    pool.AddSerializedFile(file.SerializeToString())
    descriptor = pool.FindMessageTypeByName("cvpipe.tfrecords.Example")
    if hasattr(message_factory, "GetMessageClass"):  # Newer protobuf; the pinned 3.20 has GetPrototype.
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


Example = _example_class()


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


_CHECK_CRC = google_crc32c is not None and google_crc32c.implementation == "c"


def read_records(path: str, compression: str = "GZIP") -> Iterator[bytes]:
    """The records of one TFRecord file, local or any URI (see components.fileio), in order.

    ``compression`` is ``"GZIP"`` (what the ingestion writes) or ``""``, as tf.data's
    ``compression_type``. Raises CorruptRecordError, naming the file and record, on a truncated
    or altered file instead of returning wrong bytes.
    """
    if compression not in ("GZIP", ""):
        raise ValueError(f"compression {compression!r}: GZIP or '' (none)")
    index = 0

    def corrupt(reason) -> CorruptRecordError:
        return CorruptRecordError(f"{path}: corrupted record {index}: {reason}")

    with fileio.open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compression else raw
        try:
            while True:
                header = stream.read(_HEADER.size)
                if not header:
                    return
                if len(header) < _HEADER.size:
                    raise corrupt("truncated length")
                length, length_crc = _HEADER.unpack(header)
                if _CHECK_CRC and _masked_crc(header[:8]) != length_crc:
                    raise corrupt("the length's CRC does not match")
                data = _read_exactly(stream, length)
                footer = stream.read(_FOOTER.size)
                if len(data) < length or len(footer) < _FOOTER.size:
                    raise corrupt(f"truncated ({length} bytes expected)")
                if _CHECK_CRC and _masked_crc(data) != _FOOTER.unpack(footer)[0]:
                    raise corrupt("the data's CRC does not match")
                yield data
                index += 1
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError.
            raise corrupt(e) from None


def _read_exactly(stream, length: int) -> bytes:
    """``length`` bytes, or fewer at the end of the stream."""
    if length <= _CHUNK:
        return stream.read(length)
    chunks, remaining = [], length
    while remaining:
        chunk = stream.read(min(remaining, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_examples(path: str, compression: str = "GZIP") -> Iterator[dict[str, list]]:
    """The tf.train.Examples of one TFRecord file, each parsed by parse_example."""
    for index, record in enumerate(read_records(path, compression)):
        try:
            yield parse_example(record)
        except CorruptRecordError as e:
            raise CorruptRecordError(f"{path}: corrupted record {index}: {e}") from None


def parse_example(record: bytes) -> dict[str, list]:
    """A serialized tf.train.Example as feature name -> its values (bytes, float or int)."""
    example = Example()
    try:
        example.ParseFromString(record)
    except DecodeError as e:
        raise CorruptRecordError(f"not a tf.train.Example: {e}") from None
    features = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        features[name] = list(getattr(feature, kind).value) if kind else []
    return features
