"""What ingestion does differently per task, behind one small interface chosen by the config.

The shared steps (discovery, hashing, duplicates, verification, pixels, splits, sinks) do not know
the task. A task decides four things:

- ``prepare(discovery, read)``: the inputs to account for and the label vocabulary. Classification
  takes them as discovered (class folders or a manifest); detection reads the annotation files,
  keeps the image files in any layout and adds a quarantine candidate for each annotation that
  names no image or file that does not parse.
- ``targets(candidate, image, index)``: the example's target features and the catalog columns
  that go with them (classification: ``label``, ``label_index``; detection: the TF Object
  Detection API's ``image/object/*`` lists, and box_count, box_classes, box_issues).
- ``catalog_fields()``: the task's own catalog columns.
- ``summary(rows)``: the task's part of summary.json (detection: ``objects``).

    >>> task = task_for(IngestOptions(task="detection"))
    >>> prepared = task.prepare(discover("scenes"), read=lambda p: open(f"scenes/{p}", "rb").read())
    >>> prepared.labels
    ['circle', 'square', 'triangle']
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable

import pyarrow as pa

from components.image_example_gen import annotations as annotations_lib
from components.image_example_gen import spec
from components.image_example_gen.discovery import Candidate, Discovery
from components.image_example_gen.imaging import InspectedImage
from components.image_example_gen.records import box_features, label_features

Reader = Callable[[str], bytes]


class Classification:
    """One label per image: the class folder or the manifest's ``label``."""

    name = "classification"

    def prepare(self, discovery: Discovery, read: Reader) -> Discovery:
        return discovery

    def catalog_fields(self) -> list[tuple[str, pa.DataType]]:
        return []

    def targets(self, candidate: Candidate, image: InspectedImage, index: dict[str, int]):
        label_index = index[candidate.label]
        columns = {spec.LABEL: candidate.label, spec.LABEL_INDEX: label_index}
        return label_features(candidate.label, label_index), columns

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {}


class Detection:
    """Boxes per image from COCO, Pascal VOC or YOLO annotations (annotations.py)."""

    name = "detection"

    def __init__(self, options: annotations_lib.AnnotationOptions):
        self._options = options

    def prepare(self, discovery: Discovery, read: Reader) -> Discovery:
        """Image files in any layout, each with its annotation; annotation files are not candidates.

        Folder names are not labels here: the vocabulary is the annotations' categories.
        """
        usable = [c for c in discovery.candidates if c.reason in (None, spec.MISSING_LABEL)]
        found = annotations_lib.find_annotations([c.path for c in usable], self._options, read)
        consumed = set(found.files)
        candidates = []
        for candidate in discovery.candidates:
            if candidate.path in consumed:
                continue
            if candidate.reason not in (None, spec.MISSING_LABEL):
                candidates.append(dataclasses.replace(candidate, label=None))
                continue
            annotation = found.images.get(candidate.path)
            if annotation is None and found.unannotated_is_negative:
                annotation = annotations_lib.ImageAnnotation()
            if annotation is None and annotations_lib.is_image_path(candidate.path):
                candidates.append(
                    Candidate(
                        candidate.path,
                        None,
                        candidate.extras,
                        spec.UNANNOTATED_IMAGE,
                        f"no {found.format} annotation covers this image (an image without objects "
                        "must still be listed: a COCO image entry, a VOC file without objects)",
                        candidate.split,
                    )
                )
                continue
            candidates.append(
                dataclasses.replace(candidate, label=None, reason=None, detail="", annotation=annotation)
            )
        taken = {c.path for c in candidates}
        for record in found.records:
            path = record.path
            while path in taken:  # A record never shares a catalog path with an image.
                path += "#annotation"
            taken.add(path)
            candidates.append(Candidate(path, None, reason=record.reason, detail=record.detail))
        return Discovery(
            discovery.root, candidates, found.vocabulary, discovery.extra_columns, discovery.splits_from
        )

    def catalog_fields(self) -> list[tuple[str, pa.DataType]]:
        return [
            (spec.BOX_COUNT, pa.int64()),
            (spec.BOX_CLASSES, pa.list_(pa.string())),
            (spec.BOX_ISSUES, pa.list_(pa.string())),
        ]

    def targets(self, candidate: Candidate, image: InspectedImage, index: dict[str, int]):
        boxes, issues = annotations_lib.clean_boxes(
            candidate.annotation or annotations_lib.ImageAnnotation(),
            width=image.width,
            height=image.height,
            orientation=int(image.metadata.get(spec.ORIENTATION) or 1),
            vocabulary=list(index),
            options=self._options,
        )
        columns = {
            spec.BOX_COUNT: len(boxes),
            spec.BOX_CLASSES: [b.category for b in boxes],
            spec.BOX_ISSUES: [str(i) for i in issues],
        }
        return box_features(boxes, index), columns

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        ingested = [r for r in rows if r[spec.STATUS] == spec.INGESTED]
        issues = collections.Counter(
            issue.split(":", 1)[0] for r in ingested for issue in (r[spec.BOX_ISSUES] or [])
        )
        classes = collections.Counter(c for r in ingested for c in (r[spec.BOX_CLASSES] or []))
        return {
            "objects": {
                "boxes": sum(r[spec.BOX_COUNT] or 0 for r in ingested),
                "by_class": dict(sorted(classes.items())),
                "images_with_boxes": sum(1 for r in ingested if r[spec.BOX_COUNT]),
                "negatives": sum(1 for r in ingested if not r[spec.BOX_COUNT]),
                "images_with_box_issues": sum(1 for r in ingested if r[spec.BOX_ISSUES]),
                "box_issues": dict(sorted(issues.items())),
                "options": dataclasses.asdict(self._options),
            }
        }


def task_for(options) -> Classification | Detection:
    """The task that ``options`` (IngestOptions) names."""
    if options.task == "detection":
        return Detection(options.annotations)
    return Classification()
