"""DataChecks and DataGate: image-aware checks, drift across spans, and the gate before training."""
