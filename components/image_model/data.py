"""The training input pipeline: gzipped TFRecords of cvpipe examples -> (uint8 images, labels).

dataset = make_dataset(["out/examples/Split-train/*.gz"], image_size=64, channels=3,
                       batch_size=64, training=True)
"""

from __future__ import annotations

import numpy as np
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
    images are cached in memory after the first pass when ``cache`` is set, and then the shuffle
    starts from the records in a stable order (:func:`read_records`), so the same examples and
    seed train the same model.
    """
    dataset = read_records(patterns, stable_order=training and cache)

    def parse(record):
        parsed = tf.io.parse_single_example(record, FEATURES)
        return decode_and_resize(parsed[spec.IMAGE], image_size, channels), parsed[spec.LABEL_INDEX]

    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True).repeat()
    return without_autotuning(dataset.batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE))


def read_records(patterns: list[str], *, stable_order: bool) -> tf.data.Dataset:
    """The serialized examples in ``patterns``' files; ``stable_order``: sorted by image path.

    Beam writes a split's records in no fixed order, and in different files from run to run, so a
    seeded shuffle of them drew other batches on every ingestion of the same images, and trained
    another model (the demo's tuning trials scored 0.49-0.55 for one network, and picked
    different winners). Sorting needs every serialized record in memory once, which is why only
    cached datasets sort; the paths are unique in a split (one record per file).
    """
    files = list_files(patterns)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    if not stable_order:
        return records
    path_feature = {spec.PATH: tf.io.FixedLenFeature([], tf.string, default_value="")}
    keyed = without_autotuning(
        records.map(
            lambda record: (tf.io.parse_single_example(record, path_feature)[spec.PATH], record),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    )
    paths, serialized = [], []
    for path, record in keyed.batch(4096):
        paths.extend(path.numpy())
        serialized.append(record)
    if not paths:
        return records
    order = np.argsort(np.array(paths, dtype=object), kind="stable")
    return tf.data.Dataset.from_tensor_slices(tf.gather(tf.concat(serialized, axis=0), order))


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` without tf.data's autotuning thread; its AUTOTUNE parallelism and prefetch
    buffers keep TF's starting values (parallel calls: one per core).

    That thread re-tunes at doubling intervals (up to 60 s), and TF 2.16 does not wake it when its
    iterator is deleted: deleting the iterator waits out the interval. Every fit deletes one at its
    end, and about every second Trainer fit and tuning trial stalled there for 8-17 s
    (gdb: ``RootDataset::Iterator::~Iterator`` joining ``Model::OptimizeLoop`` in a timed wait).
    Without it no fit stalled, and the epochs ran as fast (bench/train_speed.py).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def count_records(patterns: list[str]) -> int:
    files = list_files(patterns)
    return int(
        tf.data.TFRecordDataset(files, compression_type="GZIP").reduce(
            tf.constant(0, tf.int64), lambda n, _: n + 1
        )
    )
