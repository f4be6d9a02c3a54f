"""The headline figures of a TFMA evaluation: overall metrics of the candidate and the baseline."""

from __future__ import annotations

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants


def overall_metrics(evaluation_uri: str) -> dict[str, float]:
    """{"<metric>": value, "baseline_<metric>": value} on the overall slice (no slice keys)."""
    figures: dict[str, float] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for key_and_value in metrics.metric_keys_and_values:
            key, value = key_and_value.key, key_and_value.value
            if key.HasField("sub_key") or key.is_diff or not value.HasField("double_value"):
                continue
            prefix = "baseline_" if key.model_name == constants.BASELINE_KEY else ""
            figures[f"{prefix}{key.name}"] = value.double_value.value
    return dict(sorted(figures.items()))
