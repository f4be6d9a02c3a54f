"""Object detection (``task: detection``): a single-stage detector on the classifier's backbone.

- ``boxes``: anchors (center-size, normalised), the SSD box coder and target assignment.
- ``network``: ``DetectorParams``, the network (backbone from ``model.py``, a small FPN, one anchor
  per cell and level) and its loss.
- ``data``: detection TFRecords -> decoded images, padded boxes, box-aware augmentation, targets.
- ``training``: ``DetectionTrainSpec`` and ``train`` (like ``image_model.training``).
- ``export``: the serving SavedModel (NMS inside, TF Object Detection API outputs).
- ``evaluation``: COCO mAP of a SavedModel on TFRecords (pycocotools).

README.md in this folder describes the design and how the head maps onto TFLite's
``TFLite_Detection_PostProcess`` op.
"""
