"""Start-up of the commands that only read: `cvpipe --help`, `cvpipe lineage RUN`, `cvpipe report RUN`.

Each command runs in a fresh process, three times (median), with this checkout's code and with the
code of a baseline commit (default 8b7c5eb, whose lineage and report imported TensorFlow, TFX and
Beam), exported with `git archive` and run with PYTHONPATH pointing at it. Both read the same run
directory: the one given, or a small one made first (60 sample images, tuning off, 2 epochs; a
few minutes). Target: every new time <= 3 s. The two versions' outputs are compared too (the
report's generation time aside).

    .venv/bin/python bench/commands.py
    .venv/bin/python bench/commands.py --run-dir demo/run --baseline 8b7c5eb
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS = 3.0
FAST_CONFIG = """
model: {image_size: 32, hyperparameters: {width: 16, depth: 1, learning_rate: 0.004}}
training: {epochs: 2}
tuning: {enabled: false}
evaluation: {min_accuracy: 0.0, max_accuracy_drop: 1.0}
edge: {representative_count: 20, max_accuracy_drop: 1.0, min_agreement: 0.0}
validation: {min_class_count: 2}
"""
PROBE = "import components, pipelines; print(pipelines.__file__); print(components.__file__)"


def cvpipe(code_dir: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`cvpipe ARGS` as a new process running the code in ``code_dir`` (not the installed package)."""
    env = {
        **os.environ,
        "PYTHONPATH": code_dir,
        "TF_USE_LEGACY_KERAS": "1",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=code_dir, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise SystemExit(f"cvpipe {' '.join(args)} failed in {code_dir}:\n{result.stderr[-3000:]}")
    return result


def export_commit(commit: str, destination: str) -> str:
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination)
    return destination


def check_imports_from(code_dir: str) -> None:
    """Fails unless `pipelines` and `components` import from ``code_dir`` (PYTHONPATH beats the
    editable install, whose finder comes last on sys.meta_path)."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=code_dir,
        env={**os.environ, "PYTHONPATH": code_dir},
        capture_output=True,
        text=True,
        check=True,
    )
    for path in probe.stdout.split():
        if not os.path.realpath(path).startswith(os.path.realpath(code_dir) + os.sep):
            raise SystemExit(f"{code_dir}: imports {path} instead of its own code")


def make_run(work: str) -> str:
    images, run, config = (os.path.join(work, name) for name in ("images", "run", "fast.yaml"))
    with open(config, "w") as f:
        f.write(FAST_CONFIG)
    print(f"Making a run to read: 60 images, tuning off, 2 epochs -> {run} ...", flush=True)
    started = time.perf_counter()
    cvpipe(ROOT, "sample-data", images, "--kind", "shapes", "--count", "60")
    cvpipe(ROOT, "run", "--images", images, "--output", run, "--config", config)
    print(f"  made in {time.perf_counter() - started:.0f}s", flush=True)
    return run


def median_seconds(code_dir: str, args: list[str], repeats: int) -> tuple[float, str]:
    times, output = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        output = cvpipe(code_dir, *args).stdout
        times.append(time.perf_counter() - started)
    return statistics.median(times), output


def same_page(old_path: str, new_path: str) -> bool:
    def read(path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<time>", f.read())

    return read(old_path) == read(new_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", help="a `cvpipe run --output` directory with a pushed model")
    parser.add_argument("--baseline", default="8b7c5eb", help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cvpipe-commands-") as work:
        old_dir = export_commit(args.baseline, os.path.join(work, "old"))
        for code_dir in (old_dir, ROOT):
            check_imports_from(code_dir)
        run = os.path.abspath(args.run_dir) if args.run_dir else make_run(work)
        page = os.path.join(work, "{version}.html")  # Each version's report, compared below.
        commands = {
            "cvpipe --help": lambda version: ["--help"],
            "cvpipe lineage RUN": lambda version: ["lineage", run],
            "cvpipe report RUN": lambda version: ["report", run, "--out", page.format(version=version)],
        }
        rows, outputs = [], {}
        for name, command in commands.items():
            old, outputs[name, "old"] = median_seconds(old_dir, command("old"), args.repeats)
            new, outputs[name, "new"] = median_seconds(ROOT, command("new"), args.repeats)
            rows.append((name, old, new))
        lineage_same = outputs["cvpipe lineage RUN", "old"] == outputs["cvpipe lineage RUN", "new"]
        report_same = same_page(page.format(version="old"), page.format(version="new"))

    print(f"\nFresh processes, median of {args.repeats}; old = {args.baseline}, new = this checkout")
    print(f"{'command':20} {'old s':>8} {'new s':>8} {'old/new':>8}  new <= {TARGET_SECONDS:g} s")
    for name, old, new in rows:
        met = "yes" if new <= TARGET_SECONDS else "NO"
        print(f"{name:20} {old:8.2f} {new:8.2f} {old / new:7.1f}x  {met}")
    print(f"same output: lineage {'yes' if lineage_same else 'NO'}, report {'yes' if report_same else 'NO'}")


if __name__ == "__main__":
    main()
