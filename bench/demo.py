"""The demo pipeline at an older commit and at this checkout, side by side on this machine.

Both run ``cvpipe run`` on the same 600 generated sample shapes with the default config, one after
the other, each in its own fresh process with TensorFlow's own defaults in the environment (each
tree's package sets what it sets). The older tree is exported with ``git archive`` into a temporary
directory and run from there with the same virtualenv. Prints a per-component table, the totals,
the test accuracy and the blessing of each, and the ratio new / old. Target: ratio <= 0.5 with the
same blessing and test accuracy. Both runs give keras-tuner's oracle the same seed
(bench/oracle_seed/sitecustomize.py), so both tune the same four networks.

    .venv/bin/python bench/demo.py                     # baseline: the commit before the speed work
    .venv/bin/python bench/demo.py --baseline HEAD~3 --count 600
    .venv/bin/python bench/demo.py --skip-baseline     # this checkout only (per-component table)
    .venv/bin/python bench/demo.py --new HEAD          # a commit instead of the working tree
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEFORE_SPEED_WORK = "8b7c5eb"  # main before issue 13 (oneDNN off, 4 full tuning trials).
ORACLE_SEED = os.path.join(ROOT, "bench", "oracle_seed")
FINISHED = re.compile(r"^\s+[<=!] (\S+) (finished in|reused from cache|failed after) ?([\d.]+)?s?")


def export_tree(revision: str, into: str) -> str:
    """The tree of ``revision`` as plain files under ``into`` (nothing in this checkout changes)."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", revision], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return into


def run_demo(tree: str, images: str, output: str, log_path: str) -> dict:
    """``cvpipe run`` of ``tree``'s code in a new process; its wall time, node times and results."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_ENABLE_ONEDNN", "CVPIPE_"))}
    # bench/oracle_seed/sitecustomize.py: both trees tune the same networks (its docstring says why).
    pythonpath = os.pathsep.join([tree, ORACLE_SEED])
    env.update(PYTHONPATH=pythonpath, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "pipelines.cli", "run", "--images", images, "--output", output]
    started = time.perf_counter()
    nodes: dict[str, float] = {}
    result = {"nodes": nodes, "accuracy": None, "blessed": None, "log": log_path}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            log.write(line)
            match = FINISHED.match(line)
            if match:
                nodes[match.group(1)] = float(match.group(3) or 0.0)
                print(f"    {line.strip()}", flush=True)
            elif line.startswith("Test accuracy:"):
                result["accuracy"] = float(line.split(":")[1])
            elif line.startswith("Evaluation:"):
                result["blessed"] = line.split()[1] == "BLESSED"
            elif line.startswith("Pipeline finished in"):
                result["pipeline_seconds"] = float(line.split()[3].rstrip("s"))
        code = process.wait()
    result["seconds"] = time.perf_counter() - started
    result["exit"] = code
    return result


def which_code(tree: str) -> str:
    """Where ``pipelines`` imports from with PYTHONPATH=tree (guards against the editable install)."""
    env = dict(os.environ, PYTHONPATH=tree)
    probe = "import pipelines, os; print(os.path.dirname(os.path.dirname(pipelines.__file__)))"
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=tree, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=BEFORE_SPEED_WORK, help="git revision to compare with")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--new", help="git revision to measure instead of this checkout's files")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "cvpipe-bench-demo"))
    args = parser.parse_args()

    sys.path.insert(0, ROOT)
    from pipelines.sample_data import write_sample_data

    os.makedirs(args.workdir, exist_ok=True)
    images = os.path.join(args.workdir, f"images-{args.count}")
    if not os.path.isdir(images):
        write_sample_data(images, kind="shapes", count=args.count)

    arms = []
    if not args.skip_baseline:
        tree = export_tree(args.baseline, tempfile.mkdtemp(prefix="cvpipe-baseline-", dir=args.workdir))
        arms.append((f"baseline {args.baseline}", tree))
    if args.new:
        tree = export_tree(args.new, tempfile.mkdtemp(prefix="cvpipe-new-", dir=args.workdir))
        arms.append((f"new {args.new}", tree))
    else:
        arms.append(("this checkout", ROOT))

    results = []
    for name, tree in arms:
        code_dir = which_code(tree)
        if os.path.realpath(code_dir) != os.path.realpath(tree):
            raise SystemExit(f"{name}: pipelines imports from {code_dir}, not {tree}")
        output = tempfile.mkdtemp(prefix="run-", dir=args.workdir)
        print(f"{name}: cvpipe run on {args.count} images -> {output}", flush=True)
        result = run_demo(tree, images, output, os.path.join(output, "cvpipe-run.log"))
        if result["exit"] != 0:
            raise SystemExit(f"{name}: cvpipe run failed (exit {result['exit']}); log: {result['log']}")
        results.append((name, result))

    names = []
    for _, result in results:
        names += [n for n in result["nodes"] if n not in names]
    header = f"{'component':22}" + "".join(f"{name:>24}" for name, _ in results)
    print("\n" + header)
    for node in names:
        cells = "".join(
            f"{result['nodes'][node]:>23.1f}s" if node in result["nodes"] else f"{'-':>24}"
            for _, result in results
        )
        print(f"{node:22}{cells}")
    print(
        f"{'pipeline (runner)':22}" + "".join(f"{r.get('pipeline_seconds', 0):>23.1f}s" for _, r in results)
    )
    print(f"{'whole command':22}" + "".join(f"{r['seconds']:>23.1f}s" for _, r in results))
    print(f"{'test accuracy':22}" + "".join(f"{r['accuracy'] or 0:>24.4f}" for _, r in results))
    print(f"{'blessed':22}" + "".join(f"{str(r['blessed']):>24}" for _, r in results))
    if len(results) == 2:
        (_, old), (_, new) = results
        ratio = new["seconds"] / old["seconds"]
        same = new["blessed"] == old["blessed"] and (new["accuracy"] or 0) >= (old["accuracy"] or 0) - 0.01
        print(f"\nratio (new / baseline, whole command): {ratio:.3f}  (target <= 0.5)")
        print(f"same blessing and test accuracy (within 0.01): {same}")
        print("target:", "met" if ratio <= 0.5 and same else "NOT met")


if __name__ == "__main__":
    main()
