"""How fast the kerasinit dashboard opens on a large log directory.

Run::

    python benchmarks/dashboard.py                 # 200 runs x 50 layers
    python benchmarks/dashboard.py --runs 20       # smaller
    python benchmarks/dashboard.py --smoke         # seconds, to check it runs
    python benchmarks/dashboard.py --logdir DIR    # keep (or reuse) the data

It writes a log directory of `--runs` runs of `--layers` layers each, with
`--events` logging events per run, exactly as `kerasinit_tensorboard.schema`
specifies (every per-layer scalar of the schema, activation and gradient
histograms, the cumulative record with findings and diagnoses), with
TensorBoard's own protos and event-file writer. A quarter of the
runs are healthy; the others vanish, die or turn non-finite at some depth,
so the overview has severities to sort and the verdicts rows to show.

Then it starts `tensorboard` on it (its default loader: the Rust data server
when installed), waits until every run is listed, and reports:

* each route's time (median and range over `--repeat` calls): ``/runs``,
  and, for one broken run, ``/health``, ``/verdicts``, ``/layer``;
* the time to first render: from opening the kerasinit tab in headless
  Chromium to the page drawing the overview and every view of the runs it
  selects by default (``.ki-root[data-state=ready]`` with the heatmaps
  drawn), median and range over `--repeat` page loads.

Times are wall-clock and include the browser and TensorBoard, which run in
processes of their own; on a shared machine they vary by 10-50 % from run
to run, which is why each is a median of several.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kerasinit_tensorboard import schema  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
KINDS = ("healthy", "vanishing", "dead", "nonfinite")


def _record_metadata() -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=schema.PLUGIN_NAME
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def _layer_stats(kind, depth_index, event, rng) -> dict[str, float]:
    """Plausible statistics of one layer: what each kind of run looks like."""
    std = 1.0
    grad = 0.1 * (1 + 0.1 * rng.standard_normal())
    dead = 0.02
    if kind == "vanishing":
        std = 10.0 ** (-0.8 * depth_index)
        grad = 10.0 ** (-0.8 * (50 - depth_index)) if depth_index < 45 else 0.0
    elif kind == "dead":
        dead = min(1.0, 0.03 * depth_index)
    elif kind == "nonfinite" and event > 1 and depth_index > 10:
        std = grad = math.nan
    stats = {m: float(rng.random()) for m in schema.ACTIVATION_METRICS}
    stats.update({m: float(rng.random()) for m in schema.GRADIENT_METRICS})
    stats.update(
        act_std=std,
        grad_norm=grad,
        dead_fraction=dead,
        saturation_fraction=0.0,
        act_nonfinite=0.0 if math.isfinite(std) else 10.0,
    )
    return stats


def _findings(kind, layers, stats, step):
    rule = {
        "vanishing": ("vanishing_gradients", "grad_norm", 1e-3, "below"),
        "dead": ("dead_units", "dead_fraction", 0.25, "above"),
        "nonfinite": ("nonfinite", "act_nonfinite", 0.0, "above"),
    }.get(kind)
    if rule is None:
        return []
    finding_kind, metric, threshold, side = rule
    out = []
    for layer in layers:
        value = stats[layer][metric]
        hit = value < threshold if side == "below" else value > threshold
        if hit:
            out.append(
                {
                    "kind": finding_kind,
                    "layer": layer,
                    "step": step,
                    "value": value,
                    "threshold": threshold,
                    "message": f"{layer}: {finding_kind} {value:.3g}.",
                    "advice": "Use a variance-preserving init.",
                    "severity": "error" if kind == "nonfinite" else "warning",
                }
            )
    return out


def _diagnosis(findings, layers):
    if not findings:
        return []
    head = findings[0]
    covered = [f["layer"] for f in findings]
    return [
        {
            "kind": head["kind"],
            "severity": head["severity"],
            "first_layer": head["layer"],
            "layers": [layer for layer in layers if layer in covered],
            "step": head["step"],
            "value": head["value"],
            "threshold": head["threshold"],
            "message": head["message"],
            "evidence": f"{head['value']:.3g} at {head['layer']}",
            "cause": "kernel std 1e-3 is 0.004x the He std",
            "advice": head["advice"],
            "findings": findings,
        }
    ]


def write_logdir(root, runs, layers, events, every=100, seed=0) -> float:
    """Writes the log directory; returns its size in MB."""
    rng = np.random.default_rng(seed)
    names = [f"dense_{i}" for i in range(layers)]
    scalar_meta = scalar_metadata.create_summary_metadata("", "")
    hist_meta = histogram_metadata.create_summary_metadata("", "")
    for r in range(runs):
        kind = KINDS[r % len(KINDS)]
        run_dir = os.path.join(root, f"{kind}_{r:03d}", schema.RUN_SUBDIR)
        os.makedirs(run_dir, exist_ok=True)
        writer = EventFileWriter(run_dir)
        so_far = []
        for event in range(events):
            step = event * every
            stats = {
                name: _layer_stats(kind, i, event, rng)
                for i, name in enumerate(names)
            }
            values = []
            for name in names:
                for metric, value in stats[name].items():
                    values.append(
                        summary_pb2.Summary.Value(
                            tag=schema.scalar_tag(metric, name),
                            tensor=tensor_util.make_tensor_proto(
                                np.float32(value)
                            ),
                            metadata=scalar_meta,
                        )
                    )
                scale = stats[name]["act_std"]
                scale = scale if math.isfinite(scale) and scale > 0 else 1.0
                counts, edges = np.histogram(
                    rng.normal(0.0, scale, 512), bins=30
                )
                buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
                for prefix in (
                    schema.ACTIVATION_HISTOGRAM_PREFIX,
                    schema.GRADIENT_HISTOGRAM_PREFIX,
                ):
                    values.append(
                        summary_pb2.Summary.Value(
                            tag=schema.histogram_tag(prefix, name),
                            tensor=tensor_util.make_tensor_proto(
                                buckets.astype(np.float64)
                            ),
                            metadata=hist_meta,
                        )
                    )
            seen = {(f["kind"], f["layer"]) for f in so_far}
            so_far.extend(
                f
                for f in _findings(kind, names, stats, step)
                if (f["kind"], f["layer"]) not in seen
            )
            record = schema.record(
                step=step,
                event=event,
                epoch=None if event == 0 else event,
                phase="preflight" if event == 0 else "epoch",
                layers=[
                    {"name": n, "class": "Dense", "activation": "relu"}
                    for n in names
                ],
                stats={
                    n: {
                        k: (v if math.isfinite(v) else None)
                        for k, v in s.items()
                    }
                    for n, s in stats.items()
                },
                findings=so_far,
                diagnoses=_diagnosis(so_far, names),
            )
            values.append(
                summary_pb2.Summary.Value(
                    tag=schema.RECORD_TAG,
                    tensor=tensor_util.make_tensor_proto(
                        np.array(record.encode("utf-8"), dtype=object)
                    ),
                    metadata=_record_metadata(),
                )
            )
            writer.add_event(
                event_pb2.Event(
                    wall_time=time.time(),
                    step=step,
                    summary=summary_pb2.Summary(value=values),
                )
            )
        writer.close()
    size = 0
    for base, _, files in os.walk(root):
        size += sum(os.path.getsize(os.path.join(base, f)) for f in files)
    return size / 1e6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=120.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _summary(times) -> str:
    return (
        f"{statistics.median(times) * 1e3:8.0f} ms "
        f"(min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}, "
        f"n={len(times)})"
    )


def _chromium() -> str | None:
    for candidate in (
        shutil.which("chromium-headless-shell"),
        "/usr/lib/chromium/chromium-headless-shell",
        shutil.which("chromium"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def first_render(base, repeat) -> tuple[list[float], list[float]]:
    """Seconds from opening the tab to every default view drawn, and of
    those, from the plugin's frame appearing (TensorBoard's own page has
    loaded) to the same point."""
    from playwright.sync_api import sync_playwright

    times, plugin_times = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(), args=CHROMIUM_ARGS
        )
        try:
            for _ in range(repeat):
                page = browser.new_page(
                    viewport={"width": 1400, "height": 1000}
                )
                start = time.perf_counter()
                page.goto(f"{base}/#{schema.PLUGIN_NAME}")
                frame = None
                while frame is None:
                    frame = next(
                        (
                            f
                            for f in page.frames
                            if "plugin_entry.html" in f.url
                        ),
                        None,
                    )
                    if frame is None:
                        page.wait_for_timeout(20)
                framed = time.perf_counter()
                frame.wait_for_selector(
                    ".ki-root[data-state=ready] .ki-heatmap",
                    timeout=300000,
                )
                times.append(time.perf_counter() - start)
                plugin_times.append(time.perf_counter() - framed)
                rows = frame.locator("tr.ki-run-row").count()
                page.close()
            print(f"  overview rows drawn: {rows}")
        finally:
            browser.close()
    return times, plugin_times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--logdir", help="write here (reused if present)")
    parser.add_argument(
        "--smoke", action="store_true", help="4 runs x 5 layers, 2 events"
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.layers, args.events, args.repeat = 4, 5, 2, 1
    random.seed(0)
    root = args.logdir or tempfile.mkdtemp(prefix="kerasinit-dashboard-")
    if not os.path.isdir(root) or not os.listdir(root):
        start = time.perf_counter()
        size = write_logdir(root, args.runs, args.layers, args.events)
        print(
            f"wrote {args.runs} runs x {args.layers} layers x {args.events} "
            f"events ({size:.0f} MB) in {time.perf_counter() - start:.1f} s "
            f"to {root}"
        )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            root,
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        start = time.perf_counter()
        runs = []
        while len(runs) < args.runs:
            if proc.poll() is not None:
                raise SystemExit(f"tensorboard exited with {proc.returncode}")
            try:
                runs = _get(f"{base}/data/plugin/kerasinit/runs")["runs"]
            except OSError:
                pass
            time.sleep(0.5)
        print(
            f"tensorboard listed all {len(runs)} runs after "
            f"{time.perf_counter() - start:.1f} s"
        )
        broken = next(r["run"] for r in runs if r["run"].startswith("vanish"))
        layer = runs[0]["layers"][0]
        query = urllib.parse.urlencode({"run": broken})
        layer_query = urllib.parse.urlencode({"run": broken, "layer": layer})
        print("route times:")
        for route, url in (
            ("/runs", f"{base}/data/plugin/kerasinit/runs"),
            ("/health", f"{base}/data/plugin/kerasinit/health?{query}"),
            ("/verdicts", f"{base}/data/plugin/kerasinit/verdicts?{query}"),
            ("/layer", f"{base}/data/plugin/kerasinit/layer?{layer_query}"),
        ):
            times = _timed(lambda url=url: _get(url), args.repeat)
            print(f"  {route:10s}{_summary(times)}")
        if _chromium() is None:
            print("no chromium-headless-shell: time to first render skipped")
            return
        print("time to first render:")
        total, plugin = first_render(base, args.repeat)
        print(f"  {'open the tab -> every view drawn':40s}{_summary(total)}")
        print(f"  {'  of which plugin frame -> drawn':40s}{_summary(plugin)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if not args.logdir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
