"""TFRecords of tf.train.Example read without TensorFlow: the same values as TensorFlow's own reader."""

import glob
import os
import struct
import uuid

import pytest
import tensorflow as tf

from components import tfrecords
from components.image_example_gen import spec
from components.validation_report.render import sample_thumbnails, thumbnail_uri

needs_crc32c = pytest.mark.skipif(not tfrecords._CHECK_CRC, reason="no C crc32c: CRCs are not checked")


def tf_features(record: bytes) -> dict[str, list]:
    """What TensorFlow's own tf.train.Example makes of a record, as parse_example returns it."""
    example = tf.train.Example.FromString(record)
    return {
        name: list(getattr(feature, feature.WhichOneof("kind")).value) if feature.WhichOneof("kind") else []
        for name, feature in example.features.feature.items()
    }


def awkward_examples() -> list[bytes]:
    feature = tf.train.Feature
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    "image": feature(bytes_list=tf.train.BytesList(value=[bytes(range(256)) * 40])),
                    "label": feature(bytes_list=tf.train.BytesList(value=["çörner ✓".encode()])),
                    "empty": feature(bytes_list=tf.train.BytesList(value=[b""])),
                    "many": feature(bytes_list=tf.train.BytesList(value=[b"a", b"\0", b"\xff\xfe"])),
                    "ints": feature(int64_list=tf.train.Int64List(value=[0, -1, 2**63 - 1, -(2**63), 7])),
                    "floats": feature(float_list=tf.train.FloatList(value=[0.5, -1e30, 3.25, float("inf")])),
                    "none": feature(int64_list=tf.train.Int64List(value=[])),
                    "unset": feature(),
                }
            )
        ),
        tf.train.Example(),  # No features at all.
        tf.train.Example(
            features=tf.train.Features(
                feature={"big": feature(bytes_list=tf.train.BytesList(value=[os.urandom(3 << 20)]))}
            )
        ),
    ]
    return [e.SerializeToString() for e in examples]


def write_with_tensorflow(path: str, records: list[bytes], compression: str = "GZIP") -> str:
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type=compression)) as writer:
        for record in records:
            writer.write(record)
    return path


@pytest.mark.parametrize("compression", ["GZIP", ""])
def test_records_written_by_tensorflow_read_back_with_the_same_values(tmp_path, compression):
    records = awkward_examples()
    path = write_with_tensorflow(str(tmp_path / "data.tfrecord"), records, compression)

    read = list(tfrecords.read_records(path, compression=compression))

    assert read == records
    for record in read:
        assert tfrecords.parse_example(record) == tf_features(record)
    first = tfrecords.parse_example(read[0])
    assert first["ints"] == [0, -1, 2**63 - 1, -(2**63), 7] and first["label"] == ["çörner ✓".encode()]
    assert first["floats"] == [0.5, pytest.approx(-1e30, rel=1e-6), 3.25, float("inf")]
    assert first["none"] == [] and first["unset"] == [] and tfrecords.parse_example(read[1]) == {}


def test_the_pipelines_examples_read_back_as_tensorflow_reads_them(shapes_examples):
    examples_dir, labels, _ = shapes_examples
    files = sorted(glob.glob(os.path.join(examples_dir, "Split-*", "*")))
    assert files

    read = [record for path in files for record in tfrecords.read_records(path)]

    assert read == [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    for record in read:
        assert tfrecords.parse_example(record) == tf_features(record)
    assert {tfrecords.parse_example(r)[spec.LABEL][0].decode() for r in read} == set(labels)


def tensorflow_thumbnails(examples_uri, splits, *, per_class, max_classes, size=64):
    """The report's thumbnails as sample_thumbnails read them with tf.data (before components.tfrecords)."""
    features = {key: tf.io.FixedLenFeature([], tf.string) for key in (spec.IMAGE, spec.LABEL, spec.PATH)}
    found = {}
    for split in splits:
        files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
        for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256) if files else []:
            parsed = tf.io.parse_example(batch, features)
            for image, label, path in zip(*(parsed[k].numpy() for k in (spec.IMAGE, spec.LABEL, spec.PATH))):
                label = label.decode("utf-8", "replace")
                if label not in found and len(found) >= max_classes:
                    continue
                samples = found.setdefault(label, [])
                if len(samples) < per_class:
                    samples.append((thumbnail_uri(image, size), path.decode("utf-8", "replace")))
    return dict(sorted(found.items()))


@pytest.mark.parametrize("per_class,max_classes", [(8, 60), (3, 2), (1000, 60)])
def test_report_thumbnails_are_the_ones_tensorflow_reads(shapes_examples, per_class, max_classes):
    examples_dir, _, _ = shapes_examples
    splits = ["train", "eval", "test"]
    expected = tensorflow_thumbnails(examples_dir, splits, per_class=per_class, max_classes=max_classes)
    assert sample_thumbnails(examples_dir, splits, per_class=per_class, max_classes=max_classes) == expected


def frame(data: bytes) -> bytes:
    """One record framed as TensorFlow frames it, CRCs included."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", tfrecords._masked_crc(length))
        + data
        + struct.pack("<I", tfrecords._masked_crc(data))
    )


@needs_crc32c
def test_framing_matches_tensorflows_bytes(tmp_path):
    records = awkward_examples()[:2]
    path = write_with_tensorflow(str(tmp_path / "plain.tfrecord"), records, compression="")
    with open(path, "rb") as f:
        assert f.read() == b"".join(frame(r) for r in records)


@needs_crc32c
@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda data: data[:3] + b"\x01" + data[4:], "corrupted record 0: the length's CRC does not match"),
        (
            lambda data: data[:-40] + bytes([data[-40] ^ 1]) + data[-39:],
            "corrupted record 1: the data's CRC does not match",
        ),
        (lambda data: data[:-10], "corrupted record 1: truncated"),
        (lambda data: data + b"\x05", "corrupted record 2: truncated length"),
    ],
)
def test_an_altered_or_truncated_file_is_an_error_naming_the_file_and_record(tmp_path, damage, message):
    record = awkward_examples()[0]
    path = write_with_tensorflow(str(tmp_path / "plain.tfrecord"), [record, record], compression="")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    with pytest.raises(tfrecords.CorruptRecordError, match=f"{path}: {message}"):
        list(tfrecords.read_records(path, compression=""))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # Cut mid-stream.
        lambda data: data[:200] + bytes([data[200] ^ 0x10]) + data[201:],  # One bit, inside a record.
        lambda data: b"not gzip at all" + data,
    ],
)
def test_a_damaged_gzip_file_is_an_error_not_garbage(tmp_path, damage):
    examples = awkward_examples()
    path = write_with_tensorflow(str(tmp_path / "data.gz"), [examples[0], examples[2]])
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    with pytest.raises(tfrecords.CorruptRecordError, match=path):
        list(tfrecords.read_examples(path))


def test_bytes_that_are_no_example_are_an_error():
    with pytest.raises(tfrecords.CorruptRecordError, match="not a tf.train.Example"):
        tfrecords.parse_example(b"\x0a\xff\xff\xff\xff\x0f")


def test_records_on_an_object_store_uri_are_read_through_tensorflows_filesystem():
    root = f"ram://tfrecords-{uuid.uuid4().hex[:8]}"
    records = awkward_examples()[:2]
    tf.io.gfile.makedirs(root)
    try:
        path = write_with_tensorflow(f"{root}/data.gz", records)
        assert list(tfrecords.read_records(path)) == records
    finally:
        tf.io.gfile.rmtree(root)


def test_our_example_class_and_tensorflows_live_side_by_side():
    record = awkward_examples()[0]
    assert tfrecords.Example.DESCRIPTOR.full_name == "cvpipe.tfrecords.Example"
    assert tf.train.Example.DESCRIPTOR.full_name == "tensorflow.Example"
    ours, theirs = tfrecords.Example.FromString(record), tf.train.Example.FromString(record)
    assert set(ours.features.feature) == set(theirs.features.feature) == set(tf_features(record))
