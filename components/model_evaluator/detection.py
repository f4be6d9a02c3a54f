"""The detector's evaluation: TFMA's COCO metrics, gated on mAP@0.5 against the served model.

    config = eval_config(min_map=0.5, max_map_drop=0.02)  # What the pipeline gives ModelEvaluator.
    config = with_class_ids(config, num_classes=3)        # What its executor does, from labels.txt.

Metrics (overall slice): ``map50`` (COCO mAP@0.5, gated: at least ``min_map``, and at most
``max_map_drop`` below the baseline's), ``map`` (mAP@[.5:.95]) and ``mar`` (mean average recall
over the same IoUs), reported, not gated, and ``example_count``. They are pycocotools COCOeval's
stats[1], stats[0] and stats[8] (area "all", at most 100 detections per image and class, 101
recall points), with two differences: a class with no ground-truth box in the evaluated split
scores 0 in TFMA where COCOeval leaves it out of the mean, and TFMA reads precision at
``NUM_THRESHOLDS`` score steps, which can only lower AP (by under 0.01 in tests/test_detection_eval.py).

The metrics are TFMA's COCOMeanAveragePrecision and COCOMeanAverageRecall with their box matching
fixed for two bugs of TFMA 0.47.1 (``_BoxMatch``): a float ``num_detections`` (the OD API's) and an
evaluation against a baseline model both fail in TFMA's own.

TFMA needs the class ids in the config, and the number of classes is only known once
ImageExampleGen has written labels.txt: ``eval_config`` leaves them out and the ModelEvaluator
executor fills them in (``class_ids_from_labels``).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Mapping

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.metrics import metric_types, object_detection_metrics
from tensorflow_model_analysis.metrics.preprocessors import object_detection_preprocessors
from tfx.dsl.io import fileio
from tfx.utils import proto_utils

from components.image_example_gen import spec as example_spec
from components.image_model.export import EXAMPLES_SIGNATURE

MAP50 = "map50"  # COCO mAP at IoU 0.5 (COCOeval stats[1]); the gate.
MAP = "map"  # COCO mAP averaged over IoU 0.5:0.05:0.95 (COCOeval stats[0]).
MEAN_AVERAGE_RECALL = "mar"  # COCO mean average recall, IoU 0.5:0.95, 100 detections (stats[8]).

# TFMA stacks these into rows [left, top, right, bottom, class(, score)]. Both sides here are y-first
# (the TF Object Detection API's order, the detector's detection_boxes): IoU and area are the same
# with x and y swapped, so one order on both sides gives COCO's numbers.
LABEL_KEYS = (
    example_spec.OBJECT_YMIN,
    example_spec.OBJECT_XMIN,
    example_spec.OBJECT_YMAX,
    example_spec.OBJECT_XMAX,
    example_spec.OBJECT_LABEL,
)
PREDICTION_KEYS = ("detection_boxes", "detection_classes", "detection_scores")
NUM_DETECTIONS_KEY = "num_detections"
MAX_DETECTIONS = 100  # COCOeval's maxDets for stats[0], stats[1] and stats[8].
# Score steps of TFMA's precision-recall curves. TFMA's confusion matrices take O(NUM_THRESHOLDS)
# Python steps per box, per class and per IoU (10 IoUs here), most of the evaluation's time; fewer
# steps merge close scores, which can only lower AP (scores bunched near 1 lose the most).
NUM_THRESHOLDS = 200


# --- TFMA's COCO metrics, with two fixes of TFMA 0.47.1's box matching ------------------------------


class _BoxMatch(object_detection_preprocessors.BoundingBoxMatchPreprocessor):
    """TFMA's BoundingBoxMatchPreprocessor, fixed for two things it gets wrong in 0.47.1:

    - The detection count: TFMA slices with ``num_detections`` as it comes, and the TF OD API's
      (the detector's) is a float: a TypeError whenever an image has fewer than 100 detections.
      A count of 0 is not applied at all, leaving 100 rows of padding. Here the rows past the count
      are dropped before TFMA's matching (which is then given no count).
    - Two models (candidate and baseline, i.e. any change threshold): TFMA's combiners look the
      matched scores up by model name but the preprocessor yields them bare ('expected dict for
      "candidate"'). Here they are keyed by the model's name.
    """

    count_key: str | None = None

    def process(self, extracts) -> Iterator[metric_types.StandardMetricInputs]:
        for inputs in super().process(self._truncated(extracts)):
            if self._model_name:
                keyed = dict(inputs.items())
                keyed[constants.PREDICTIONS_KEY] = {self._model_name: keyed[constants.PREDICTIONS_KEY]}
                inputs = metric_types.StandardMetricInputs(keyed)
            yield inputs

    def _truncated(self, extracts):
        predictions = extracts.get(constants.PREDICTIONS_KEY)
        keyed = (
            bool(self._model_name) and isinstance(predictions, Mapping) and self._model_name in predictions
        )
        own = predictions[self._model_name] if keyed else predictions
        if not self.count_key or not isinstance(own, Mapping) or self.count_key not in own:
            return extracts
        count = int(np.asarray(own[self.count_key]).reshape(-1)[0])
        own = {**own, **{k: np.asarray(own[k])[:count] for k in self._predictions_to_stack or () if k in own}}
        return {
            **extracts,
            constants.PREDICTIONS_KEY: {**predictions, self._model_name: own} if keyed else own,
        }


def _fix_box_matching(computations: list) -> list:
    """``computations`` with TFMA's box matching preprocessors turned into ``_BoxMatch`` ones.

    TFMA builds them three classes down (mean AP -> AP -> precision at recall), so the finished
    computations are the one place to swap them.
    """
    for computation in computations:
        preprocessors = getattr(computation, "preprocessors", None) or []
        for i, preprocessor in enumerate(preprocessors):
            if type(preprocessor) is object_detection_preprocessors.BoundingBoxMatchPreprocessor:
                fixed = copy.copy(preprocessor)
                fixed.__class__ = _BoxMatch
                fixed.count_key, fixed._num_detections_key = preprocessor._num_detections_key, None
                preprocessors[i] = fixed
    return computations


class FixedCOCOMeanAveragePrecision(object_detection_metrics.COCOMeanAveragePrecision):
    """TFMA's COCOMeanAveragePrecision, its box matching fixed (``_BoxMatch``)."""

    def computations(self, *args, **kwargs):
        return _fix_box_matching(super().computations(*args, **kwargs))


class FixedCOCOMeanAverageRecall(object_detection_metrics.COCOMeanAverageRecall):
    """TFMA's COCOMeanAverageRecall, its box matching fixed (``_BoxMatch``)."""

    def computations(self, *args, **kwargs):
        return _fix_box_matching(super().computations(*args, **kwargs))


COCO_METRICS = (FixedCOCOMeanAveragePrecision.__name__, FixedCOCOMeanAverageRecall.__name__)


def _coco_config(name: str, iou_thresholds: list[float] | None = None, **extra) -> str:
    config = {
        "name": name,
        "max_num_detections": MAX_DETECTIONS,
        "labels_to_stack": list(LABEL_KEYS),
        "predictions_to_stack": list(PREDICTION_KEYS),
        "num_detections_key": NUM_DETECTIONS_KEY,
        **extra,
    }
    if iou_thresholds is not None:  # Otherwise TFMA's default, COCO's 0.5:0.05:0.95.
        config["iou_thresholds"] = iou_thresholds
    return json.dumps(config)


def eval_config(min_map: float, max_map_drop: float, *, iou_range: bool = False) -> tfma.EvalConfig:
    """mAP@0.5 must reach ``min_map`` and not drop more than ``max_map_drop`` below the baseline's.

    ``iou_range`` also computes mAP@[.5:.95] and mean average recall (reported, not gated): TFMA
    matches boxes in Python, once per IoU threshold, so they cost about 20 times the mAP@0.5 (on
    bench/detection_pipeline.py's 100 eval images: 172 s in all, against about 20 s without).
    The class ids are left out: ``with_class_ids`` fills them in before TFMA runs.
    """
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_map}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_map_drop},
        ),
    )
    average_precision, average_recall = COCO_METRICS
    metrics = [
        tfma.MetricConfig(
            class_name=average_precision,
            module=__name__,
            config=_coco_config(MAP50, [0.5], num_thresholds=NUM_THRESHOLDS),
            threshold=threshold,
        ),
    ]
    if iou_range:
        metrics += [
            tfma.MetricConfig(
                class_name=average_precision,
                module=__name__,
                config=_coco_config(MAP, num_thresholds=NUM_THRESHOLDS),
            ),
            tfma.MetricConfig(
                class_name=average_recall, module=__name__, config=_coco_config(MEAN_AVERAGE_RECALL)
            ),
        ]
    metrics.append(tfma.MetricConfig(class_name="ExampleCount"))
    return tfma.EvalConfig(
        # A generic SavedModel: TFMA would otherwise first load it as a Keras model to find out
        # (about 9 s per model here), and all it uses is the signature.
        model_specs=[tfma.ModelSpec(signature_name=EXAMPLES_SIGNATURE, model_type=tfma.TF_GENERIC)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def needs_class_ids(config: tfma.EvalConfig) -> bool:
    """Whether ``config`` has COCO metrics (which need ``with_class_ids`` before TFMA runs)."""
    return any(m.class_name in COCO_METRICS for spec in config.metrics_specs for m in spec.metrics)


def with_class_ids(config: tfma.EvalConfig, num_classes: int) -> tfma.EvalConfig:
    """A copy of ``config`` whose COCO metrics average over classes 0 .. num_classes - 1."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    filled = tfma.EvalConfig()
    filled.CopyFrom(config)
    for metrics_spec in filled.metrics_specs:
        for metric in metrics_spec.metrics:
            if metric.class_name in COCO_METRICS:
                arguments = json.loads(metric.config or "{}")
                arguments["class_ids"] = list(range(num_classes))
                metric.config = json.dumps(arguments)
    return filled


def read_num_classes(examples_uri: str) -> int:
    """How many classes ImageExampleGen found: the lines of ``<examples_uri>/labels.txt``."""
    path = os.path.join(examples_uri, example_spec.LABELS_FILE)
    if not fileio.exists(path):
        raise FileNotFoundError(f"{path} is missing: the COCO metrics need the examples' classes")
    with fileio.open(path) as f:
        return sum(1 for line in f if line.strip())


def class_ids_from_labels(eval_config_json: str, examples_uri: str) -> str:
    """The ModelEvaluator executor's step: ``with_class_ids`` with the classes of the examples'
    labels.txt, on TFX's JSON form of the EvalConfig; unchanged without COCO metrics."""
    config = proto_utils.json_to_proto(eval_config_json, tfma.EvalConfig())
    if not needs_class_ids(config):
        return eval_config_json
    return proto_utils.proto_to_json(with_class_ids(config, read_num_classes(examples_uri)))
