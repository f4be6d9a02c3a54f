"""cvpipe: a TFX/Kubeflow pipeline for image models. Install with the pins in constraints.txt."""

from setuptools import find_packages, setup

setup(
    name="cvpipe",
    version="0.1.0",
    description="TFX component pipeline for image models: ingest, validate, train, push.",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["components", "components.*", "pipelines", "pipelines.*",
                                    "schemas", "schemas.*"]),
    package_data={"pipelines": ["configs/*.yaml"], "schemas": ["*.pbtxt", "*.md"],
                  "components": ["*/README.md"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "dill",
        "keras-tuner==1.3.5",
        "tflite-support==0.4.4",
        "defusedxml",  # Annotation XML (Pascal VOC) is untrusted input.
        "pillow",
        "pillow-heif",  # HEIC/HEIF photos from phones.
        "pyarrow",
        "pycocotools",  # COCO instances JSON (detection annotations).
        "pyyaml",
        "scikit-learn",
    ],
    extras_require={"test": ["pytest", "ruff", "playwright", "kubernetes-validate"]},
    entry_points={"console_scripts": ["cvpipe=pipelines.cli:entry"]},
)
