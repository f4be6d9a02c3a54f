"""cvpipe's custom TFX components.

TensorFlow 2.16 maps ``tf.keras`` to Keras 3 unless TF_USE_LEGACY_KERAS is set before TensorFlow is
first imported; multi-worker training and keras-tuner 1.3.5 need tf-keras (Keras 2). Every cvpipe
entry point imports this package (or ``pipelines``) first, so the choice is made here once.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's oneDNN kernels stay on, as TensorFlow ships them: README "Speed: what was found" tells
# of the tuning-worker crash that once turned them off and how trial workers contain one now.

# cvpipe's custom artifact types, importable as ``components.<TypeName>``. Their TYPE_NAMEs are
# "components.<TypeName>": TFX's Kubeflow V2 compiler writes TYPE_NAME as the artifact's schema
# title, and its container entrypoint imports that title as a Python class path. Loaded lazily so
# that importing a component module does not pull in every other one.
_ARTIFACT_TYPES = {
    "ImageCatalog": "components.artifacts",
    "DataCheckResults": "components.artifacts",
    "ValidationReport": "components.artifacts",
    "TFLiteModel": "components.artifacts",
    "ModelReview": "components.artifacts",
}


def __getattr__(name: str):
    if name in _ARTIFACT_TYPES:
        import importlib

        return getattr(importlib.import_module(_ARTIFACT_TYPES[name]), name)
    raise AttributeError(f"module 'components' has no attribute {name!r}")
