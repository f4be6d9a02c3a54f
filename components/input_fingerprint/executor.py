"""InputFingerprint executor: resolve the span, fingerprint its files, write the digest."""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.image_example_gen import discovery as discovery_lib
from components.input_fingerprint import spec


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        found, span = discovery_lib.resolve_inputs(
            exec_properties[spec.INPUT_BASE_KEY],
            exec_properties.get(spec.MANIFEST_KEY),
            exec_properties.get(spec.SPAN_KEY),
        )
        digest = f"span-{span}:{discovery_lib.fingerprint(found)}"
        out = artifact_utils.get_single_instance(output_dict[spec.FINGERPRINT_KEY])
        tf.io.gfile.makedirs(os.path.dirname(out.uri))  # On Kubeflow nothing exists under a new URI.
        out.write(digest)
        logging.info("InputFingerprint: %d files under %s: %s", len(found.candidates), found.root, digest)
