"""Names shared by InputFingerprint, its executor, ImageExampleGen's wiring and the tests."""

from components.image_example_gen import spec as example_spec

INPUT_BASE_KEY = example_spec.INPUT_BASE_KEY
MANIFEST_KEY = example_spec.MANIFEST_KEY
SPAN_KEY = example_spec.SPAN_KEY
FINGERPRINT_KEY = "fingerprint"  # Output: a String artifact (on Kubeflow, an output parameter).
