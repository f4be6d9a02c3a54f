"""Classify camera images on the device with only a TFLite runtime: no TensorFlow.

Reads the input size, pixel type, normalisation and labels from the model's own metadata, so the
only thing the device needs is the .tflite file cvpipe pushed to OUTPUT/edge/<model>/<version>/.

    pip install -r deployment/edge/requirements.txt
    python deployment/edge/classify.py model_int8.tflite photo.jpg [photo2.jpg ...] [--top 3]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from PIL import Image, ImageOps

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # Older devices: the tflite-runtime wheel.
    from tflite_runtime.interpreter import Interpreter
from tflite_support import metadata  # Flatbuffer metadata reader; pulls in no TensorFlow.


def read_model_metadata(model_path: str) -> tuple[list[float], list[float], list[str]]:
    """(norm mean, norm std, labels) from the TFLite metadata and its packed label file."""
    displayer = metadata.MetadataDisplayer.with_model_file(model_path)
    meta = json.loads(displayer.get_metadata_json())
    mean, std = [0.0], [1.0]
    for unit in meta["subgraph_metadata"][0]["input_tensor_metadata"][0].get("process_units", []):
        if unit.get("options_type") == "NormalizationOptions":
            mean, std = unit["options"]["mean"], unit["options"]["std"]
    files = displayer.get_packed_associated_file_list()
    labels = displayer.get_associated_file_buffer(files[0]).decode().split("\n") if files else []
    return mean, std, [label for label in labels if label]


class EdgeClassifier:
    def __init__(self, model_path: str, threads: int = 1):
        self.mean, self.std, self.labels = read_model_metadata(model_path)
        self.interpreter = Interpreter(model_path=model_path, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        _, self.height, self.width, self.channels = self.input["shape"]

    def preprocess(self, path: str) -> np.ndarray:
        """What the camera pipeline does: decode, apply Exif orientation, resize, normalise."""
        image = ImageOps.exif_transpose(Image.open(path))
        image = image.convert("RGB" if self.channels == 3 else "L")
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32).reshape(self.height, self.width, self.channels)
        if self.input["dtype"] == np.uint8:
            return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)  # Quantised input: raw pixels.
        return ((pixels - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def classify(self, path: str) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], self.preprocess(path)[np.newaxis])
        self.interpreter.invoke()
        scores = self.interpreter.get_tensor(self.output["index"])[0]
        if self.output["dtype"] == np.uint8:
            scale, zero_point = self.output["quantization"]
            scores = (scores.astype(np.float32) - zero_point) * scale
        return scores


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--top", type=int, default=1)
    args = parser.parse_args(argv)
    classifier = EdgeClassifier(args.model)
    for path in args.images:
        scores = classifier.classify(path)
        best = np.argsort(scores)[::-1][: args.top]
        print(path + "\t" + "\t".join(f"{classifier.labels[i]}\t{scores[i]:.4f}" for i in best))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
