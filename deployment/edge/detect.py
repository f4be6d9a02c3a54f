"""Detect objects in camera images on the device with only a TFLite runtime: no TensorFlow.

Reads the labels (the label file packed into the model) and the input normalisation from the
model's own metadata, and finds the outputs by their signature names, so the only thing the
device needs is the detector's .tflite file cvpipe pushed to OUTPUT/edge/<model>/<version>/.
Boxes are printed in pixels of the image as displayed (after its Exif orientation), as
left, top, right, bottom.

    pip install -r deployment/edge/requirements.txt
    python deployment/edge/detect.py model_int8.tflite photo.jpg [photo2.jpg ...] [--min-score 0.5]
    python deployment/edge/detect.py model_int8.tflite photo.jpg --json --annotate annotated/
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageOps

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # Older devices: the tflite-runtime wheel.
    from tflite_runtime.interpreter import Interpreter
from tflite_support import metadata  # Flatbuffer metadata reader; pulls in no TensorFlow.

SIGNATURE = "serving_default"
BOXES, CLASSES, SCORES, COUNT = "detection_boxes", "detection_classes", "detection_scores", "num_detections"
# The object detector metadata's output names (tflite-support's writer), for models without the
# signature: their metadata lists the outputs in the model's output order.
METADATA_OUTPUTS = {"location": BOXES, "category": CLASSES, "score": SCORES, "number of detections": COUNT}


def read_model_metadata(model_path: str) -> dict:
    """Normalisation, labels and output names from the TFLite metadata and its packed label file."""
    displayer = metadata.MetadataDisplayer.with_model_file(model_path)
    meta = json.loads(displayer.get_metadata_json())
    subgraph = meta["subgraph_metadata"][0]
    mean, std = [0.0], [1.0]
    for unit in subgraph["input_tensor_metadata"][0].get("process_units", []):
        if unit.get("options_type") == "NormalizationOptions":
            mean, std = unit["options"]["mean"], unit["options"]["std"]
    outputs = subgraph.get("output_tensor_metadata", [])
    label_files = [
        f["name"]
        for tensor in outputs
        for f in tensor.get("associated_files", [])
        if f.get("type") == "TENSOR_VALUE_LABELS"
    ] or displayer.get_packed_associated_file_list()
    text = displayer.get_associated_file_buffer(label_files[0]).decode() if label_files else ""
    return {
        "mean": mean,
        "std": std,
        "labels": [line for line in text.split("\n") if line],
        "output_names": [METADATA_OUTPUTS.get(tensor.get("name")) for tensor in outputs],
    }


class EdgeDetector:
    def __init__(self, model_path: str, threads: int = 1):
        info = read_model_metadata(model_path)
        self.mean, self.std, self.labels = info["mean"], info["std"], info["labels"]
        self.interpreter = Interpreter(model_path=model_path, num_threads=threads)
        signature = self.interpreter.get_signature_list().get(SIGNATURE, {})
        if {BOXES, CLASSES, SCORES, COUNT} <= set(signature.get("outputs", [])):
            # By name: the converter's output order is not the op's port order (TF 2.16 puts the
            # count first) and has changed between converter versions.
            self.runner = self.interpreter.get_signature_runner(SIGNATURE)
            (self.input_name, self.input), *_ = self.runner.get_input_details().items()
        elif set(info["output_names"]) == {BOXES, CLASSES, SCORES, COUNT}:
            self.runner, self.input_name = None, None
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            details = self.interpreter.get_output_details()
            self.outputs = {name: d["index"] for name, d in zip(info["output_names"], details)}
        else:
            raise ValueError(
                f"{model_path} is not an object detector: no {SIGNATURE} signature with "
                f"{BOXES}, {CLASSES}, {SCORES} and {COUNT}, nor object detector metadata"
            )
        _, self.height, self.width, self.channels = (int(v) for v in self.input["shape"])

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """What the camera pipeline does: colour mode, resize, normalise (the image is upright)."""
        image = image.convert("RGB" if self.channels == 3 else "L")
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32).reshape(self.height, self.width, self.channels)
        if self.input["dtype"] == np.uint8:
            return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)  # Quantised input: raw pixels.
        return ((pixels - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def _run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        if self.runner is not None:
            return self.runner(**{self.input_name: pixels[np.newaxis]})
        self.interpreter.set_tensor(self.input["index"], pixels[np.newaxis])
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(index) for name, index in self.outputs.items()}

    def detect(self, image: Image.Image, min_score: float = 0.0) -> list[dict]:
        """Detections on an upright image: label, class, score, box in its pixels (xmin, ymin,
        xmax, ymax), best first."""
        out = self._run(self.preprocess(image))
        count = int(out[COUNT].reshape(-1)[0])
        width, height = image.size
        found = []
        for box, cls, score in zip(out[BOXES][0, :count], out[CLASSES][0, :count], out[SCORES][0, :count]):
            if score < min_score:
                continue
            ymin, xmin, ymax, xmax = np.clip(box, 0.0, 1.0)  # The op does not clip.
            cls = int(cls)
            found.append(
                {
                    "label": self.labels[cls] if 0 <= cls < len(self.labels) else str(cls),
                    "class": cls,
                    "score": round(float(score), 4),
                    "box": [
                        round(float(xmin) * width, 1),
                        round(float(ymin) * height, 1),
                        round(float(xmax) * width, 1),
                        round(float(ymax) * height, 1),
                    ],
                }
            )
        return sorted(found, key=lambda d: -d["score"])


def open_upright(path: str) -> Image.Image:
    """The image as displayed: Exif orientation applied."""
    return ImageOps.exif_transpose(Image.open(path))


def annotate(image: Image.Image, detections: list[dict]) -> Image.Image:
    """A copy of ``image`` with each box outlined and labelled with its label and score."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    width = max(1, round(max(out.size) / 200))
    for d in detections:
        xmin, ymin, xmax, ymax = d["box"]
        draw.rectangle([xmin, ymin, xmax, ymax], outline=(255, 40, 40), width=width)
        text = f"{d['label']} {d['score']:.2f}"
        left, top, right, bottom = draw.textbbox((xmin, ymin), text)
        top_y = ymin - (bottom - top) - 2 if ymin - (bottom - top) - 2 >= 0 else ymin
        draw.rectangle(
            [xmin, top_y, xmin + (right - left) + 2, top_y + (bottom - top) + 2], fill=(255, 40, 40)
        )
        draw.text((xmin + 1, top_y), text, fill=(255, 255, 255))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--min-score", type=float, default=0.5, help="detections below it are not shown")
    parser.add_argument("--json", action="store_true", help="one JSON object per image (JSON Lines)")
    parser.add_argument("--annotate", metavar="DIR", help="write a copy of each image with its boxes here")
    args = parser.parse_args(argv)
    detector = EdgeDetector(args.model)
    if args.annotate:
        os.makedirs(args.annotate, exist_ok=True)
    failures = 0
    for path in args.images:
        try:
            image = open_upright(path)
            image.load()
        except OSError as e:
            failures += 1
            print(json.dumps({"image": path, "error": str(e)}) if args.json else f"{path}\terror: {e}")
            continue
        found = detector.detect(image, args.min_score)
        if args.json:
            print(
                json.dumps({"image": path, "width": image.width, "height": image.height, "detections": found})
            )
        elif not found:
            print(f"{path}\tno detections")
        for d in [] if args.json else found:
            box = ",".join(f"{v:.1f}" for v in d["box"])
            print(f"{path}\t{d['label']}\t{d['score']:.4f}\t{box}")
        if args.annotate:
            annotate(image, found).save(os.path.join(args.annotate, os.path.basename(path)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
