"""oneDNN stress: build, compile and fit every network shape cvpipe can train, oneDNN forced on.

oneDNN's backward-weights kernel for a strided 1x1 convolution on NHWC input overran its scratch
buffer when the input had fewer channels than its vector block (16 with AVX-512, 8 with AVX2;
uxlfoundation/oneDNN#6035) and corrupted the heap in ``fit``. cvpipe's networks now subsample
before a stride-1 1x1 convolution (``model.Subsample``). This bench checks that no configuration
crashes, on whatever CPU it runs on: every point runs in its own fresh Python process with
``TF_ENABLE_ONEDNN_OPTS=1`` (TensorFlow turns oneDNN on by default only on CPUs with AVX512_VNNI,
AVX512_BF16 or AMX) and without ``ONEDNN_MAX_CPU_ISA`` (the CPU's own kernels), and fits a few
steps of random uint8 images (16 images, batch 8, 2 epochs). A crash is that process's exit status.

Points, both tasks (classification: width x depth; detection: width x head width):

- every width a user may configure (4 ... 64) at every image size (32 ... 256, all multiples of
  the detector's largest stride, 16) with 3 classes; classifiers at depth 2 (depth 1 is a
  sub-network of it), detectors at head width 48 or 32 alternately by size;
- the shape-changing points of the default search spaces (tuning.DEFAULT_SPACE: width x depth;
  tuning.DETECTION_SPACE: width x head width), learning rate and dropout left at their first value;
- 1 and 10 classes at a few widths and sizes.

It first prints the CPU (model, family/model, AVX-512 / AMX flags) and which oneDNN ISA ran (one
point with ``ONEDNN_VERBOSE=1``: its ``isa:`` line and the convolution primitives it executed),
then one line per point, then the points run, the crashes and the total time. Target: no point
crashes (exit 1 otherwise). ``--arm old`` builds the networks as before the fix (a strided 1x1
convolution in every downsampling block's shortcut), which crashes at widths below the ISA's
vector block (4 and 6 with AVX2).

    .venv/bin/python bench/onednn_stress.py --quick
    .venv/bin/python bench/onednn_stress.py --json /tmp/onednn_stress.json
    .venv/bin/python bench/onednn_stress.py --arm old --widths 4 6 8 --sizes 64 128 224
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WIDTHS = (4, 6, 8, 12, 16, 20, 24, 32, 48, 64)  # First-stage widths a user may configure.
SIZES = (32, 64, 96, 128, 160, 224, 256)  # Image sizes; every one a multiple of 16.
CLASSIFIER_DEPTH = 2  # ModelParams' default.
DETECTOR_HEADS = (48, 32)  # DetectorParams' default, then DETECTION_SPACE's other head width.
# The default search spaces' shape-changing values (components/image_model/tuning.py and
# pipelines/configs/{default,detection}.yaml), at the image sizes each task's auto size favours.
CLASSIFICATION_SPACE = {"width": (16, 24, 32), "depth": (1, 2), "sizes": (64, 128)}
DETECTION_SPACE = {"width": (12, 16), "head_width": (32, 48), "sizes": (128,)}
# 1 and 10 classes: narrow widths (where the kernel overran) and one wide one, each task.
CLASS_POINTS = {"classification": ((4, 64), (6, 128), (16, 224)), "detection": ((4, 64), (6, 128), (16, 256))}
# --quick: narrow widths at a few sizes, a search-space point and 1 / 10 classes, each task.
QUICK = [
    ("classification", 128, 4, 2, 3),
    ("classification", 224, 6, 2, 3),
    ("classification", 96, 8, 2, 3),
    ("classification", 64, 16, 1, 3),
    ("classification", 64, 4, 2, 1),
    ("classification", 128, 6, 2, 10),
    ("detection", 128, 4, 32, 3),
    ("detection", 64, 6, 32, 3),
    ("detection", 96, 8, 48, 3),
    ("detection", 128, 12, 48, 3),
    ("detection", 64, 4, 48, 10),
    ("detection", 128, 6, 48, 1),
]
PROBE = ("classification", 64, 16, 1, 3)  # The ONEDNN_VERBOSE point: quick, 1x1 and 3x3 kernels.
IMAGES, BATCH, EPOCHS = 16, 8, 2
# Every child's start-up messages (CUDA plugin registration, a Python version warning): not the crash.
_NOISE = re.compile(r"Unable to register cu|_python_version_support|^\s*warnings\.warn\(")


def points() -> list[tuple[str, int, int, int, int]]:
    """(task, image size, width, depth or head width, classes), without repeats."""
    found: list[tuple[str, int, int, int, int]] = []
    for index, size in enumerate(SIZES):
        for width in WIDTHS:
            found.append(("classification", size, width, CLASSIFIER_DEPTH, 3))
            found.append(("detection", size, width, DETECTOR_HEADS[index % 2], 3))
    for size in CLASSIFICATION_SPACE["sizes"]:
        for width in CLASSIFICATION_SPACE["width"]:
            for depth in CLASSIFICATION_SPACE["depth"]:
                found.append(("classification", size, width, depth, 3))
    for size in DETECTION_SPACE["sizes"]:
        for width in DETECTION_SPACE["width"]:
            for head in DETECTION_SPACE["head_width"]:
                found.append(("detection", size, width, head, 3))
    for task, pairs in CLASS_POINTS.items():
        extra = CLASSIFIER_DEPTH if task == "classification" else DETECTOR_HEADS[0]
        for classes in (1, 10):
            for width, size in pairs:
                found.append((task, size, width, extra, classes))
    return list(dict.fromkeys(found))


def _env(verbose: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "ONEDNN_VERBOSE")}
    env.update(TF_ENABLE_ONEDNN_OPTS="1", TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    if verbose:
        env["ONEDNN_VERBOSE"] = "1"
    return env


def _no_core_dumps() -> None:
    """A crashing child writes no core file (a 256 px network's heap is large)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_point(point: tuple, arm: str, timeout: float, verbose: bool = False) -> dict:
    """One point in a fresh process: its exit status, seconds, and stderr's tail on failure."""
    command = [sys.executable, os.path.abspath(__file__), "--child", ",".join(map(str, point)), "--arm", arm]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cvpipe-onednn-") as cwd:
        try:
            done = subprocess.run(
                command,
                env=_env(verbose),
                cwd=cwd,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                preexec_fn=_no_core_dumps,
            )
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as error:  # subprocess.run has killed the child.
            code, stdout, stderr = None, _text(error.stdout), _text(error.stderr)
    seconds = time.perf_counter() - started
    if code is None:
        status = f"timeout>{timeout:.0f}s"
    elif code < 0:
        status = _signal_name(-code)
    else:
        status = str(code)
    task, size, width, extra, classes = point
    result = {
        "task": task,
        "image_size": size,
        "width": width,
        "depth" if task == "classification" else "head_width": extra,
        "classes": classes,
        "arm": arm,
        "exit": code,
        "status": status,
        "seconds": round(seconds, 1),
    }
    for line in stdout.splitlines():
        if line.startswith("result "):
            result.update(json.loads(line[len("result ") :]))
    if code != 0:
        lines = [line for line in stderr.splitlines() if line.strip() and not _NOISE.search(line)]
        result["stderr_tail"] = lines[-6:]
    if verbose:
        result["stdout"] = stdout
    return result


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def cpu_info() -> dict:
    """lscpu's model name, family and model, and the flags that decide oneDNN's ISA and default."""
    fields: dict[str, str] = {}
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        for line in output.stdout.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("Flags", "").split())
    if not flags and os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^flags\s*:\s*(.*)$", f.read(), re.M)
        flags = set(match.group(1).split()) if match else set()
    return {
        "model_name": fields.get("Model name", "?"),
        "family": fields.get("CPU family", "?"),
        "model": fields.get("Model", "?"),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": sorted(f for f in flags if f.startswith("amx")),
    }


def probe(arm: str, timeout: float) -> dict:
    """One point with ONEDNN_VERBOSE=1: the ISA oneDNN dispatched to and the convolutions it ran."""
    result = run_point(PROBE, arm, timeout, verbose=True)
    lines = result.pop("stdout", "").splitlines()
    isa = next((line for line in lines if line.startswith("onednn_verbose,info,cpu,isa:")), None)
    convolutions = [line.split(",") for line in lines if ",exec,cpu,convolution," in line]
    kinds: dict[str, int] = {}
    for fields in convolutions:
        kinds[fields[6]] = kinds.get(fields[6], 0) + 1  # forward_training, backward_weights, ...
    return {
        "point": PROBE,
        "status": result["status"],
        "isa": isa,
        "convolution_lines": len(convolutions),
        "by_kind": kinds,
        "implementations": sorted({fields[5] for fields in convolutions}),
    }


def _describe(result: dict) -> str:
    extra = f"depth {result['depth']}" if "depth" in result else f"head {result['head_width']}"
    task, size, width, classes = result["task"], result["image_size"], result["width"], result["classes"]
    return f"{task:14} {size:>4} {width:>5} {extra:>10} {classes:>7}"


def _restore_strided_pointwise() -> None:
    """--arm old: the networks as before the fix, a strided 1x1 convolution in every downsampling
    block's shortcut (``model._conv_bn`` subsampled first for ``kernel == 1 and strides > 1``)."""
    from components.image_model import model as model_lib
    from components.image_model.detector import network

    current, layers = model_lib._conv_bn, model_lib.layers

    def conv_bn(x, filters, kernel, strides=1, activation=True, name=None):
        if not (kernel == 1 and strides > 1):
            return current(x, filters, kernel, strides=strides, activation=activation, name=name)
        x = layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if activation else x

    model_lib._conv_bn = conv_bn  # conv_block looks it up here;
    network._conv_bn = conv_bn  # the detector imported the name.


def child(spec: str, arm: str) -> None:
    """Builds, compiles and fits one point; prints ``result {json}`` when ``fit`` returned."""
    sys.path.insert(0, ROOT)
    import numpy as np
    import tensorflow as tf

    if arm == "old":
        _restore_strided_pointwise()
    from components.image_model.detector.network import DetectorParams, build_detector, compile_detector
    from components.image_model.model import ModelParams, build_model

    task, size, width, extra, classes = spec.split(",")
    size, width, extra, classes = int(size), int(width), int(extra), int(classes)
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (IMAGES, size, size, 3), dtype=np.uint8)
    if task == "detection":
        params = DetectorParams(num_classes=classes, image_size=size, width=width, head_width=extra)
        model = build_detector(params)
        compile_detector(model, params, total_steps=EPOCHS * (IMAGES // BATCH))
        anchors = int(params.anchors().shape[0])
        encodings = rng.normal(size=(IMAGES, anchors, 4))
        y = np.concatenate([encodings, rng.integers(-1, classes, (IMAGES, anchors, 1))], -1).astype("float32")
    else:
        model = build_model(ModelParams(num_classes=classes, image_size=size, width=width, depth=extra))
        y = rng.integers(0, classes, (IMAGES,))
    convolutions = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    strided = [c.name for c in convolutions if c.kernel_size == (1, 1) and c.strides != (1, 1)]
    if bool(strided) != (arm == "old"):  # The arm must be the network it claims to be.
        raise SystemExit(f"arm {arm}: strided 1x1 convolutions {strided}")
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    loss = float(history.history["loss"][-1])
    print("result " + json.dumps({"strided_pointwise": len(strided), "loss": loss}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arm", choices=["new", "old"], default="new", help="old: strided 1x1 convolutions")
    parser.add_argument("--quick", action="store_true", help=f"only the {len(QUICK)} --quick points")
    parser.add_argument("--limit", type=int, default=0, help="at most this many points (0: all)")
    parser.add_argument("--tasks", nargs="+", choices=["classification", "detection"])
    parser.add_argument("--widths", nargs="+", type=int, help="only these widths")
    parser.add_argument("--sizes", nargs="+", type=int, help="only these image sizes")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per point")
    parser.add_argument("--json", help="write the CPU, the probe and every point's result here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.arm)
        return

    selected = points()
    missing = [point for point in QUICK if point not in selected]
    assert not missing, missing
    if args.quick:
        selected = list(QUICK)
    if args.tasks:
        selected = [p for p in selected if p[0] in args.tasks]
    if args.widths:
        selected = [p for p in selected if p[2] in args.widths]
    if args.sizes:
        selected = [p for p in selected if p[1] in args.sizes]
    if args.limit:
        selected = selected[: args.limit]

    started = time.perf_counter()
    cpu = cpu_info()
    print(f"CPU: {cpu['model_name']} (family {cpu['family']}, model {cpu['model']})", flush=True)
    print(
        f"flags: avx2={cpu['avx2']} avx512f={cpu['avx512f']} avx512_vnni={cpu['avx512_vnni']} "
        f"avx512_bf16={cpu['avx512_bf16']} amx={','.join(cpu['amx']) or 'no'}",
        flush=True,
    )
    isa = probe(args.arm, args.timeout)
    print(
        f"oneDNN: {isa['isa'] or 'no isa line (oneDNN not used?)'}   probe exit {isa['status']}", flush=True
    )
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(isa["by_kind"].items()))
    print(
        f"oneDNN convolution primitives executed by the probe: {isa['convolution_lines']} ({kinds}); "
        f"kernels {', '.join(isa['implementations']) or '-'}",
        flush=True,
    )
    print(
        f"arm {args.arm}: {len(selected)} points, each a fresh process with TF_ENABLE_ONEDNN_OPTS=1",
        flush=True,
    )
    print(
        f"{'task':14} {'size':>4} {'width':>5} {'depth/head':>10} {'classes':>7} {'exit':>8} {'seconds':>8}"
    )
    results = []
    for point in selected:
        result = run_point(point, args.arm, args.timeout)
        results.append(result)
        print(f"{_describe(result)} {result['status']:>8} {result['seconds']:>8.1f}", flush=True)
        for line in result.get("stderr_tail", []):
            print(f"    {line[:200]}", flush=True)
    total = time.perf_counter() - started

    failed = [r for r in results if r["exit"] != 0]
    crashed = [r for r in failed if r["exit"] is not None and r["exit"] < 0]
    print(f"points run: {len(results)}")
    print(f"crashed: {len(crashed)}" + (f" (other failures: {len(failed) - len(crashed)})" if failed else ""))
    for result in failed:
        print(f"  {_describe(result)} {result['status']}")
    print(f"total seconds: {total:.0f}")
    print("target (no crash with oneDNN on):", "met" if not failed and results else "NOT met")
    if args.json:
        with open(args.json, "w") as f:
            summary = {"arm": args.arm, "cpu": cpu, "probe": isa, "total_seconds": round(total, 1)}
            json.dump({**summary, "results": results}, f, indent=1)
    sys.exit(0 if not failed and results else 1)


if __name__ == "__main__":
    main()
