"""The training input pipeline: gzipped TFRecords of cvpipe examples -> (uint8 images, labels).

dataset = make_dataset(["out/examples/Split-train/*.gz"], image_size=64, channels=3,
                       batch_size=64, training=True)
"""

from __future__ import annotations

import tensorflow as tf

from components.image_example_gen import spec
from components.image_model.model import decode_and_resize

FEATURES = {
    spec.IMAGE: tf.io.FixedLenFeature([], tf.string),
    spec.LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64),
}


def list_files(patterns: list[str]) -> list[str]:
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {patterns}")
    return files


def make_dataset(
    patterns: list[str],
    *,
    image_size: int,
    channels: int,
    batch_size: int,
    training: bool,
    cache: bool = True,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Decoded, resized uint8 images with their label index, batched.

    Training data is shuffled and repeated forever (steps per epoch come from the caller); decoded
    images are cached in memory after the first pass when ``cache`` is set.
    """
    files = list_files(patterns)
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)

    def parse(record):
        parsed = tf.io.parse_single_example(record, FEATURES)
        return decode_and_resize(parsed[spec.IMAGE], image_size, channels), parsed[spec.LABEL_INDEX]

    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True).repeat()
    return dataset.batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def count_records(patterns: list[str]) -> int:
    files = list_files(patterns)
    return int(
        tf.data.TFRecordDataset(files, compression_type="GZIP").reduce(
            tf.constant(0, tf.int64), lambda n, _: n + 1
        )
    )
