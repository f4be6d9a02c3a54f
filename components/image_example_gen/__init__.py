"""ImageExampleGen: a TFX ExampleGen for folders of camera images (see README.md)."""
