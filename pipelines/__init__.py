"""cvpipe pipeline factory, runners and CLI.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported (see components/__init__.py).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's oneDNN kernels stay on, as TensorFlow ships them: README "Speed: what was found" tells
# of the tuning-worker crash that once turned them off and how trial workers contain one now.
