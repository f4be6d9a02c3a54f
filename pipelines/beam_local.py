"""Beam on one machine: what the DirectRunner needs, and what it does not.

- **No TFX sdist.** Before every Beam component runs, TFX packages its own installation (48 MB of
  files copied into a new system temp directory, then ``setup.py sdist``) and adds the archive as
  ``--extra_package``, so that remote workers (Dataflow, Flink) can import TFX. DirectRunner
  workers are this machine's processes with this Python environment and never read the archive:
  the build cost 5-8 s per component here and left its copy behind in the temp directory each
  time. :func:`without_tfx_sdist` skips it while a local-runner pipeline runs.
- **Small inputs in one process.** ``--direct_running_mode=multi_processing`` starts one worker
  process per core for each Beam component, and each imports TensorFlow and TFX first (10-20 s
  here). Below ``beam.in_process_below`` input files that start-up costs more than the second
  core gives back, so :func:`local_args` runs them ``in_memory``.

    args = local_args(config.beam.args, file_count=600, in_process_below=2000)
    with without_tfx_sdist(args):
        BeamDagRunner().run(pipeline)
"""

from __future__ import annotations

import contextlib
from typing import Iterator

LOCAL_RUNNERS = {"directrunner", "direct", "prismrunner", "prism"}
RUNNING_MODE = "--direct_running_mode"


def flag_value(args: list[str], flag: str) -> str | None:
    """The last value of ``flag`` (``--flag=value`` or ``--flag value``) in Beam's arguments."""
    found = None
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            found = arg[len(flag) + 1 :]
        elif arg == flag and index + 1 < len(args):
            found = args[index + 1]
    return found


def is_local(args: list[str]) -> bool:
    """True when the arguments run Beam on this machine (no runner named, or a direct one)."""
    runner = flag_value(args, "--runner")
    return runner is None or runner.lower() in LOCAL_RUNNERS


def local_args(args: list[str], *, file_count: int, in_process_below: int) -> list[str]:
    """``args``, with multi-process DirectRunner mode switched to in_memory for small inputs."""
    if not is_local(args) or file_count >= in_process_below:
        return list(args)
    if flag_value(args, RUNNING_MODE) != "multi_processing":
        return list(args)
    return [*args, f"{RUNNING_MODE}=in_memory"]  # The last value of a flag wins.


@contextlib.contextmanager
def without_tfx_sdist(args: list[str]) -> Iterator[None]:
    """While it is open, TFX's Beam components do not package TFX when ``args`` are local."""
    if not is_local(args):
        yield
        return
    from tfx.utils import dependency_utils

    build = dependency_utils.make_beam_dependency_flags
    dependency_utils.make_beam_dependency_flags = list  # The arguments, unchanged.
    try:
        yield
    finally:
        dependency_utils.make_beam_dependency_flags = build
