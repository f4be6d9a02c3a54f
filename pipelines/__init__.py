"""cvpipe pipeline factory, runners and CLI.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported (see components/__init__.py).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TF 2.16's oneDNN kernels corrupt the heap on these CPUs (AVX-512/AMX) once a process has trained
# a few models in a row (a keras-tuner worker segfaulted on its third trial; with this off, eight
# trials ran clean). Off by default; set TF_ENABLE_ONEDNN_OPTS=1 to opt back in.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
