"""Names shared by ModelEvaluator, its executor and the tests (TFX's Evaluator keys, plus one)."""

from tfx.types import standard_component_specs

MODEL_KEY = standard_component_specs.MODEL_KEY
BASELINE_MODEL_KEY = standard_component_specs.BASELINE_MODEL_KEY
BLESSING_KEY = standard_component_specs.BLESSING_KEY
EVALUATION_KEY = standard_component_specs.EVALUATION_KEY
METRICS_KEY = "metrics"  # system.Metrics: the figures the Kubeflow UI shows in a table.

# Custom properties of the blessing and the metrics table.
BASELINE_VERSION = "baseline_version"  # The served version compared against; absent = none served.
