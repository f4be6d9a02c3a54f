"""InputFingerprint: which span, and a digest of its files, as a value ImageExampleGen is keyed on.

fingerprint = InputFingerprint(input_base="gs://b/cameras/span-{SPAN}")
example_gen = ImageExampleGen(input_base=..., input_fingerprint=fingerprint.value)

Kubeflow Pipelines keys its cache on a task's parameter values and input artifact ids, never on
file contents, and its open-source backend runs no pre-cache hook. This small task runs on every
run (caching off in the compiled spec), lists the input files and emits their fingerprint (path,
size, mtime of each) as an output parameter; ImageExampleGen takes it as a parameter, so it, and
everything downstream, comes from the cache exactly when the files are unchanged. Locally its
driver puts the fingerprint into its own cache key (driver.py).
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.input_fingerprint import spec
from components.input_fingerprint.driver import Driver
from components.input_fingerprint.executor import Executor


class InputFingerprintSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.INPUT_BASE_KEY: ExecutionParameter(type=str),
        spec.MANIFEST_KEY: ExecutionParameter(type=str, optional=True),
        spec.SPAN_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {spec.FINGERPRINT_KEY: ChannelParameter(type=standard_artifacts.String)}


class InputFingerprint(base_component.BaseComponent):
    """The digest of the input files of the span ``input_base`` (and ``span``) resolve to."""

    SPEC_CLASS = InputFingerprintSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, input_base, manifest: str | None = None, span=None):
        if not input_base:
            raise ValueError("input_base is required")
        if isinstance(span, int) and span < 0:
            span = None
        super().__init__(
            InputFingerprintSpec(
                **{
                    spec.INPUT_BASE_KEY: input_base,
                    spec.MANIFEST_KEY: manifest,
                    spec.SPAN_KEY: span,
                    spec.FINGERPRINT_KEY: types.Channel(type=standard_artifacts.String),
                }
            )
        )

    @property
    def value(self):
        """The fingerprint as a placeholder for another component's parameter."""
        return self.outputs[spec.FINGERPRINT_KEY].future()[0].value
