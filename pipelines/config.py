"""The one typed configuration of a cvpipe run, loaded from YAML and validated once.

``pipelines/configs/default.yaml`` holds every default, and only there: the dataclasses below
declare fields and checks, no default values, so a field missing from the YAML is an error rather
than a second, silent default. A user's file overrides only what it names (nested mappings merge,
lists and scalars replace). Errors name the bad field:

    >>> load_config("my.yaml")
    ConfigError: ingest.min_widht: unknown field (known: channels, max_pixels, min_width, ...)
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any

import yaml

# The training and tuning sections are the Trainer module's own classes: it parses the same
# sections back from its custom_config (on Kubeflow, the user-editable model_config parameter).
from components.image_model import settings
from components.image_model.settings import ModuleConfigError, check_hyperparameters
from components.image_model.settings import TrainingSettings as TrainingConfig
from components.image_model.settings import TuningSettings as TuningConfig

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
DEFAULT_CONFIG = os.path.join(CONFIG_DIR, "default.yaml")
# What a task changes in the defaults, applied over default.yaml before the user's file.
TASK_DEFAULTS = {"detection": os.path.join(CONFIG_DIR, "detection.yaml")}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message names it."""


@dataclasses.dataclass
class InputConfig:
    images: str  # Image root; may contain {SPAN}.
    manifest: str | None  # Optional CSV/JSONL manifest; may contain {SPAN}.
    span: int | None  # Ingest this span instead of the latest.

    def validate(self, where: str) -> None:
        if self.span is not None and self.span < 0:
            raise ConfigError(f"{where}.span: must be non-negative, got {self.span}")


TASKS = ("classification", "detection")  # components/image_example_gen/spec.TASKS


@dataclasses.dataclass
class AnnotationsConfig:
    """Detection's box annotations (components/image_example_gen/annotations.AnnotationOptions)."""

    format: str  # auto | coco | voc | yolo
    path: str | None  # Annotation file or folder (relative to the image root); null = the usual places.
    orientation: str  # displayed (drawn on the image as shown, after Exif rotation) | stored.
    clip_tolerance: float  # Fraction of a side (at least 1 px) a box may overshoot and be clipped.
    min_size: float  # Pixels: narrower or lower boxes are dropped.
    duplicate_iou: float  # Same-class boxes overlapping at least this IoU: the later one is dropped.

    def validate(self, where: str) -> None:
        try:
            self.to_options()
        except ValueError as e:
            raise ConfigError(f"{where}.{str(e).removeprefix('annotations.')}") from None

    def to_options(self):
        from components.image_example_gen.annotations import AnnotationOptions

        return AnnotationOptions(**dataclasses.asdict(self))


@dataclasses.dataclass
class IngestConfig:
    channels: int
    max_pixels: int
    min_width: int
    min_height: int
    allowed_formats: list[str]
    background: list[int]
    splits: dict[str, int]
    gzip_level: int
    pixel_properties: bool  # Brightness, contrast, sharpness, ... and a pHash of every image.
    flags: dict[str, float]  # Flag -> threshold (components/image_example_gen/pixels.FlagThresholds).
    annotations: AnnotationsConfig  # Detection only.
    # The run's task (the top-level ``task``), set by Config when it is built: ingestion depends on
    # it. A class attribute, not a field: it is not a key of the ingest section.
    task = "classification"

    def validate(self, where: str) -> None:
        if self.channels not in (1, 3):
            raise ConfigError(f"{where}.channels: must be 1 or 3, got {self.channels}")
        for name in ("max_pixels", "min_width", "min_height"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: must be positive, got {getattr(self, name)}")
        if len(self.background) != 3 or not all(0 <= v <= 255 for v in self.background):
            raise ConfigError(f"{where}.background: must be three values 0-255, got {self.background}")
        if not self.splits or any(v < 0 for v in self.splits.values()) or sum(self.splits.values()) <= 0:
            raise ConfigError(
                f"{where}.splits: weights must be non-negative with a positive sum, got {self.splits}"
            )
        if not 0 <= self.gzip_level <= 9:
            raise ConfigError(f"{where}.gzip_level: must be 0-9, got {self.gzip_level}")
        if "train" not in self.splits:
            raise ConfigError(f"{where}.splits: a 'train' split is required, got {list(self.splits)}")
        self.flag_thresholds(where)

    def flag_thresholds(self, where: str = "ingest"):
        from components.image_example_gen.pixels import FlagThresholds

        known = [f.name for f in dataclasses.fields(FlagThresholds)]
        for name in self.flags:
            if name not in known:
                raise ConfigError(f"{where}.flags.{name}: unknown flag (known: {', '.join(known)})")
        values = dict(self.flags)
        if "near_duplicate" in values:
            distance = values["near_duplicate"]
            if distance != int(distance):
                raise ConfigError(f"{where}.flags.near_duplicate: a whole number of bits, got {distance}")
            values["near_duplicate"] = int(distance)
        try:
            return FlagThresholds(**values)
        except ValueError as e:
            raise ConfigError(f"{where}.{e}") from None

    def to_options(self):
        """The component's IngestOptions (imported here: it pulls in Beam and TensorFlow)."""
        from components.image_example_gen.imaging import ImageOptions
        from components.image_example_gen.ingest import IngestOptions

        return IngestOptions(
            image=ImageOptions(
                channels=self.channels,
                max_pixels=self.max_pixels,
                min_width=self.min_width,
                min_height=self.min_height,
                allowed_formats=tuple(f.upper() for f in self.allowed_formats),
                background=tuple(self.background),
                pixel_properties=self.pixel_properties,
            ),
            splits=tuple(self.splits.items()),
            gzip_level=self.gzip_level,
            flags=self.flag_thresholds(),
            task=self.task,
            annotations=self.annotations.to_options(),
        )


@dataclasses.dataclass
class ValidationConfig:
    # "default" uses schemas/schema.pbtxt through ImportSchemaGen; a path uses that file; null
    # infers a schema from the statistics with SchemaGen.
    schema: str | None
    gate: str  # fail: an error anomaly stops the run before training; warn: report only.
    max_quarantine_rate: float  # Quarantined / seen input files.
    min_class_count: int  # Train images per class.
    max_class_imbalance: float  # Largest / smallest train class.
    categorical_drift: float  # L-infinity threshold against the previous span.
    numeric_drift: float  # Jensen-Shannon threshold against the previous span.
    drift_features: dict[str, str]  # Feature -> linf | js; empty = checks.DEFAULT_DRIFT_FEATURES.
    property_drift: float  # Jensen-Shannon threshold of brightness, contrast, sharpness, colourfulness.
    property_imbalance: float  # A class's share of pairs above (or below) the other classes (0.5-1).
    # task: detection (components/data_checks/boxes.py).
    min_box_count: int  # Train boxes per class.
    max_box_imbalance: float  # Most / fewest train boxes of a class.
    max_boxes_per_image: int  # More boxes on one image is an anomaly.
    max_negative_share: float  # Share of a split's images without boxes.
    box_skew: float  # Jensen-Shannon: eval/test box sizes, aspect ratios, boxes per image vs train's.
    box_drift: float  # Jensen-Shannon: the same against the previous span's train split.
    severities: dict[str, str]  # Check -> error | warning.
    baseline_statistics: str | None  # Statistics artifact URI; null = the statistics store.
    thumbnails_per_class: int  # Report thumbnails per class (0 = none).

    def validate(self, where: str) -> None:
        from components.data_checks import checks

        if self.gate not in ("fail", "warn"):
            raise ConfigError(f"{where}.gate: fail or warn, got {self.gate!r}")
        if not 0 <= self.max_quarantine_rate <= 1:
            raise ConfigError(f"{where}.max_quarantine_rate: 0-1, got {self.max_quarantine_rate}")
        if self.min_class_count < 0 or self.max_class_imbalance < 1:
            raise ConfigError(f"{where}: min_class_count must be >= 0 and max_class_imbalance >= 1")
        if not 0 < self.categorical_drift <= 1 or not 0 < self.numeric_drift <= 1:
            raise ConfigError(f"{where}: categorical_drift and numeric_drift must be in (0, 1]")
        if not 0 < self.property_drift <= 1:
            raise ConfigError(f"{where}.property_drift: in (0, 1], got {self.property_drift}")
        if not 0.5 < self.property_imbalance <= 1:
            raise ConfigError(f"{where}.property_imbalance: in (0.5, 1], got {self.property_imbalance}")
        if self.min_box_count < 0 or self.max_box_imbalance < 1 or self.max_boxes_per_image < 1:
            raise ConfigError(
                f"{where}: min_box_count must be >= 0, max_box_imbalance >= 1 and max_boxes_per_image >= 1"
            )
        if not 0 <= self.max_negative_share <= 1:
            raise ConfigError(f"{where}.max_negative_share: 0-1, got {self.max_negative_share}")
        if not 0 < self.box_skew <= 1 or not 0 < self.box_drift <= 1:
            raise ConfigError(f"{where}: box_skew and box_drift must be in (0, 1]")
        for name, kind in self.drift_features.items():
            if kind not in (checks.LINF, checks.JS):
                raise ConfigError(f"{where}.drift_features.{name}: linf or js, got {kind!r}")
        for name, severity in self.severities.items():
            if name not in checks.CHECKS:
                raise ConfigError(
                    f"{where}.severities.{name}: unknown check (known: {', '.join(checks.CHECKS)})"
                )
            if severity not in checks.SEVERITIES:
                raise ConfigError(f"{where}.severities.{name}: error or warning, got {severity!r}")
        if self.thumbnails_per_class < 0:
            raise ConfigError(f"{where}.thumbnails_per_class: must be >= 0")

    def check_options(self):
        from components.data_checks import checks

        return checks.CheckOptions(
            max_quarantine_rate=self.max_quarantine_rate,
            min_class_count=self.min_class_count,
            max_class_imbalance=self.max_class_imbalance,
            categorical_drift=self.categorical_drift,
            numeric_drift=self.numeric_drift,
            drift_features=tuple((self.drift_features or checks.DEFAULT_DRIFT_FEATURES).items()),
            property_drift=self.property_drift,
            property_imbalance=self.property_imbalance,
            min_box_count=self.min_box_count,
            max_box_imbalance=self.max_box_imbalance,
            max_boxes_per_image=self.max_boxes_per_image,
            max_negative_share=self.max_negative_share,
            box_skew=self.box_skew,
            box_drift=self.box_drift,
            severities=tuple({**checks.DEFAULT_SEVERITIES, **self.severities}.items()),
            gate=self.gate,
        )


@dataclasses.dataclass
class ModelConfig:
    image_size: int  # Square input size; 0 = the median short side of the images (32-128).
    flip: bool  # Horizontal-flip augmentation; turn off where a flip changes the class.
    hyperparameters: dict[str, Any]  # When not tuning.

    def validate(self, where: str) -> None:
        if self.image_size and not 16 <= self.image_size <= 512:
            raise ConfigError(f"{where}.image_size: 0 (auto) or 16-512, got {self.image_size}")


@dataclasses.dataclass
class EvaluationConfig:
    min_accuracy: float  # Classification: eval-split accuracy lower bound for a blessing.
    max_accuracy_drop: float  # Classification: allowed drop against the served model.
    min_map: float  # Detection: eval-split COCO mAP@0.5 lower bound for a blessing.
    max_map_drop: float  # Detection: allowed mAP@0.5 drop against the served model.
    map_iou_range: bool  # Detection: also mAP@[.5:.95] and mean average recall (20x the time).
    # Beam arguments for the Evaluator alone, after beam.args (the last value of a flag wins).
    beam_args: list[str]

    def validate(self, where: str) -> None:
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ConfigError(f"{where}.min_accuracy: 0-1, got {self.min_accuracy}")
        if self.max_accuracy_drop < 0:
            raise ConfigError(f"{where}.max_accuracy_drop: must be >= 0, got {self.max_accuracy_drop}")
        if not 0.0 <= self.min_map <= 1.0:
            raise ConfigError(f"{where}.min_map: 0-1, got {self.min_map}")
        if self.max_map_drop < 0:
            raise ConfigError(f"{where}.max_map_drop: must be >= 0, got {self.max_map_drop}")


@dataclasses.dataclass
class ServingConfig:
    model_name: str

    def validate(self, where: str) -> None:
        if not self.model_name or "/" in self.model_name or self.model_name.startswith("."):
            raise ConfigError(f"{where}.model_name: a plain name, got {self.model_name!r}")


@dataclasses.dataclass
class EdgeConfig:
    enabled: bool
    modes: list[str]
    representative_count: int  # Calibration images from the train split, every class.
    max_accuracy_drop: float  # Classification: against the float SavedModel on the eval split.
    min_agreement: float  # Classification: top-1 agreement with the float SavedModel.
    max_map_drop: float  # Detection: mAP@0.5 drop against the SavedModel on the eval split.
    author: str  # Written into each .tflite file's metadata (the version is the pushed one).

    def validate(self, where: str) -> None:
        allowed = ("float32", "dynamic_range", "float16", "int8")
        if not self.author.strip():
            raise ConfigError(f"{where}.author: must not be empty")
        if not self.modes or any(m not in allowed for m in self.modes):
            raise ConfigError(f"{where}.modes: a non-empty list of {list(allowed)}, got {self.modes}")
        if self.representative_count < 1:
            raise ConfigError(f"{where}.representative_count: must be positive")
        if not 0 <= self.min_agreement <= 1 or self.max_accuracy_drop < 0:
            raise ConfigError(f"{where}: min_agreement must be 0-1 and max_accuracy_drop >= 0")
        if self.max_map_drop < 0:
            raise ConfigError(f"{where}.max_map_drop: must be >= 0, got {self.max_map_drop}")


@dataclasses.dataclass
class BeamConfig:
    # Arguments for every Beam pipeline of the run. Locally the DirectRunner with one process per
    # core; see README "Configuration" for Dataflow, Flink and Spark arguments.
    args: list[str]
    # Local runs with fewer input files run each Beam component in one process (in_memory):
    # starting a worker process per core costs more than it saves (pipelines/beam_local.py).
    in_process_below: int


@dataclasses.dataclass
class Config:
    pipeline_name: str
    enable_cache: bool
    task: str  # classification | detection: what the examples hold (labels or boxes).
    input: InputConfig
    ingest: IngestConfig
    validation: ValidationConfig
    model: ModelConfig
    training: TrainingConfig  # The Trainer module's own class (components/image_model/settings.py).
    tuning: TuningConfig  # Likewise.
    evaluation: EvaluationConfig
    serving: ServingConfig
    edge: EdgeConfig
    beam: BeamConfig

    def validate(self, where: str) -> None:
        if not self.pipeline_name or not self.pipeline_name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"pipeline_name: letters, digits, - and _ only, got {self.pipeline_name!r}")
        if self.task not in TASKS:
            raise ConfigError(f"task: one of {', '.join(TASKS)}, got {self.task!r}")
        self.ingest.task = self.task
        try:
            check_hyperparameters(self.task, self.model.hyperparameters, "model.hyperparameters")
            check_hyperparameters(self.task, self.tuning.search_space, "tuning.search_space")
        except ModuleConfigError as e:
            raise ConfigError(str(e)) from None
        if self.task == "detection" and self.edge.enabled:
            from components.tflite_exporter.spec import DETECTION_MODES

            unsupported = [m for m in self.edge.modes if m not in DETECTION_MODES]
            if unsupported:
                supported = " and ".join(DETECTION_MODES)
                raise ConfigError(f"edge.modes: a detector exports {supported} only, got {unsupported}")


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Default config (with the task's own defaults), overridden by the YAML file at ``path``, then
    by ``overrides``."""
    data = _read_yaml(DEFAULT_CONFIG)
    user = _read_yaml(path) if path else {}
    overrides = overrides or {}
    task = overrides.get("task", user.get("task", data.get("task")))
    if task in TASK_DEFAULTS:
        data = merge(data, _read_yaml(TASK_DEFAULTS[task]))
    return build(Config, merge(merge(data, user), overrides), "")


def _read_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return data


_REPLACED = {
    "splits",
    "search_space",
    "hyperparameters",
    "drift_features",
}  # Mappings an override replaces whole.


def merge(base: dict, override: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict) and key not in _REPLACED:
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def build(cls, data: Any, where: str):
    """Builds dataclass ``cls`` from plain data, checking every field's type (settings.build)."""
    try:
        return settings.build(cls, data, where, missing=f"missing (add it to {DEFAULT_CONFIG})")
    except ModuleConfigError as e:  # The one typed reader's errors, as the config's own.
        raise ConfigError(str(e)) from None
