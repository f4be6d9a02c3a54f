"""Reading TFDV's outputs back: the anomalies an ExampleValidator run wrote."""

from __future__ import annotations

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2


def read_anomalies(anomalies_uri: str) -> dict[str, list[tuple[str, str]]]:
    """Split name -> [(feature, description)] from an ExampleValidator anomalies artifact."""
    found: dict[str, list[tuple[str, str]]] = {}
    for entry in sorted(os.listdir(anomalies_uri)):
        if not entry.startswith("Split-"):
            continue
        path = os.path.join(anomalies_uri, entry, "SchemaDiff.pb")
        if not os.path.exists(path):
            continue
        anomalies = anomalies_pb2.Anomalies()
        with open(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        found[entry[len("Split-") :]] = [
            (feature, info.description or info.short_description)
            for feature, info in sorted(anomalies.anomaly_info.items())
        ]
    return found
