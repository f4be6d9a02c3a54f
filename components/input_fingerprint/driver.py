"""InputFingerprint's driver: the span and a fingerprint of its files, before the cache is asked.

The local orchestrators (LocalDagRunner, BeamDagRunner) run a component's driver before they
compute its cache key, so the fingerprint (path, size and mtime of every input file) becomes part
of InputFingerprint's key: changed images make it run again and emit a new value, which is
ImageExampleGen's ``input_fingerprint`` parameter and so part of its key. Kubeflow Pipelines'
open-source backend runs no driver: there the compiled InputFingerprint task has caching off.
"""

from __future__ import annotations

from tfx.dsl.components.base import base_driver
from tfx.proto.orchestration import driver_output_pb2

from components.image_example_gen import discovery
from components.input_fingerprint import spec


class Driver(base_driver.BaseDriver):
    """TFX's component check wants the legacy BaseDriver; the IR-based launchers call ``run``."""

    def run(self, execution_info) -> driver_output_pb2.DriverOutput:
        props = execution_info.exec_properties
        found, span = discovery.resolve_inputs(
            props[spec.INPUT_BASE_KEY], props.get(spec.MANIFEST_KEY), props.get(spec.SPAN_KEY)
        )
        output = driver_output_pb2.DriverOutput()
        output.exec_properties[spec.SPAN_KEY].int_value = span
        output.exec_properties[spec.FINGERPRINT_KEY].string_value = discovery.fingerprint(found)
        return output
