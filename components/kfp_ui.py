"""Artifact types the Kubeflow Pipelines UI renders: an HTML page, Markdown text, a metrics table.

KFP's v2 UI picks artifacts by type name (``system.HTML``, ``system.Markdown``, ``system.Metrics``)
and needs a ``display_name``. For HTML and Markdown it fetches the single object at the artifact's
URI, so those artifacts point at the file itself (``FILE_KEY`` names it; the Kubeflow entrypoint,
``pipelines/kfp_entrypoint.py``, moves the URI onto it); a metrics table is the artifact's custom
properties. Locally they are ordinary artifacts in ML Metadata.
"""

from tfx import types

FILE_KEY = "file"  # Custom property: the file, inside the artifact directory, the UI shows.
DISPLAY_NAME_KEY = "display_name"  # Custom property: the artifact's title in the UI.


class HTMLPage(types.Artifact):
    TYPE_NAME = "system.HTML"


class MarkdownText(types.Artifact):
    TYPE_NAME = "system.Markdown"


class MetricsTable(types.Artifact):
    TYPE_NAME = "system.Metrics"


# Schema title -> Python class path, for TFX's V2 entrypoint (which imports a custom title as a
# class path, and "system" is no Python module).
TITLE_TO_CLASS_PATH = {
    cls.TYPE_NAME: f"{__name__}.{cls.__name__}" for cls in (HTMLPage, MarkdownText, MetricsTable)
}
