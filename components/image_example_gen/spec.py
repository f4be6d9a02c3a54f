"""Names shared by the ImageExampleGen component, its executor, the catalog and the tests.

One module holds every key so the executor, the pipeline factory and the tests cannot drift apart.
"""

# Component parameter and channel keys.
INPUT_BASE_KEY = "input_base"
MANIFEST_KEY = "manifest"
SPAN_KEY = "span"
OPTIONS_KEY = "ingest_options"
INPUT_FINGERPRINT_KEY = "input_fingerprint"
EXAMPLES_KEY = "examples"
CATALOG_KEY = "catalog"

# Files written by the ingestion.
CATALOG_FILE = "catalog.parquet"
SUMMARY_FILE = "summary.json"
LABELS_FILE = "labels.txt"
TFRECORD_PREFIX = "data_tfrecord"
TFRECORD_SUFFIX = ".gz"

# tf.train.Example feature names (documented in schemas/README.md).
IMAGE = "image"
LABEL = "label"
LABEL_INDEX = "label_index"
WIDTH = "width"
HEIGHT = "height"
CHANNELS = "channels"
FORMAT = "format"
ORIGINAL_FORMAT = "original_format"
PATH = "path"
SHA256 = "sha256"
BYTE_SIZE = "byte_size"
CAMERA_MAKE = "camera_make"
CAMERA_MODEL = "camera_model"
CAPTURE_DATETIME = "capture_datetime"
ORIENTATION = "orientation"
GPS_LATITUDE = "gps_latitude"
GPS_LONGITUDE = "gps_longitude"
GPS_ALTITUDE = "gps_altitude"

# Pixel properties (components/image_example_gen/pixels.py): example features and catalog columns.
BRIGHTNESS = "brightness"
CONTRAST = "contrast"
SHARPNESS = "sharpness"
COLOURFULNESS = "colourfulness"
ENTROPY = "entropy"
ASPECT_RATIO = "aspect_ratio"
PHASH = "phash"
PIXEL_PROPERTIES = (BRIGHTNESS, CONTRAST, SHARPNESS, COLOURFULNESS, ENTROPY, ASPECT_RATIO)

# Object detection (task: detection): the TF Object Detection API's tf.Example keys. Boxes are
# normalised to [0, 1] of the stored image; class/label is 0-based, the line of labels.txt.
OBJECT_XMIN = "image/object/bbox/xmin"
OBJECT_YMIN = "image/object/bbox/ymin"
OBJECT_XMAX = "image/object/bbox/xmax"
OBJECT_YMAX = "image/object/bbox/ymax"
OBJECT_LABEL = "image/object/class/label"
OBJECT_TEXT = "image/object/class/text"
OBJECT_FEATURES = (OBJECT_XMIN, OBJECT_YMIN, OBJECT_XMAX, OBJECT_YMAX, OBJECT_LABEL, OBJECT_TEXT)

TASKS = ("classification", "detection")

BUILTIN_FEATURES = (
    IMAGE,
    LABEL,
    LABEL_INDEX,
    WIDTH,
    HEIGHT,
    CHANNELS,
    FORMAT,
    ORIGINAL_FORMAT,
    PATH,
    SHA256,
    BYTE_SIZE,
    CAMERA_MAKE,
    CAMERA_MODEL,
    CAPTURE_DATETIME,
    ORIENTATION,
    GPS_LATITUDE,
    GPS_LONGITUDE,
    GPS_ALTITUDE,
    *PIXEL_PROPERTIES,
    PHASH,
)

# Catalog-only columns.
STATUS = "status"
REASON = "reason"
DETAIL = "detail"
SPLIT = "split"
SPAN = "span"
DUPLICATE_OF = "duplicate_of"
TRANSCODED = "transcoded"

# Per-image flags (catalog-only): a boolean column each, the reasons in FLAG_REASONS.
DARK = "dark"
LIGHT = "light"
BLURRY = "blurry"
LOW_INFORMATION = "low_information"
ODD_ASPECT_RATIO = "odd_aspect_ratio"
GRAYSCALE = "grayscale"
FLAGS = (DARK, LIGHT, BLURRY, LOW_INFORMATION, ODD_ASPECT_RATIO, GRAYSCALE)
NEAR_DUPLICATE_OF = "near_duplicate_of"  # The closest earlier path within the pHash distance.
NEAR_DUPLICATE_DISTANCE = "near_duplicate_distance"
FLAG_REASONS = "flag_reasons"  # "dark: ...; blurry: ..." for every flag set, near duplicates too.
FLAG_COLUMNS = (*FLAGS, NEAR_DUPLICATE_OF, NEAR_DUPLICATE_DISTANCE, FLAG_REASONS)

# Detection catalog columns: kept boxes, their classes (one per box, in example order) and the
# problems with the image's annotations ("reason: detail", one per dropped or repaired box).
BOX_COUNT = "box_count"
BOX_CLASSES = "box_classes"
BOX_ISSUES = "box_issues"
DETECTION_COLUMNS = (BOX_COUNT, BOX_CLASSES, BOX_ISSUES)

# Status values: every input file ends in exactly one of them.
INGESTED = "ingested"
QUARANTINED = "quarantined"
DUPLICATE = "duplicate"

# Quarantine reasons.
EMPTY_FILE = "empty_file"
NOT_AN_IMAGE = "not_an_image"
UNSUPPORTED_FORMAT = "unsupported_format"
TRUNCATED_IMAGE = "truncated_image"
CORRUPT_IMAGE = "corrupt_image"
TOO_MANY_PIXELS = "too_many_pixels"
TOO_SMALL = "too_small"
MISSING_FILE = "missing_file"
NOT_A_FILE = "not_a_file"
UNREADABLE_FILE = "unreadable_file"
PATH_ESCAPES_ROOT = "path_escapes_root"
SYMLINK_ESCAPES_ROOT = "symlink_escapes_root"
MISSING_LABEL = "missing_label"
BAD_MANIFEST_ROW = "bad_manifest_row"
FILE_CHANGED = "file_changed_during_ingestion"
UNKNOWN_SPLIT = "unknown_split"
# Detection: inputs that are not ingestible images with annotations.
MALFORMED_ANNOTATIONS = "malformed_annotations"  # An annotation file (or entry) that does not parse.
ANNOTATION_WITHOUT_IMAGE = "annotation_without_image"  # Annotations of an image that is not there.
UNANNOTATED_IMAGE = "unannotated_image"  # COCO/VOC: an image no annotation file covers.

# Detection: box issues (catalog box_issues, summary objects.box_issues). The image keeps its other
# boxes; a clipped box is kept (repaired), the others are dropped.
BOX_CLIPPED = "box_clipped"
BOX_OUTSIDE_IMAGE = "box_outside_image"
DEGENERATE_BOX = "degenerate_box"
DUPLICATE_BOX = "duplicate_box"
UNKNOWN_CATEGORY = "unknown_category"
BAD_ANNOTATION = "bad_annotation"
CROWD_REGION = "crowd_region"
SIZE_MISMATCH = "size_mismatch"  # Kept: the declared size differs (a hint of the wrong orientation).

DEFAULT_SPLITS = (("train", 80), ("eval", 10), ("test", 10))


# The artifact type's name, read without TFX; its class is in components/artifacts.py.
IMAGE_CATALOG_TYPE = "components.ImageCatalog"  # Also a class path: see components/__init__.py.


def __getattr__(name: str):
    """``ImageCatalog``, loaded from components/artifacts.py (and so TFX) on first use."""
    if name == "ImageCatalog":
        from components.artifacts import ImageCatalog

        return ImageCatalog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
