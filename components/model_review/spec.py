"""Names shared by ModelReviewGen, its executor, `cvpipe report`, the CLI and the tests.

Imports nothing, so that `cvpipe report` finds review.json without loading TFX or TensorFlow.
"""

# ModelReviewGen parameters and channels.
PIPELINE_NAME_KEY = "pipeline_name"
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"  # The Trainer's SavedModel.
MODEL_RUN_KEY = "model_run"  # The Trainer's metrics.json and history.json.
TFLITE_MODEL_KEY = "tflite_model"  # Optional: TFLiteExporter's variants.
TUNER_RESULTS_KEY = "tuner_results"  # Optional: the Tuner's trials.json.
BLESSING_KEY = "model_blessing"  # Optional: the Evaluator's verdict.
REVIEW_KEY = "review"
PAGE_KEY = "page"  # system.HTML: the same page, shown by the Kubeflow Pipelines UI.

# Files of the ModelReview artifact.
REVIEW_FILE = "review.json"  # Everything the page shows, thumbnails included: re-rendered without TF.
PAGE_FILE = "model_review.html"

# What the review covers and how much of it the page shows.
TRAIN_SPLIT = "train"  # Every other split of the examples is reviewed (held-out images only).
MAX_MISTAKES = 24  # The most confident mistakes, over all reviewed splits.
MAX_DISAGREEMENTS = 24  # Per TFLite variant: images where it and the SavedModel disagree.
THUMBNAIL_SIZE = 96  # Pixels, the longer side.

# A detector's review (review.json's "task"; the model's params tell a detector).
DETECTION_TASK = "detection"
MIN_SCORE = 0.3  # Detections at least this sure are matched to the true boxes (and drawn).
MATCH_IOU = 0.5  # A detection matches a box (true, or the other model's) at this IoU or more.
MAX_WORST_IMAGES = 12  # The held-out images with the most missed, false and wrong-class boxes.
MAX_BOX_DISAGREEMENTS = 12  # Per TFLite variant: images where its boxes and the SavedModel's differ most.
BOXED_THUMBNAIL_SIZE = 128  # Pixels, the longer side: class names and scores stay readable.

# The artifact type's name, read without TFX; its class is in components/artifacts.py.
MODEL_REVIEW_TYPE = "components.ModelReview"  # Also a class path: see components/__init__.py.


def __getattr__(name: str):
    """``ModelReview``, loaded from components/artifacts.py (and so TFX) on first use."""
    if name == "ModelReview":
        from components.artifacts import ModelReview

        return ModelReview
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
