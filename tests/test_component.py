"""ImageExampleGen as a TFX component: construction and its executor on a small fixture."""

import json
import os

import pytest
from tfx.types import artifact_utils, standard_artifacts

from components.image_example_gen import spec
from components.image_example_gen.component import ImageExampleGen
from components.image_example_gen.executor import Executor
from components.image_example_gen.ingest import IngestOptions
from components.image_example_gen.spec import ImageCatalog
from tests.conftest import encode, gradient, write


def test_component_records_options_and_outputs():
    component = ImageExampleGen(input_base="data/span-{SPAN}")
    assert IngestOptions.from_json(component.exec_properties[spec.OPTIONS_KEY]) == IngestOptions()
    assert set(component.outputs) == {spec.EXAMPLES_KEY, spec.CATALOG_KEY}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"input_base": ""}, "input_base is required"),
    ],
)
def test_component_rejects_bad_arguments_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageExampleGen(**kwargs)


def test_a_negative_span_means_the_latest():
    # Kubeflow's span runtime parameter defaults to -1: the latest span, as None does locally.
    assert ImageExampleGen(input_base="x", span=-1).exec_properties[spec.SPAN_KEY] is None


def test_ingest_options_reject_duplicate_split_names():
    with pytest.raises(ValueError, match="unique"):
        IngestOptions(splits=(("train", 1), ("train", 2)))


def test_executor_ingests_the_latest_span_and_sets_artifact_properties(tmp_path):
    for span, count in ((1, 3), (2, 5)):
        for i in range(count):
            write(tmp_path / f"span-{span}" / "cat" / f"{i}.png", encode(gradient(20 + i, 20), "PNG"))
    write(tmp_path / "span-2" / "cat" / "bad.png", b"\x89PNG\r\n\x1a\nbroken")
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out" / "examples")
    catalog = ImageCatalog()
    catalog.uri = str(tmp_path / "out" / "catalog")
    options = IngestOptions(splits=(("train", 1), ("eval", 1)))
    Executor().Do(
        {},
        {spec.EXAMPLES_KEY: [examples], spec.CATALOG_KEY: [catalog]},
        {
            spec.INPUT_BASE_KEY: str(tmp_path / "span-{SPAN}"),
            spec.OPTIONS_KEY: options.to_json(),
            spec.INPUT_FINGERPRINT_KEY: "fp",
        },
    )
    assert examples.span == 2
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert catalog.get_int_custom_property("ingested") == 5
    assert catalog.get_int_custom_property("quarantined") == 1
    summary = json.loads(open(os.path.join(catalog.uri, spec.SUMMARY_FILE)).read())
    assert summary["by_reason"] == {spec.CORRUPT_IMAGE: 1}
    assert os.path.isdir(os.path.join(examples.uri, "Split-eval"))


def test_driver_resolves_the_latest_span_and_fingerprints_its_files(tmp_path):
    from tfx.orchestration.portable import data_types

    from components.input_fingerprint import spec as fingerprint_spec
    from components.input_fingerprint.driver import Driver

    for span in (3, 12):
        for label in ("a", "b"):
            write(str(tmp_path / f"span-{span}" / label / "x.jpg"), encode(gradient(), "JPEG"))

    def drive():
        info = data_types.ExecutionInfo(exec_properties={spec.INPUT_BASE_KEY: str(tmp_path / "span-{SPAN}")})
        return Driver(None).run(info).exec_properties

    first = drive()
    assert first[spec.SPAN_KEY].int_value == 12
    key = fingerprint_spec.FINGERPRINT_KEY
    assert first[key].string_value and drive()[key] == first[key]
    write(
        str(tmp_path / "span-12" / "a" / "x.jpg"), encode(gradient(64, 40), "JPEG")
    )  # Same name, new bytes.
    assert drive()[key] != first[key]
