"""cvpipe command line: flags choose a config and an output directory; the work is in libraries."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from components import fileio
from pipelines import nodes

# TF_USE_LEGACY_KERAS and TF_ENABLE_ONEDNN_OPTS are set by pipelines/__init__.py, which runs first.
# Quiet terminals: TensorFlow's C++ start-up lines (CUDA factories on a CPU machine) and the Google
# client libraries' FutureWarnings, here and in the Beam worker processes that inherit the environment.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
warnings.filterwarnings("ignore", category=FutureWarning, module=r"(google|kfp)\..*")


def _read_json(path: str):
    """A JSON artifact file (local or any URI tf.io.gfile knows), or None when there is none."""
    if not fileio.exists(path):
        return None
    with fileio.open(path) as f:
        return json.load(f)


def _shown(path: str) -> str:
    """A local path made absolute for printing; a URI (gs://...) as given."""
    return path if "://" in path else os.path.abspath(path)


def _config(args, **input_overrides):
    from pipelines.config import load_config

    overrides = {"input": {k: v for k, v in input_overrides.items() if v is not None}}
    return load_config(args.config, overrides)


def cmd_sample_data(args) -> int:
    from pipelines.sample_data import write_sample_data

    written = write_sample_data(args.out_dir, kind=args.kind, count=args.count, seed=args.seed)
    layout = "with a COCO annotations.json" if args.kind == "scenes" else "in class folders"
    print(f"Wrote {written} {args.kind} images {layout} under {os.path.abspath(args.out_dir)}")
    if args.kind == "scenes":
        print("Ingest them for object detection with a config saying `task: detection`.")
    return 0


def cmd_ingest(args) -> int:
    from pipelines.runner import run_ingest

    config = _config(args, images=args.images, manifest=args.manifest, span=args.span)
    summary = run_ingest(config, args.output)
    out = _shown(args.output)
    print(
        f"Ingested {summary['ingested']} of {summary['seen']} files in {summary['seconds']}s: "
        f"{summary['quarantined']} quarantined, {summary['duplicates']} duplicates."
    )
    for reason, count in summary["by_reason"].items():
        print(f"  {reason}: {count}")
    print(f"Splits: {json.dumps(summary['by_split'])} (from {summary.get('splits_from', 'content hash')})")
    objects = summary.get("objects")
    if objects:
        print(
            f"Boxes: {objects['boxes']} ({json.dumps(objects['by_class'])}) on "
            f"{objects['images_with_boxes']} images, {objects['negatives']} images without objects; "
            f"box issues: {json.dumps(objects['box_issues'])} (catalog column box_issues)"
        )
    print(f"Examples: {os.path.join(out, 'examples')}/Split-*/")
    print(f"Catalog:  {os.path.join(out, 'catalog.parquet')}")
    print(f"Summary:  {os.path.join(out, 'summary.json')}")
    return 0


def cmd_run(args) -> int:
    from components.data_checks.executor import DataGateError
    from pipelines.runner import run_pipeline

    config = _config(args, images=args.images, manifest=args.manifest, span=args.span)
    print(f"Running pipeline {config.pipeline_name!r} with the Beam DAG runner")
    try:
        result = run_pipeline(
            config,
            args.output,
            train=not args.validate_only,
            pipeline_root=args.pipeline_root,
            push_root=args.push_to,
        )
    except DataGateError as e:
        print(str(e), file=sys.stderr)
        return 3
    print(f"Pipeline finished in {result.seconds:.1f}s")
    for node, state in result.nodes.items():
        print(f"  {node}: {state}")
    catalog = result.outputs.get(nodes.EXAMPLE_GEN, {}).get("catalog", [None])[0]
    summary = _read_json(os.path.join(catalog, "summary.json")) if catalog else None
    if summary:
        print(
            f"Ingested {summary['ingested']} of {summary['seen']} files: {summary['quarantined']} "
            f"quarantined, {summary['duplicates']} duplicates ({summary['by_reason']})"
        )
        print(f"Catalog:   {os.path.join(catalog, 'catalog.parquet')}")
    for key, uris in result.outputs.get(nodes.EXAMPLE_GEN, {}).items():
        if key == "examples":
            print(f"Examples:  {uris[0]}")
    _print_validation(result)
    _print_model_outputs(result)
    print(f"Metadata:  {result.metadata_path}")
    return 0


def _print_validation(result) -> None:
    from components.data_checks.spec import CHECKS_FILE
    from components.validation_report.spec import REPORT_FILE

    checks_uri = result.outputs.get(nodes.DATA_CHECKS, {}).get("checks", [None])[0]
    if not checks_uri:
        return
    checks = _read_json(os.path.join(checks_uri, CHECKS_FILE))
    if checks is None:
        return
    gate = " (gate: warn, so the run went on)" if checks["verdict"] == "fail" else ""
    print(f"Data validation: {checks['verdict'].upper()}{gate}: {checks['reason']}")
    for anomaly in checks["anomalies"]:
        print(f"  {anomaly['severity']:7} {anomaly['title']}: {anomaly['description']}")
    report = result.outputs.get(nodes.VALIDATION_REPORT, {}).get("report", [None])[0]
    if report:
        print(f"Report:    {os.path.join(report, REPORT_FILE)}")


def cmd_report(args) -> int:
    from pipelines.report import write_reports

    reports = write_reports(args.run_dir, args.out)
    print(f"Report: {_shown(reports.data)}")
    if reports.model:
        print(f"Model review: {_shown(reports.model)}")
    return 0


def cmd_compile(args) -> int:
    from pipelines.kubeflow import DEFAULT_IMAGE, compile_pipeline, load_spec

    config = _config(args, images=args.images)
    path = compile_pipeline(
        config,
        args.output,
        image=args.image or DEFAULT_IMAGE,
        pipeline_root=args.pipeline_root,
        push_root=args.push_to,
    )
    spec = load_spec(path)
    print(f"Compiled {spec.pipeline_info.name!r} for Kubeflow Pipelines (KFP v2 PipelineSpec): {path}")
    print(f"  image: {args.image or DEFAULT_IMAGE}")
    print(f"  components: {', '.join(sorted(spec.root.dag.tasks))}")
    print("  runtime parameters (set with `cvpipe submit --param NAME=VALUE`):")
    from google.protobuf import json_format

    for name, parameter in sorted(spec.root.input_definitions.parameters.items()):
        default = json_format.MessageToDict(parameter).get("defaultValue")
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        shown = json.dumps(default)
        print(f"    {name} = {shown if len(shown) <= 60 else shown[:57] + '...'}")
    return 0


def cmd_submit(args) -> int:
    from pipelines.kubeflow import SubmitError, plan_submission, submit

    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"cvpipe: error: --param {item!r}: expected NAME=VALUE", file=sys.stderr)
            return 2
        params[name] = value
    plan = plan_submission(
        args.pipeline_file,
        host=args.host,
        experiment=args.experiment,
        params=params,
        namespace=args.namespace,
        run_name=args.run_name,
    )
    request = {
        "host": plan.host,
        "pipeline": plan.pipeline_name,
        "experiment": plan.experiment,
        "namespace": plan.namespace,
        "run_name": plan.run_name,
        "parameters": plan.arguments,
    }
    if args.dry_run:
        print(f"Dry run: {args.pipeline_file} is a valid PipelineSpec; would upload it and start:")
        print(json.dumps(request, indent=2, sort_keys=True))
        return 0
    try:
        ids = submit(args.pipeline_file, plan)
    except SubmitError as e:
        print(f"cvpipe: error: {e}", file=sys.stderr)
        return 1
    print(f"Submitted {plan.pipeline_name!r} to {plan.host}: run {plan.run_name!r}")
    for key, value in ids.items():
        print(f"  {key}: {value}")
    print(f"  parameters: {json.dumps(plan.arguments, sort_keys=True)[:200]}")
    return 0


def cmd_lineage(args) -> int:
    from pipelines.lineage import format_lineage, lineage

    print(format_lineage(lineage(args.target)))
    return 0


def _print_model_outputs(result) -> None:
    tuned = result.outputs.get(nodes.TUNER, {}).get("best_hyperparameters", [None])[0]
    hyperparameters = _read_json(os.path.join(tuned, "best_hyperparameters.txt")) if tuned else None
    if hyperparameters:
        print(f"Tuned:     {hyperparameters.get('values')}")
    results = result.outputs.get(nodes.TUNER, {}).get("tuner_results", [None])[0]
    trials = (_read_json(os.path.join(results, "trials.json")) if results else None) or {}
    for trial in trials.get("trials", []):
        if trial.get("status") in ("FAILED", "INVALID"):
            reason = (trial.get("reason") or "no reason recorded").splitlines()[0]
            print(f"Failed trial {trial['trial_id']}: {reason}")
    run = result.outputs.get(nodes.TRAINER, {}).get("model_run", [None])[0]
    metrics = _read_json(os.path.join(run, "metrics.json")) if run else None
    if metrics and metrics.get("continued_from"):
        done = metrics["continued_from"]["epochs"]
        print(f"Trained:   {metrics['epochs'] - done} epochs on from the best trial's weights (its {done})")
    if metrics and "test_accuracy" in metrics:
        print(f"Test accuracy: {metrics['test_accuracy']:.4f}")
    if metrics and "test_map50" in metrics:
        print(f"Test mAP@0.5: {metrics['test_map50']:.4f}, mAP@[.5:.95] {metrics['test_map']:.4f}")
    blessing = result.outputs.get(nodes.EVALUATOR, {}).get("blessing", [None])[0]
    if blessing:
        blessed = fileio.exists(os.path.join(blessing, "BLESSED"))
        print(f"Evaluation: {'BLESSED' if blessed else 'NOT blessed'} ({blessing})")
    pushed = result.outputs.get(nodes.PUSHER, {}).get("pushed_model", [None])[0]
    if pushed is not None:
        from pipelines.runner import pushed_destination

        destination = pushed_destination(result.metadata_path, pushed)
        print(f"Serving model: {destination or 'not pushed (model not blessed)'}")
    tflite = result.outputs.get(nodes.TFLITE_EXPORTER, {}).get("tflite_model", [None])[0]
    parity = _read_json(os.path.join(tflite, "parity.json")) if tflite else None
    if parity:
        from components.tflite_exporter.export import variant_summary

        for variant in parity["variants"]:
            print(variant_summary(variant))
    edge = result.outputs.get(nodes.EDGE_PUSHER, {}).get("pushed_edge_model", [None])[0]
    if edge is not None:
        from pipelines.runner import pushed_destination

        destination = pushed_destination(result.metadata_path, edge)
        print(f"Edge model:    {destination or 'not pushed (see the TFLite gate above)'}")
        if destination:
            for name in sorted(entry.rstrip("/") for entry in fileio.listdir(destination)):
                if name.endswith(".tflite"):
                    print(f"TFLite file:   {os.path.join(destination, name)}")
    review = result.outputs.get(nodes.MODEL_REVIEW, {}).get("review", [None])[0]
    if review:
        from components.model_review.spec import PAGE_FILE

        print(f"Model review: {os.path.join(review, PAGE_FILE)}")
    if pushed is not None:
        print(f"Lineage:   cvpipe lineage {result.output_dir}")


def cmd_predict(args) -> int:
    from pipelines.predict import annotate, predict

    failures = 0
    for path, result in predict(args.model, args.images, min_score=args.min_score):
        if result.error:
            failures += 1
            print(f"{path}\terror: {result.error}")
        elif result.detections is None:
            print(f"{path}\t{result.label}\t{result.score:.4f}")
        else:  # A detector: one line per box (left, top, right, bottom in pixels).
            for d in result.detections:
                print(f"{path}\t{d.label}\t{d.score:.4f}\t" + ",".join(f"{v:.1f}" for v in d.box))
            if not result.detections:
                print(f"{path}\tno detections")
            if args.annotate:
                annotate(path, result.detections, os.path.join(args.annotate, os.path.basename(path)))
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cvpipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="write a labelled sample image folder")
    p.add_argument("out_dir")
    p.add_argument(
        "--kind",
        choices=["shapes", "digits", "scenes"],
        default="shapes",
        help="shapes, digits: class folders; scenes: object detection scenes with COCO boxes",
    )
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample_data)

    for name, func, help_text in (
        ("ingest", cmd_ingest, "ingest an image folder into TFRecords + catalog (Beam)"),
        ("run", cmd_run, "run the TFX pipeline locally with the Beam DAG runner"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--images", help="image root (class folders); may contain {SPAN}")
        p.add_argument("--manifest", help="CSV or JSONL manifest (path, label, extra columns)")
        p.add_argument("--span", type=int, help="ingest this span instead of the latest")
        p.add_argument("--output", required=True, help="output directory")
        p.add_argument("--config", help="YAML config overriding pipelines/configs/default.yaml")
        if name == "run":
            p.add_argument("--validate-only", action="store_true", help="stop after data validation")
            p.add_argument(
                "--pipeline-root",
                help="artifact root, any URI TensorFlow knows (default OUTPUT/pipeline_root)",
            )
            p.add_argument("--push-to", help="where serving/ and edge/ are pushed, any URI (default OUTPUT)")
        p.set_defaults(func=func)
    p = sub.add_parser("compile", help="compile the pipeline for Kubeflow Pipelines (KFP v2 spec)")
    p.add_argument("--config", help="YAML config overriding pipelines/configs/default.yaml")
    p.add_argument("--images", help="default of the input_base runtime parameter")
    p.add_argument("--output", required=True, help="pipeline.json or pipeline.yaml")
    p.add_argument("--image", help="container image of every component (default: deployment/Dockerfile's)")
    p.add_argument(
        "--pipeline-root", help="artifact root, e.g. gs://bucket/root (default gs://NAME-pipeline-root)"
    )
    p.add_argument("--push-to", help="where serving/ and edge/ are pushed (default: the pipeline root)")
    p.set_defaults(func=cmd_compile)
    p = sub.add_parser("submit", help="upload a compiled pipeline to Kubeflow Pipelines and start a run")
    p.add_argument("pipeline_file")
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://kfp.example.com")
    p.add_argument("--experiment", default="cvpipe")
    p.add_argument("--namespace", help="Kubeflow namespace (default: $KFP_NAMESPACE or kfp's context)")
    p.add_argument("--run-name")
    p.add_argument("--param", action="append", default=[], help="NAME=VALUE (input_base, span, epochs, ...)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the request; send nothing")
    p.set_defaults(func=cmd_submit)
    p = sub.add_parser("lineage", help="what produced a pushed model, from ML Metadata")
    p.add_argument("target", help="a run's --output directory, or a pushed serving/edge model directory")
    p.set_defaults(func=cmd_lineage)
    p = sub.add_parser("report", help="render the data report and the model review of an existing run")
    p.add_argument("run_dir", help="the --output directory of a `cvpipe run`")
    p.add_argument(
        "--out",
        help="data report to write (default RUN_DIR/validation_report.html); the model review goes beside it",
    )
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("predict", help="classify images (or detect objects) with a SavedModel or .tflite")
    p.add_argument("model", help="SavedModel dir, OUTPUT/serving/<model_name> (highest version), or .tflite")
    p.add_argument("images", nargs="+")
    p.add_argument("--min-score", type=float, default=0.5, help="detection: leave out boxes scored below")
    p.add_argument("--annotate", metavar="DIR", help="detection: write the images with their boxes here")
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import logging

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)  # TFX's notices; results are printed below.
    from pipelines.config import ConfigError

    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"cvpipe: error: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """The ``cvpipe`` command: :func:`main`, then exit without the interpreter's teardown.

    Everything a command writes is closed when ``main`` returns; tearing down TensorFlow's, Beam's
    and gRPC's threads took about 3 s after ``cvpipe run`` had printed its results. An exception
    out of ``main`` still exits normally, with its traceback. (Tests call ``main`` in-process.)
    """
    # TFX imports every component, and its InfraValidator the Kubernetes client, which imports
    # kubernetes_validate when installed (the test extra) to check objects it creates; cvpipe's
    # commands create none, and that import compiles jsonschema's format checkers' grammars
    # (about 2 s of every command). Unavailable here, as in an install without the extra.
    sys.modules.setdefault("kubernetes_validate", None)
    code = main()
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
