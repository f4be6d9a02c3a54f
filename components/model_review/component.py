"""ModelReviewGen: the model review page (model_review.html) and its data (review.json).

review = ModelReviewGen(examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
                        model_run=trainer.outputs["model_run"],
                        tflite_model=exporter.outputs["tflite_model"],       # optional
                        tuner_results=tuner.outputs["tuner_results"],        # optional
                        model_blessing=evaluator.outputs["blessing"],        # optional
                        pipeline_name="cvpipe")

Predicts every split but train with the SavedModel and with each TFLite variant, so the page holds
per-class precision, recall and F1, the confusion matrix, the most confident mistakes and the
images where a TFLite variant and the SavedModel disagree, beside the tuning trials and the
learning curves. A detector (told by the model's params) gets COCO AP per class, precision-recall
curves, recall by object size, the images with the most box mistakes and the TFLite variants' box
disagreements instead. ``cvpipe report`` re-renders it from review.json beside the data report.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.artifacts import ModelReview, TFLiteModel
from components.kfp_ui import HTMLPage
from components.model_review import spec
from components.model_review.executor import Executor


class ModelReviewGenSpec(types.ComponentSpec):
    PARAMETERS = {spec.PIPELINE_NAME_KEY: ExecutionParameter(type=str)}
    INPUTS = {
        spec.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        spec.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        spec.MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
        spec.TFLITE_MODEL_KEY: ChannelParameter(type=TFLiteModel, optional=True),
        spec.TUNER_RESULTS_KEY: ChannelParameter(type=standard_artifacts.TunerResults, optional=True),
        spec.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
    }
    OUTPUTS = {
        spec.REVIEW_KEY: ChannelParameter(type=ModelReview),
        spec.PAGE_KEY: ChannelParameter(type=HTMLPage),
    }


class ModelReviewGen(base_component.BaseComponent):
    SPEC_CLASS = ModelReviewGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples,
        model,
        model_run,
        pipeline_name: str,
        tflite_model=None,
        tuner_results=None,
        model_blessing=None,
    ):
        if not pipeline_name or not pipeline_name.strip():
            raise ValueError("pipeline_name (the review's title) must be a non-empty string")
        super().__init__(
            ModelReviewGenSpec(
                **{
                    spec.EXAMPLES_KEY: examples,
                    spec.MODEL_KEY: model,
                    spec.MODEL_RUN_KEY: model_run,
                    spec.TFLITE_MODEL_KEY: tflite_model,
                    spec.TUNER_RESULTS_KEY: tuner_results,
                    spec.BLESSING_KEY: model_blessing,
                    spec.PIPELINE_NAME_KEY: pipeline_name,
                    spec.REVIEW_KEY: types.Channel(type=ModelReview),
                    spec.PAGE_KEY: types.Channel(type=HTMLPage),
                }
            )
        )
