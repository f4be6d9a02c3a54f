"""The container entrypoint of every task of the compiled Kubeflow pipeline.

    python -m pipelines.kfp_entrypoint --executor_class_path ... --json_serialized_invocation_args '{...}'
        --json_serialized_inputs_spec_args '{...}' [beam args]

It is TFX's own V2 entrypoint (``kubeflow_v2_run_executor``), without TFX's sdist when the task's
Beam runner is local (pipelines/beam_local.py), and with three repairs for open-source
Kubeflow Pipelines, which TFX 1.16 was only tried against Vertex AI:

- KFP's backend hands a task its upstream artifacts with an empty type (``instanceSchema: ""``,
  it does not keep the schema of stored outputs), and TFX's entrypoint finds an artifact's Python
  class from that type (tensorflow/tfx#7768). The type is restored from the component's own input
  definitions, which the compiled arguments carry (``--json_serialized_inputs_spec_args``).
- ``system.HTML``, ``system.Markdown`` and ``system.Metrics`` (what the KFP UI renders) are no
  Python class paths: they map to ``components.kfp_ui``'s classes.
- The UI reads an HTML or Markdown artifact from the object at its URI, so after the executor
  has written the file, the output artifact's URI is moved onto it (``kfp_ui.FILE_KEY``).
"""

from __future__ import annotations

import json
import sys

import components  # noqa: F401 - sets TF_USE_LEGACY_KERAS before TensorFlow is imported.

INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"


def _flag_value(argv: list[str], flag: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None


def _set_flag_value(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    for index, arg in enumerate(out):
        if arg == flag and index + 1 < len(out):
            out[index + 1] = value
            return out
        if arg.startswith(flag + "="):
            out[index] = f"{flag}={value}"
            return out
    raise ValueError(f"{flag} is missing from the task's arguments")


def restore_input_types(executor_input: dict, inputs_spec: dict) -> dict:
    """Gives every input artifact without a usable type the type its component declares."""
    declared = inputs_spec.get("artifacts", {})
    for key, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
        artifact_type = declared.get(key, {}).get("artifactType")
        if not artifact_type:
            continue
        for artifact in artifact_list.get("artifacts", []):
            current = artifact.get("type") or {}
            if not current.get("schemaTitle") and not (current.get("instanceSchema") or "").strip():
                artifact["type"] = artifact_type
    return executor_input


def point_outputs_at_files(executor_input: dict) -> None:
    """Moves the URI of every written HTML/Markdown output onto its file, in executor_output.json."""
    import tensorflow as tf

    from components import kfp_ui

    output_file = executor_input.get("outputs", {}).get("outputFile")
    if not output_file or not tf.io.gfile.exists(output_file):
        return
    with tf.io.gfile.GFile(output_file) as f:
        executor_output = json.load(f)
    changed = False
    for artifact_list in executor_output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            name = (artifact.get("metadata") or {}).get(kfp_ui.FILE_KEY)
            if isinstance(name, str) and name and not artifact["uri"].endswith("/" + name):
                artifact["uri"] = f"{artifact['uri'].rstrip('/')}/{name}"
                changed = True
    if changed:
        with tf.io.gfile.GFile(output_file, "w") as f:
            json.dump(executor_output, f)


def main(argv: list[str]) -> None:
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    from components import kfp_ui
    from pipelines import beam_local

    compiler_utils.TITLE_TO_CLASS_PATH.update(kfp_ui.TITLE_TO_CLASS_PATH)
    invocation = json.loads(_flag_value(argv, INVOCATION_FLAG) or "{}")
    inputs_spec = json.loads(_flag_value(argv, INPUTS_SPEC_FLAG) or "{}")
    restore_input_types(invocation, inputs_spec)
    argv = _set_flag_value(argv, INVOCATION_FLAG, json.dumps(invocation))
    with beam_local.without_tfx_sdist(argv):  # A DirectRunner task needs no TFX sdist either.
        kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags([sys.argv[0], *argv]))
    point_outputs_at_files(invocation)


if __name__ == "__main__":
    main(sys.argv[1:])
