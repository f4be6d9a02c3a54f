"""EdgePusher: publishes the TFLite artefact beside the serving model it was made from."""
