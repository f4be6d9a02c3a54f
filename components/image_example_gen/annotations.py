"""Box annotations for object detection: COCO, Pascal VOC and YOLO in; clean, oriented boxes out.

Annotation files are untrusted input, like the images. Parsing never raises on their content:
a file that does not parse becomes a quarantine record with a reason, a bad entry inside a file a
box issue on its image (the image keeps its other boxes). Three steps, each a plain function:

- ``find_annotations(paths, options, read)`` locates and parses the annotation files among the
  files of an image root (``read(relative_path) -> bytes``) and pairs them with the image files:
  an :class:`AnnotationSet` (the vocabulary, each image's raw boxes, the annotation files used and
  the records to quarantine).
- ``clean_boxes(annotation, ...)`` turns one image's raw boxes into boxes normalised to [0, 1] of
  the stored (displayed) image: clipped within a tolerance or dropped with a reason (outside the
  image, no area, duplicate, unknown category), moved by the Exif orientation when they were drawn
  on the stored pixels (``orientation: stored``).
- ``orient_box(box, orientation)`` is the pixels' own transform (imaging._apply_orientation)
  applied to a normalised box.

    >>> found = find_annotations(["a.jpg", "annotations.json"], AnnotationOptions(), read)
    >>> found.vocabulary, found.images["a.jpg"].boxes
    (['circle', 'square'], (RawBox(xmin=10, ymin=4, xmax=30, ymax=20, category='square', ...),))
    >>> boxes, issues = clean_boxes(found.images["a.jpg"], width=64, height=48, orientation=1,
    ...                             vocabulary=found.vocabulary, options=AnnotationOptions())
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import posixpath
from typing import Any, Callable, Iterable

from components.image_example_gen import spec

FORMATS = ("auto", "coco", "voc", "yolo")
ORIENTATIONS = ("displayed", "stored")
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".mpo",
    ".heic",
    ".heif",
    ".hif",
    ".avif",
)
COCO_NAMES = ("annotations.json", "_annotations.coco.json")  # Also instances*.json; at the root
COCO_FOLDERS = ("", "annotations")  # or in annotations/ (the COCO release layout).
YOLO_NAMES_FILES = ("classes.txt", "data.yaml", "data.yml", "obj.names")
VOC_NAMES_FILES = ("classes.txt", "labels.txt")  # Optional for VOC: names outside it are unknown.
_NAMES_FILES = set(YOLO_NAMES_FILES) | set(VOC_NAMES_FILES)
_MAX_ISSUE_DETAIL = 200


@dataclasses.dataclass(frozen=True)
class AnnotationOptions:
    """Where the annotations are and how far to trust them (``ingest.annotations`` in the config).

    format: auto (detect from the files), coco, voc or yolo.
    path: the annotation file or folder, relative to the image root or absolute; None = look in the
      usual places (see README).
    orientation: displayed (boxes drawn on the image as shown, after Exif orientation: what
      annotation tools show) or stored (drawn on the pixels as stored: moved with them).
    clip_tolerance: a box may overshoot an edge by this fraction of that side (at least one pixel)
      and is then clipped to the image; further out, it is dropped as ``box_outside_image``.
    min_size: boxes narrower or lower than this many pixels (after clipping) are dropped as
      ``degenerate_box``.
    duplicate_iou: a box of the same class overlapping an earlier one at least this much (IoU) is
      dropped as ``duplicate_box``.

    The defaults are ``ingest.annotations`` in pipelines/configs/default.yaml.
    """

    format: str = "auto"
    path: str | None = None
    orientation: str = "displayed"
    clip_tolerance: float = 0.01
    min_size: float = 1.0
    duplicate_iou: float = 0.95

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"annotations.format: one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(
                f"annotations.orientation: one of {', '.join(ORIENTATIONS)}, got {self.orientation!r}"
            )
        if not 0 <= self.clip_tolerance <= 0.5:
            raise ValueError(f"annotations.clip_tolerance: 0-0.5, got {self.clip_tolerance}")
        if self.min_size < 0:
            raise ValueError(f"annotations.min_size: must be >= 0, got {self.min_size}")
        if not 0 < self.duplicate_iou <= 1:
            raise ValueError(f"annotations.duplicate_iou: in (0, 1], got {self.duplicate_iou}")


@dataclasses.dataclass(frozen=True)
class RawBox:
    """A box as the annotation file gives it: pixels (COCO, VOC) or fractions (YOLO) of its frame."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    category: str | None  # None: the file's category is unknown (the issue names it).
    source: str  # Where it came from, for messages: "annotations.json: annotation 17".
    normalised: bool = False  # YOLO: fractions of the image's width and height.
    crowd: bool = False  # COCO iscrowd: a region of many objects, not one object.


@dataclasses.dataclass(frozen=True)
class Issue:
    """A problem with one box (or one annotation entry) of an image; the image keeps its other boxes."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class ImageAnnotation:
    """One image's boxes as annotated, with the problems found while parsing them."""

    boxes: tuple[RawBox, ...] = ()
    issues: tuple[Issue, ...] = ()
    size: tuple[int, int] | None = None  # (width, height) the file declares, if it does.
    source: str = ""  # The annotation file.


@dataclasses.dataclass(frozen=True)
class Box:
    """A clean box, normalised to [0, 1] of the ingested image (displayed orientation)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    category: str


@dataclasses.dataclass(frozen=True)
class Record:
    """An input to account for that is not an ingestible image: a quarantine row of the catalog."""

    path: str
    reason: str
    detail: str


@dataclasses.dataclass
class AnnotationSet:
    """The annotations of an image root, paired with its image files."""

    format: str
    vocabulary: list[str]  # Sorted category names: label i is line i of labels.txt (0-based).
    images: dict[str, ImageAnnotation]  # Image path (relative to the root) -> its annotation.
    files: list[str]  # The annotation files read (not images, so not candidates).
    records: list[Record]  # Malformed files, annotations naming no existing image.
    unannotated_is_negative: bool  # YOLO: an image without a label file has no objects.


Reader = Callable[[str], bytes]


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ISSUE_DETAIL else text[: _MAX_ISSUE_DETAIL - 3] + "..."


def _describe(error: Exception) -> str:
    return _short(f"{type(error).__name__}: {error}")


def _stem(path: str) -> str:
    return posixpath.splitext(path)[0]


def is_image_path(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


# ----------------------------------------------------------------------------------------------
# Finding the annotations of an image root.


def find_annotations(paths: Iterable[str], options: AnnotationOptions, read: Reader) -> AnnotationSet:
    """Locates, parses and pairs the annotations among ``paths`` (every file under the image root).

    ``read(path)`` returns a file's bytes; ``path`` is relative to the root, or absolute when
    ``options.path`` is. Raises ValueError only for a setup problem (no annotations found, YOLO
    without class names); bad annotation content becomes records and issues.
    """
    paths = sorted(paths)
    fmt, sources = _locate(paths, options)
    images = [p for p in paths if is_image_path(p)]
    if fmt == "coco":
        return _find_coco(sources, images, read)
    if fmt == "voc":
        return _find_voc(sources, paths, images, read)
    return _find_yolo(sources, paths, images, read)


def _under(paths: list[str], folder: str) -> list[str]:
    folder = folder.strip("/")
    if not folder or folder == ".":
        return paths
    return [p for p in paths if p.startswith(folder + "/")]


def _locate(paths: list[str], options: AnnotationOptions) -> tuple[str, list[str]]:
    """The format and the annotation files to read (relative to the root, or absolute)."""
    given = options.path.strip().rstrip("/") if options.path else ""
    if given.lower().endswith(".json"):  # One COCO file, inside the root or not.
        if options.format not in ("auto", "coco"):
            raise ValueError(f"ingest.annotations.path {given!r} is a JSON file: COCO, not {options.format}")
        return "coco", [given]
    scope = _under(paths, given) if given else paths
    if given and not scope:
        raise ValueError(f"ingest.annotations.path {given!r}: no files under it inside the image root")
    prefix = f"{given}/" if given else ""
    if options.format in ("auto", "coco"):
        coco = [
            p
            for p in scope
            if posixpath.dirname(p[len(prefix) :]) in COCO_FOLDERS
            and (posixpath.basename(p) in COCO_NAMES or _is_instances(posixpath.basename(p)))
        ]
        if coco:
            return "coco", coco
        if options.format == "coco":
            raise ValueError(
                "ingest.annotations.format is coco but there is no annotations.json or instances*.json "
                "at the image root or in annotations/; set ingest.annotations.path"
            )
    if options.format in ("auto", "voc"):
        xml = [p for p in scope if p.lower().endswith(".xml")]
        if xml:
            return "voc", xml
        if options.format == "voc":
            raise ValueError("ingest.annotations.format is voc but there are no .xml files")
    txt = [p for p in scope if p.lower().endswith(".txt") and posixpath.basename(p) not in _NAMES_FILES]
    if options.format == "yolo" or txt:
        return "yolo", txt
    raise ValueError(
        "task is detection but no annotations were found under the image root: looked for a COCO "
        "annotations.json or instances*.json, Pascal VOC .xml files and YOLO .txt files; set "
        "ingest.annotations.format and ingest.annotations.path"
    )


def _is_instances(name: str) -> bool:
    return name.startswith("instances") and name.endswith(".json")


def _resolve_image(name: str, near: str, images: list[str], by_name: dict[str, list[str]]) -> str | None:
    """An annotation's image name to an image path: relative to ``near``, to the root, or by name."""
    name = name.replace("\\", "/").strip()
    if not name:
        return None
    candidates = [posixpath.normpath(posixpath.join(near, name)), posixpath.normpath(name)]
    image_set = set(images)
    for candidate in candidates:
        if candidate in image_set:
            return candidate
    matches = by_name.get(posixpath.basename(name), [])
    return matches[0] if len(matches) == 1 else None


def _by_name(images: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in images:
        out.setdefault(posixpath.basename(path), []).append(path)
    return out


def _merge(found: dict[str, ImageAnnotation], path: str, annotation: ImageAnnotation) -> None:
    """Two files annotating one image: its boxes and issues are combined."""
    if path in found:
        earlier = found[path]
        annotation = ImageAnnotation(
            earlier.boxes + annotation.boxes,
            earlier.issues + annotation.issues,
            earlier.size or annotation.size,
            earlier.source,
        )
    found[path] = annotation


# ----------------------------------------------------------------------------------------------
# COCO instances JSON.


def _find_coco(sources: list[str], images: list[str], read: Reader) -> AnnotationSet:
    by_name = _by_name(images)
    found: dict[str, ImageAnnotation] = {}
    records: list[Record] = []
    vocabulary: set[str] = set()
    for source in sources:
        try:
            data = read(source)
        except Exception as e:  # noqa: BLE001 - an unreadable file is a record, whatever the cause.
            records.append(Record(source, spec.MALFORMED_ANNOTATIONS, f"cannot read: {_describe(e)}"))
            continue
        parsed = parse_coco(data, source)
        records += parsed.records
        vocabulary |= set(parsed.categories)
        near = posixpath.dirname(source)
        if posixpath.basename(near) == "annotations":  # COCO layout: file names are of the root's images.
            near = posixpath.dirname(near)
        missing: dict[str, list[str]] = {}
        for file_name, annotation in parsed.images.items():
            path = _resolve_image(file_name, near, images, by_name)
            if path is None:
                missing.setdefault(posixpath.normpath(posixpath.join(near, file_name)), []).append(
                    f"{len(annotation.boxes)} box(es)"
                )
                continue
            _merge(found, path, annotation)
        for path, what in sorted(missing.items()):
            records.append(
                Record(
                    path,
                    spec.ANNOTATION_WITHOUT_IMAGE,
                    f"{source} annotates it ({what[0]}) but there is no such image",
                )
            )
    return AnnotationSet("coco", sorted(vocabulary), found, list(sources), records, False)


@dataclasses.dataclass
class ParsedCoco:
    categories: list[str]
    images: dict[str, ImageAnnotation]  # file_name as written -> annotation.
    records: list[Record]


def parse_coco(data: bytes, source: str = "annotations.json") -> ParsedCoco:
    """A COCO instances file, indexed by pycocotools; entries that do not parse become issues.

    Boxes are COCO's ``[x, y, width, height]`` in pixels from the top-left corner.
    """
    try:
        dataset = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        return ParsedCoco(
            [], {}, [Record(source, spec.MALFORMED_ANNOTATIONS, f"not valid JSON: {_describe(e)}")]
        )
    if not isinstance(dataset, dict) or not isinstance(dataset.get("images"), list):
        return ParsedCoco(
            [],
            {},
            [Record(source, spec.MALFORMED_ANNOTATIONS, "not a COCO instances file: no 'images' list")],
        )
    records: list[Record] = []
    categories: dict[Any, str] = {}
    for i, category in enumerate(dataset.get("categories") or []):
        name = category.get("name") if isinstance(category, dict) else None
        if not isinstance(name, str) or not name.strip() or not _is_id(category.get("id")):
            records.append(
                Record(f"{source}#categories[{i}]", spec.MALFORMED_ANNOTATIONS, "category without id or name")
            )
            continue
        categories[category["id"]] = name.strip()
    images: dict[Any, dict] = {}
    for i, image in enumerate(dataset["images"]):
        if (
            not isinstance(image, dict)
            or not _is_id(image.get("id"))
            or not isinstance(image.get("file_name"), str)
            or not image["file_name"].strip()
        ):
            records.append(
                Record(f"{source}#images[{i}]", spec.MALFORMED_ANNOTATIONS, "image without id or file_name")
            )
            continue
        if image["id"] in images:
            records.append(
                Record(
                    f"{source}#images[{i}]",
                    spec.MALFORMED_ANNOTATIONS,
                    f"image id {image['id']} appears twice",
                )
            )
            continue
        images[image["id"]] = image
    issues: dict[Any, list[Issue]] = {}
    annotations = []
    raw = dataset.get("annotations") or []
    if not isinstance(raw, list):
        records.append(Record(source, spec.MALFORMED_ANNOTATIONS, "'annotations' is not a list"))
        raw = []
    for i, annotation in enumerate(raw):
        where = f"{source}: annotation {annotation.get('id', i) if isinstance(annotation, dict) else i}"
        image_id = annotation.get("image_id") if isinstance(annotation, dict) else None
        if not _is_id(image_id) or image_id not in images:
            records.append(
                Record(
                    f"{source}#annotations[{i}]",
                    spec.ANNOTATION_WITHOUT_IMAGE,
                    f"image_id {image_id!r} is not an image of the file",
                )
            )
            continue
        bbox = annotation.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            issues.setdefault(image_id, []).append(
                Issue(spec.BAD_ANNOTATION, f"{where}: bbox {bbox!r} is not [x, y, width, height]")
            )
            continue
        annotations.append({**annotation, "id": i + 1, "bbox": [float(v) for v in bbox]})
    coco = _index_with_pycocotools(
        {"images": list(images.values()), "annotations": annotations, "categories": []}
    )
    parsed: dict[str, ImageAnnotation] = {}
    for image_id, image in images.items():
        boxes = []
        for annotation in coco.imgToAnns.get(image_id, []):
            x, y, w, h = annotation["bbox"]
            category = categories.get(annotation.get("category_id"))
            box = RawBox(
                x,
                y,
                x + w,
                y + h,
                category,
                f"{source}: annotation {annotation.get('id')}",
                crowd=bool(annotation.get("iscrowd")),
            )
            if category is None:
                issues.setdefault(image_id, []).append(
                    Issue(
                        spec.UNKNOWN_CATEGORY,
                        f"{box.source}: category_id {annotation.get('category_id')!r} is not in categories",
                    )
                )
                continue
            boxes.append(box)
        size = (image.get("width"), image.get("height"))
        size = size if all(isinstance(v, int) and v > 0 for v in size) else None
        annotation = ImageAnnotation(tuple(boxes), tuple(issues.get(image_id, ())), size, source)
        _merge(parsed, image["file_name"], annotation)
    return ParsedCoco(sorted(set(categories.values())), parsed, records)


def _index_with_pycocotools(dataset: dict):
    """pycocotools' index (imgToAnns, imgs) of an already checked dataset; its prints are muted."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _is_id(value) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------
# Pascal VOC XML.


def _find_voc(sources: list[str], paths: list[str], images: list[str], read: Reader) -> AnnotationSet:
    names = _optional_names(paths, VOC_NAMES_FILES, read)
    by_stem: dict[str, list[str]] = {}
    for image in images:
        by_stem.setdefault(posixpath.basename(_stem(image)), []).append(image)
    image_set = set(images)
    by_name = _by_name(images)
    found: dict[str, ImageAnnotation] = {}
    records: list[Record] = []
    vocabulary: set[str] = set(names or ())
    for source in sources:
        try:
            parsed = parse_voc(read(source), source, names)
        except Exception as e:  # noqa: BLE001 - an unreadable file is a record, whatever the cause.
            records.append(Record(source, spec.MALFORMED_ANNOTATIONS, f"cannot read: {_describe(e)}"))
            continue
        if isinstance(parsed, Record):
            records.append(parsed)
            continue
        filename, annotation = parsed
        beside = [p for p in (_stem(source) + ext for ext in IMAGE_EXTENSIONS) if p in image_set]
        beside += [p for p in images if _stem(p) == _stem(source) and p not in beside]
        if beside:
            path = beside[0]
        elif filename:
            path = _resolve_image(filename, posixpath.dirname(source), images, by_name)
        else:
            same = by_stem.get(posixpath.basename(_stem(source)), [])
            path = same[0] if len(same) == 1 else None
        if path is None:
            records.append(
                Record(
                    source,
                    spec.ANNOTATION_WITHOUT_IMAGE,
                    f"no image {filename or posixpath.basename(_stem(source)) + '.*'} for it",
                )
            )
            continue
        vocabulary |= {b.category for b in annotation.boxes if b.category}
        _merge(found, path, annotation)
    used = [name for name in VOC_NAMES_FILES if name in paths][:1] if names is not None else []
    return AnnotationSet("voc", sorted(vocabulary), found, [*used, *sources], records, False)


def parse_voc(
    data: bytes, source: str, names: list[str] | None = None
) -> tuple[str | None, ImageAnnotation] | Record:
    """One Pascal VOC file: (its ``filename``, the annotation), or a Record when it does not parse.

    Parsed with defusedxml, with DTDs, entities and external references forbidden. Coordinates are
    used as written (pixels from the top-left corner), as the TF Object Detection API does.
    ``names``: the known classes (classes.txt); None accepts every name.
    """
    import defusedxml.ElementTree as ElementTree
    from defusedxml import DefusedXmlException

    try:
        root = ElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as e:
        return Record(source, spec.MALFORMED_ANNOTATIONS, f"unsafe XML refused: {_describe(e)}")
    except Exception as e:  # noqa: BLE001 - ParseError and whatever else bad bytes provoke.
        return Record(source, spec.MALFORMED_ANNOTATIONS, f"not well-formed XML: {_describe(e)}")
    if root.tag != "annotation":
        return Record(source, spec.MALFORMED_ANNOTATIONS, f"root element is <{root.tag}>, not <annotation>")
    filename = (root.findtext("filename") or "").strip() or None
    size = None
    try:
        width, height = int(root.findtext("size/width") or 0), int(root.findtext("size/height") or 0)
        size = (width, height) if width > 0 and height > 0 else None
    except ValueError:
        pass
    boxes, issues = [], []
    for i, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        where = f"{source}: object {i + 1}" + (f" ({name})" if name else "")
        try:
            values = [float(obj.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax")]
            if not all(math.isfinite(v) for v in values):
                raise ValueError("not finite")
        except (TypeError, ValueError):
            issues.append(Issue(spec.BAD_ANNOTATION, f"{where}: bndbox needs numeric xmin, ymin, xmax, ymax"))
            continue
        if not name:
            issues.append(Issue(spec.UNKNOWN_CATEGORY, f"{where}: object has no name"))
            continue
        if names is not None and name not in names:
            issues.append(Issue(spec.UNKNOWN_CATEGORY, f"{where}: {name!r} is not in the class list"))
            continue
        boxes.append(RawBox(*values, name, where))
    return filename, ImageAnnotation(tuple(boxes), tuple(issues), size, source)


def _optional_names(paths: list[str], files: tuple[str, ...], read: Reader) -> list[str] | None:
    for name in files:
        if name in paths:
            return _names_from(name, read(name))
    return None


def _names_from(path: str, data: bytes) -> list[str]:
    """Class names from classes.txt / obj.names (a name a line) or data.yaml (``names``)."""
    text = data.decode("utf-8-sig", "replace")
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML ({e})") from None
        names = loaded.get("names") if isinstance(loaded, dict) else None
        if isinstance(names, dict):
            try:
                return [str(names[k]) for k in sorted(names, key=int)]
            except (TypeError, ValueError):
                raise ValueError(f"{path}: names must be a list or map class ids to names") from None
        if not isinstance(names, list):
            raise ValueError(f"{path}: has no 'names' list")
        return [str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------
# YOLO txt.


def _find_yolo(sources: list[str], paths: list[str], images: list[str], read: Reader) -> AnnotationSet:
    names_file = next(
        (
            p
            for name in YOLO_NAMES_FILES
            for p in paths
            if posixpath.basename(p) == name and p.count("/") <= 1
        ),
        None,
    )
    if names_file is None:
        raise ValueError(
            "YOLO annotations need their class names: a classes.txt (one a line) or a data.yaml "
            "with 'names' at the image root"
        )
    names = _names_from(names_file, read(names_file))
    image_by_stem = {_stem(p): p for p in images}
    found: dict[str, ImageAnnotation] = {}
    records: list[Record] = []
    for source in sources:
        stem = _stem(source)
        # Beside the image, or labels/... mirroring images/... (the YOLO dataset layout).
        candidates = [stem, _swap_folder(stem, "labels", "images")]
        path = next((image_by_stem[c] for c in candidates if c in image_by_stem), None)
        if path is None:
            records.append(Record(source, spec.ANNOTATION_WITHOUT_IMAGE, "no image with this name beside it"))
            continue
        try:
            data = read(source)
        except Exception as e:  # noqa: BLE001
            records.append(Record(source, spec.MALFORMED_ANNOTATIONS, f"cannot read: {_describe(e)}"))
            continue
        _merge(found, path, parse_yolo(data, source, names))
    return AnnotationSet("yolo", sorted(set(names)), found, [names_file, *sources], records, True)


def _swap_folder(path: str, old: str, new: str) -> str:
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part == old:
            return "/".join(parts[:i] + [new] + parts[i + 1 :])
    return path


def parse_yolo(data: bytes, source: str, names: list[str]) -> ImageAnnotation:
    """One YOLO label file: ``class cx cy w h`` a line, fractions of the image. Bad lines are issues."""
    boxes, issues = [], []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ImageAnnotation((), (Issue(spec.BAD_ANNOTATION, f"{source}: not UTF-8 text"),), None, source)
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        where = f"{source}:{number}"
        if not fields:
            continue
        if len(fields) != 5:
            issues.append(
                Issue(spec.BAD_ANNOTATION, f"{where}: {len(fields)} fields, expected 5 (class cx cy w h)")
            )
            continue
        try:
            values = [float(v) for v in fields[1:]]
            if not all(math.isfinite(v) for v in values):
                raise ValueError
        except ValueError:
            issues.append(
                Issue(spec.BAD_ANNOTATION, f"{where}: {_short(line.strip())!r} has a non-numeric value")
            )
            continue
        if not fields[0].isdigit():
            issues.append(Issue(spec.BAD_ANNOTATION, f"{where}: class {fields[0]!r} is not a class index"))
            continue
        index = int(fields[0])
        if index >= len(names):
            issues.append(
                Issue(spec.UNKNOWN_CATEGORY, f"{where}: class {index} is not in the {len(names)} names")
            )
            continue
        cx, cy, w, h = values
        if w <= 0 or h <= 0 or not (-0.5 <= cx <= 1.5 and -0.5 <= cy <= 1.5) or w > 1.5 or h > 1.5:
            kind = spec.DEGENERATE_BOX if w <= 0 or h <= 0 else spec.BOX_OUTSIDE_IMAGE
            issues.append(
                Issue(kind, f"{where}: {' '.join(fields[1:])} is not a box inside the image (fractions 0-1)")
            )
            continue
        boxes.append(
            RawBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, names[index], where, normalised=True)
        )
    return ImageAnnotation(tuple(boxes), tuple(issues), None, source)


# ----------------------------------------------------------------------------------------------
# Cleaning one image's boxes.


def orient_box(box: tuple[float, float, float, float], orientation: int) -> tuple[float, float, float, float]:
    """A normalised (xmin, ymin, xmax, ymax) box on the stored pixels, moved as Exif ``orientation``
    moves the pixels (imaging._apply_orientation's transposes), so it covers the same object."""
    x0, y0, x1, y1 = box
    points = {
        1: lambda u, v: (u, v),
        2: lambda u, v: (1 - u, v),  # FLIP_LEFT_RIGHT
        3: lambda u, v: (1 - u, 1 - v),  # ROTATE_180
        4: lambda u, v: (u, 1 - v),  # FLIP_TOP_BOTTOM
        5: lambda u, v: (v, u),  # TRANSPOSE
        6: lambda u, v: (1 - v, u),  # ROTATE_270 (90 degrees clockwise)
        7: lambda u, v: (1 - v, 1 - u),  # TRANSVERSE
        8: lambda u, v: (v, 1 - u),  # ROTATE_90 (90 degrees anticlockwise)
    }[orientation]
    (a, b), (c, d) = points(x0, y0), points(x1, y1)
    return min(a, c), min(b, d), max(a, c), max(b, d)


def iou(a: Box, b: Box) -> float:
    w = min(a.xmax, b.xmax) - max(a.xmin, b.xmin)
    h = min(a.ymax, b.ymax) - max(a.ymin, b.ymin)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a.xmax - a.xmin) * (a.ymax - a.ymin) + (b.xmax - b.xmin) * (b.ymax - b.ymin) - inter
    return inter / union if union > 0 else 0.0


def clean_boxes(
    annotation: ImageAnnotation,
    *,
    width: int,
    height: int,
    orientation: int,
    vocabulary: list[str],
    options: AnnotationOptions,
) -> tuple[list[Box], list[Issue]]:
    """One image's boxes, checked and normalised to the ingested (displayed) image.

    ``width``/``height`` are the ingested image's (after Exif orientation); boxes drawn on the
    stored pixels (``options.orientation == "stored"``) are checked against the stored size and
    then moved with the pixels. Returns the kept boxes and every issue (parse-time ones first).
    """
    issues = list(annotation.issues)
    stored = options.orientation == "stored"
    frame_w, frame_h = (height, width) if stored and orientation in (5, 6, 7, 8) else (width, height)
    if annotation.size and annotation.size != (frame_w, frame_h):
        hint = ""
        if annotation.size == (frame_h, frame_w):
            other = "displayed" if stored else "stored"
            hint = f"; width and height swapped: drawn on the {other} image? (ingest.annotations.orientation)"
        issues.append(
            Issue(
                spec.SIZE_MISMATCH,
                f"{annotation.source} says {annotation.size[0]}x{annotation.size[1]}, the image is "
                f"{frame_w}x{frame_h} ({options.orientation} orientation){hint}",
            )
        )
    known = set(vocabulary)
    kept: list[Box] = []
    for raw in annotation.boxes:
        if raw.category not in known:
            issues.append(
                Issue(spec.UNKNOWN_CATEGORY, f"{raw.source}: {raw.category!r} is not a known category")
            )
            continue
        if raw.crowd:
            issues.append(
                Issue(spec.CROWD_REGION, f"{raw.source}: iscrowd region ({raw.category}) is not one object")
            )
            continue
        scale_x, scale_y = (frame_w, frame_h) if raw.normalised else (1.0, 1.0)
        x0, y0, x1, y1 = raw.xmin * scale_x, raw.ymin * scale_y, raw.xmax * scale_x, raw.ymax * scale_y
        label = f"{raw.source} ({raw.category}) [{x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}]"
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            issues.append(Issue(spec.DEGENERATE_BOX, f"{label}: width {x1 - x0:.1f}, height {y1 - y0:.1f}"))
            continue
        tol_x, tol_y = max(1.0, options.clip_tolerance * frame_w), max(1.0, options.clip_tolerance * frame_h)
        over = max(-x0 / tol_x, -y0 / tol_y, (x1 - frame_w) / tol_x, (y1 - frame_h) / tol_y)
        if over > 1:
            issues.append(
                Issue(
                    spec.BOX_OUTSIDE_IMAGE,
                    f"{label}: beyond the {frame_w}x{frame_h} image by more than the clip tolerance "
                    f"({tol_x:.1f}x{tol_y:.1f} px)",
                )
            )
            continue
        if over > 0:
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(frame_w), x1), min(float(frame_h), y1)
            issues.append(Issue(spec.BOX_CLIPPED, f"{label}: clipped to the {frame_w}x{frame_h} image"))
        if x1 - x0 < options.min_size or y1 - y0 < options.min_size:
            issues.append(
                Issue(
                    spec.DEGENERATE_BOX,
                    f"{label}: {x1 - x0:.1f}x{y1 - y0:.1f} px, under min_size {options.min_size}",
                )
            )
            continue
        box = (x0 / frame_w, y0 / frame_h, x1 / frame_w, y1 / frame_h)
        if stored:
            box = orient_box(box, orientation)
        candidate = Box(*box, raw.category)
        twin = next(
            (
                k
                for k in kept
                if k.category == candidate.category and iou(k, candidate) >= options.duplicate_iou
            ),
            None,
        )
        if twin is not None:
            issues.append(
                Issue(
                    spec.DUPLICATE_BOX,
                    f"{label}: IoU {iou(twin, candidate):.2f} with an earlier {twin.category} box",
                )
            )
            continue
        kept.append(candidate)
    return kept, issues
