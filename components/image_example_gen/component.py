"""ImageExampleGen: TFX component spec and class.

example_gen = ImageExampleGen(input_base="data/span-{SPAN}", options=IngestOptions())
statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.artifacts import ImageCatalog
from components.image_example_gen import spec
from components.image_example_gen.executor import Executor
from components.image_example_gen.ingest import IngestOptions


class ImageExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        spec.INPUT_BASE_KEY: ExecutionParameter(type=str),
        spec.MANIFEST_KEY: ExecutionParameter(type=str, optional=True),
        spec.SPAN_KEY: ExecutionParameter(type=int, optional=True),
        spec.OPTIONS_KEY: ExecutionParameter(type=str),
        # InputFingerprint's value: changes whenever an input file is added, removed or modified,
        # so no cache (local or Kubeflow) serves examples of data that has since changed.
        spec.INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        spec.CATALOG_KEY: ChannelParameter(type=ImageCatalog),
    }


class ImageExampleGen(base_beam_component.BaseBeamComponent):
    """Turns a folder of images (class folders or a manifest) into TFRecords plus a catalog.

    Args:
      input_base: image root, optionally with one ``{SPAN}`` (the latest span is ingested).
      manifest: optional CSV/JSONL manifest (``path``, ``label``, extra columns); may hold ``{SPAN}``.
      span: ingest this span instead of the latest.
      options: how images are validated, normalised and split.
    ``input_fingerprint`` (InputFingerprint.value) puts the input files into the cache key.
    """

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        input_base,  # str, or a RuntimeParameter on Kubeflow.
        manifest: str | None = None,
        span=None,  # int (negative = latest), None = latest, or a RuntimeParameter.
        options: IngestOptions | None = None,
        input_fingerprint=None,  # InputFingerprint.value: Kubeflow's cache key then sees the files.
    ):
        options = options or IngestOptions()
        if not input_base:
            raise ValueError("input_base is required")
        if isinstance(span, int) and span < 0:
            span = None
        super().__init__(
            ImageExampleGenSpec(
                **{
                    spec.INPUT_BASE_KEY: input_base,
                    spec.MANIFEST_KEY: manifest,
                    spec.SPAN_KEY: span,
                    spec.OPTIONS_KEY: options.to_json(),
                    spec.INPUT_FINGERPRINT_KEY: input_fingerprint,
                    spec.EXAMPLES_KEY: types.Channel(type=standard_artifacts.Examples),
                    spec.CATALOG_KEY: types.Channel(type=ImageCatalog),
                }
            )
        )
