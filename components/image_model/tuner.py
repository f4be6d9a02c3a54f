"""The Tuner component: TFX's, whose executor also writes every trial's record into ``tuner_results``.

TFX's Tuner keeps only the best hyperparameters and each completed trial's score; its working
directory (keras-tuner's trial files) is temporary. This executor also writes ``trials.json``
beside ``tuner_results.json``: the tuning workers that had to be restarted, and for each trial its
status, hyperparameters, score, the worker that ran it, the reason a failed trial failed
(``reason``) and its training throughput (steady-state and first-epoch ``images_per_second``),
to compare with the Trainer's (in its ``metrics.json``) and with a plain Keras fit
(bench/train_speed.py). The best trial's weights go there too (``best_trial/`` and
``best_trial.json``): the Trainer continues from them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from absl import logging
from tfx.components.tuner import component as tfx_tuner_component
from tfx.components.tuner import executor as tfx_tuner
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

from components.image_model import speed, tuning

TRIALS_FILE = "trials.json"


def trial_records(tuner) -> list[dict[str, Any]]:
    """One record per trial of the tuner's oracle, in trial order."""
    workers = getattr(tuner, "trial_tuners", {})
    records = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        throughput = {
            name: round(trial.metrics.get_last_value(name), 1)
            for name in (speed.METRIC, speed.FIRST_EPOCH_METRIC)
            if trial.metrics.exists(name)
        }
        records.append(
            {
                "trial_id": trial_id,
                "status": str(trial.status),
                "score": trial.score,
                "hyperparameters": dict(trial.hyperparameters.values),
                "tuner_id": workers.get(trial_id),
                **throughput,
                **({"reason": trial.message} if trial.message else {}),
            }
        )
    return records


class Executor(tfx_tuner.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        if tfx_tuner.get_tune_args(exec_properties):
            raise ValueError("TuneArgs is not supported by this Tuner's Executor.")
        tuner = tfx_tuner.search(input_dict, exec_properties, self._get_tmp_dir())
        tfx_tuner.write_best_hyperparameters(tuner, output_dict)
        results_uri = artifact_utils.get_single_uri(output_dict[standard_component_specs.TUNER_RESULTS_KEY])
        with tf.io.gfile.GFile(os.path.join(results_uri, TRIALS_FILE), "w") as f:
            record = {
                "trials": trial_records(tuner),
                "worker_restarts": getattr(tuner, "worker_restarts", []),
            }
            f.write(json.dumps(record, indent=2))
        best = tuning.save_best_trial(tuner, results_uri)
        if best:
            logging.info(
                "Tuner: trial %s's weights (%d epochs) kept for the Trainer", best["trial_id"], best["epochs"]
            )
        else:
            logging.warning("Tuner: no trial weights to keep; the Trainer will start from scratch")


class Tuner(tfx_tuner_component.Tuner):
    """``tfx.components.Tuner`` (same arguments and outputs) with :class:`Executor`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
