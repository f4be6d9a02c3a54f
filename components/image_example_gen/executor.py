"""ImageExampleGen executor: unpack artifacts, run the ingestion, record the outputs."""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.image_example_gen import discovery as discovery_lib
from components.image_example_gen import spec
from components.image_example_gen.ingest import IngestOptions, ingest


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        options = IngestOptions.from_json(exec_properties[spec.OPTIONS_KEY])
        found, span = discovery_lib.resolve_inputs(
            exec_properties[spec.INPUT_BASE_KEY],
            exec_properties.get(spec.MANIFEST_KEY),
            exec_properties.get(spec.SPAN_KEY),
        )
        input_fingerprint = exec_properties.get(spec.INPUT_FINGERPRINT_KEY) or discovery_lib.fingerprint(
            found
        )

        examples = artifact_utils.get_single_instance(output_dict[spec.EXAMPLES_KEY])
        catalog = artifact_utils.get_single_instance(output_dict[spec.CATALOG_KEY])
        logging.info("ImageExampleGen: %d inputs under %s (span %d)", len(found.candidates), found.root, span)
        summary = ingest(
            found,
            options,
            span=span,
            examples_dir=examples.uri,
            catalog_dir=catalog.uri,
            make_pipeline=self._make_beam_pipeline,
        )
        logging.info("ImageExampleGen: %s", summary)

        examples.split_names = artifact_utils.encode_split_names(options.split_names)
        examples.span = span
        examples.version = 0
        examples.set_string_custom_property(
            "payload_format", example_gen_pb2.PayloadFormat.Name(example_gen_pb2.FORMAT_TF_EXAMPLE)
        )
        examples.set_string_custom_property("file_format", "tfrecords_gzip")
        examples.set_string_custom_property(spec.INPUT_FINGERPRINT_KEY, input_fingerprint)
        for key in ("seen", "ingested", "quarantined", "duplicates"):
            catalog.set_int_custom_property(key, summary[key])
        catalog.set_int_custom_property("span", span)
