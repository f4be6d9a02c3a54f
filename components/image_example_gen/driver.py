"""ImageExampleGen's driver: which span, and a fingerprint of its files, before the cache is asked.

The local orchestrators (LocalDagRunner, BeamDagRunner) run a component's driver before they
compute its cache key, so the resolved span and the fingerprint (path, size and mtime of every
input file) become part of the key: changed images re-run the ingestion, unchanged ones reuse it.
Kubeflow Pipelines' open-source backend runs no driver (and keys its cache on parameters only), so
the compiled pipeline turns caching off for this one task instead; the executor then resolves the
span and computes the same fingerprint itself (``resolve``).
"""

from __future__ import annotations

from typing import Any

from tfx.dsl.components.base import base_driver
from tfx.proto.orchestration import driver_output_pb2

from components.image_example_gen import discovery as discovery_lib
from components.image_example_gen import spec


def resolve(exec_properties: dict[str, Any]) -> tuple[discovery_lib.Discovery, int]:
    """The discovered inputs and the span to ingest (the pinned one, or the latest)."""
    pinned = exec_properties.get(spec.SPAN_KEY)
    root, span = discovery_lib.resolve_span(
        exec_properties[spec.INPUT_BASE_KEY], pinned if pinned is not None and pinned >= 0 else None
    )
    manifest = exec_properties.get(spec.MANIFEST_KEY) or None
    if manifest:
        manifest = manifest.replace(discovery_lib.SPAN_TOKEN, str(span))
    return discovery_lib.discover(root, manifest), span


class Driver(base_driver.BaseDriver):
    """TFX's component check wants the legacy BaseDriver; the IR-based launchers call ``run``."""

    def run(self, execution_info) -> driver_output_pb2.DriverOutput:
        found, span = resolve(execution_info.exec_properties)
        output = driver_output_pb2.DriverOutput()
        output.exec_properties[spec.SPAN_KEY].int_value = span
        output.exec_properties[spec.INPUT_FINGERPRINT_KEY].string_value = discovery_lib.fingerprint(found)
        return output
