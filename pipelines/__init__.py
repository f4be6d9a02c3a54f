"""cvpipe pipeline factory, runners and CLI.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported (see components/__init__.py).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
