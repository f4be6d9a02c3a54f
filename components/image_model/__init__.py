"""The image model: network, input pipeline, export, and the TFX Trainer/Tuner module."""
