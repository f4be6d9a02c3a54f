"""The Trainer component: TFX's, which also takes the Tuner's ``tuner_results``.

With tuning on, the Tuner keeps its best trial's weights in ``tuner_results`` (``best_trial/``,
``best_trial.json``); the Trainer continues from them instead of training the same network from
scratch again (``training.from_best_trial``), so the trial's epochs are not paid twice. The
executor hands the artifact's URI to ``run_fn`` in ``custom_config`` under
:data:`TUNER_RESULTS_CONFIG`; everything else is TFX's ``GenericExecutor``.

    trainer = Trainer(run_fn="components.image_model.trainer_module.run_fn", examples=...,
                      hyperparameters=tuner.outputs["best_hyperparameters"],
                      tuner_results=tuner.outputs["tuner_results"], custom_config={...})
"""

from __future__ import annotations

from typing import Any

from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.proto import trainer_pb2
from tfx.types import channel, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import json_utils

TUNER_RESULTS_KEY = standard_component_specs.TUNER_RESULTS_KEY  # "tuner_results"
TUNER_RESULTS_CONFIG = "tuner_results_uri"  # The key run_fn finds the URI under in custom_config.


class TrainerSpec(standard_component_specs.TrainerSpec):
    INPUTS = {
        **standard_component_specs.TrainerSpec.INPUTS,
        TUNER_RESULTS_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.TunerResults, optional=True
        ),
    }


class Executor(trainer_executor.GenericExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        results = input_dict.get(TUNER_RESULTS_KEY) or []
        if results:
            key = standard_component_specs.CUSTOM_CONFIG_KEY
            custom = json_utils.loads(exec_properties.get(key) or "null") or {}
            custom = {**custom, TUNER_RESULTS_CONFIG: results[0].uri}
            exec_properties = {**exec_properties, key: json_utils.dumps(custom)}
        super().Do(input_dict, output_dict, exec_properties)


class Trainer(base_component.BaseComponent):
    """``tfx.components.Trainer`` with a ``run_fn`` and examples (what cvpipe uses), plus
    ``tuner_results``. Outputs ``model`` and ``model_run`` as TFX's."""

    SPEC_CLASS = TrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        *,
        run_fn: str,
        examples: channel.BaseChannel,
        schema: channel.BaseChannel | None = None,
        hyperparameters: channel.BaseChannel | None = None,
        tuner_results: channel.BaseChannel | None = None,
        base_model: channel.BaseChannel | None = None,
        train_args: trainer_pb2.TrainArgs | None = None,
        eval_args: trainer_pb2.EvalArgs | None = None,
        custom_config: dict[str, Any] | data_types.RuntimeParameter | None = None,
    ):
        spec = TrainerSpec(
            examples=examples,
            schema=schema,
            base_model=base_model,
            hyperparameters=hyperparameters,
            tuner_results=tuner_results,
            train_args=train_args or trainer_pb2.TrainArgs(),
            eval_args=eval_args or trainer_pb2.EvalArgs(),
            run_fn=run_fn,
            custom_config=(
                custom_config
                if isinstance(custom_config, data_types.RuntimeParameter)
                else json_utils.dumps(custom_config)
            ),
            model=channel.Channel(type=standard_artifacts.Model),
            model_run=channel.Channel(type=standard_artifacts.ModelRun),
        )
        super().__init__(spec=spec)
