"""ServingPusher: atomic TF Serving push with a manifest, only for blessed models."""
