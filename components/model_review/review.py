"""What the model review shows, computed from predictions: plain numpy, no TensorFlow.

    >>> report = classification_report([0, 0, 1, 2], [0, 1, 1, 2], ["cat", "dog", "fox"])
    >>> report["confusion"]                 # Rows: the true class; columns: the predicted one.
    [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    >>> report["classes"][1]["precision"]   # dog: 1 of the 2 images called dog is one.
    0.5
    >>> confident_mistakes([0, 1], [[0.2, 0.8], [0.1, 0.9]], limit=5)   # Image 0, called 1 at 0.8.
    [0]

Precision, recall and F1 follow scikit-learn's ``precision_recall_fscore_support`` with
``zero_division=0``: a class never predicted has precision 0, a class without images recall 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def classification_report(truth: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, the confusion matrix and per-class precision, recall, F1 and support.

    ``truth`` and ``predicted`` are class indices into ``labels``. Returns
    ``{"examples", "accuracy", "confusion", "classes": [{label, precision, recall, f1, support,
    predicted}], "macro": {precision, recall, f1}, "weighted": {...}}`` with plain Python numbers.
    """
    truth, predicted = _indices(truth, "truth", len(labels)), _indices(predicted, "predicted", len(labels))
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true classes but {len(predicted)} predictions")
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    correct = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    called = confusion.sum(axis=0)
    precision = np.divide(correct, called, out=np.zeros(k), where=called > 0)
    recall = np.divide(correct, support, out=np.zeros(k), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    total = int(support.sum())
    weights = support / total if total else np.zeros(k)
    return {
        "examples": total,
        "accuracy": float(correct.sum() / total) if total else 0.0,
        "confusion": confusion.tolist(),
        "classes": [
            {
                "label": labels[c],
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
                "predicted": int(called[c]),
            }
            for c in range(k)
        ],
        "macro": {name: float(values.mean()) if k else 0.0 for name, values in _named(precision, recall, f1)},
        "weighted": {name: float(values @ weights) for name, values in _named(precision, recall, f1)},
    }


def confident_mistakes(truth: Sequence[int], probabilities, limit: int) -> list[int]:
    """Indices of wrongly classified images, the most confident first (at most ``limit``)."""
    probabilities = np.asarray(probabilities, dtype=float)
    predicted = probabilities.argmax(axis=1)
    score = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(truth))
    order = wrong[np.argsort(-score[wrong], kind="stable")]
    return order[:limit].tolist()


def disagreements(reference, variant, limit: int) -> list[int]:
    """Indices where ``variant``'s top class differs from ``reference``'s, largest gap first.

    The gap is how much probability the variant took away from the reference's class, so an image
    the SavedModel was sure of and the quantised model was not comes before a near-tie.
    """
    reference, variant = np.asarray(reference, dtype=float), np.asarray(variant, dtype=float)
    if reference.shape != variant.shape:
        raise ValueError(
            f"reference {reference.shape} and variant {variant.shape} probabilities differ in shape"
        )
    top = reference.argmax(axis=1)
    rows = np.arange(len(top))
    differ = np.flatnonzero(variant.argmax(axis=1) != top)
    gap = reference[rows, top] - variant[rows, top]
    return differ[np.argsort(-gap[differ], kind="stable")][:limit].tolist()


def ranked_trials(trials: list[dict], *, lower_is_better: bool = False) -> list[dict]:
    """Tuning trials, the best score first (the lowest for a loss); trials without a score (failed,
    unfinished) last."""
    sign = 1.0 if lower_is_better else -1.0
    return sorted(
        trials,
        key=lambda t: (t.get("score") is None, sign * (t.get("score") or 0.0), str(t.get("trial_id"))),
    )


def learning_curves(history: dict) -> list[tuple[str, list[tuple[str, list[float]]]]]:
    """history.json as charts: [(title, [(series name, values)])], each metric with its val_ twin.

    ``history`` maps each metric to its per-epoch values, plus ``epoch`` (0-based epoch numbers).
    """
    names = [n for n in history if n != "epoch" and isinstance(history[n], list)]
    charts = []
    for name in names:
        if name.startswith("val_") and name[4:] in names:
            continue  # Drawn with its training twin.
        series = [(name, history[name])]
        if f"val_{name}" in names:
            series.append((f"val_{name}", history[f"val_{name}"]))
        charts.append((name, series))
    return charts


def _indices(values: Sequence[int], name: str, k: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.int64).reshape(-1)
    bad = array[(array < 0) | (array >= k)]
    if len(bad):
        raise ValueError(f"{name}: class index {int(bad[0])} outside the {k} labels")
    return array


def _named(precision, recall, f1):
    return (("precision", precision), ("recall", recall), ("f1", f1))
