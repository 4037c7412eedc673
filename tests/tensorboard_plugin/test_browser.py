"""The dashboard in a real TensorBoard, driven by headless Chromium.

TensorBoard runs as a subprocess on a free port of 127.0.0.1 with its
default loader (the Rust data server when installed), over the log dir of
the real 50-layer runs of ``conftest.dash_runs``. Screenshots go to the
test's tmp directory (``dashboard.png`` and one per view), where the
pictures in ``docs/dashboard.md`` come from. Without a browser the test
skips, except in CI (``CI=true``), where it fails: CI installs one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

from kerasinit_tensorboard import schema

from ._client import PluginClient, make_plugin
from .conftest import HOSTILE

pytestmark = pytest.mark.browser

STARTUP_TIMEOUT_S = 90
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


def _chromium() -> str:
    for candidate in (
        shutil.which("chromium-headless-shell"),
        "/usr/lib/chromium/chromium-headless-shell",
        shutil.which("chromium"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    _missing("no chromium-headless-shell or chromium on this machine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


@contextlib.contextmanager
def _tensorboard(logdir: str):
    port = _free_port()
    log = open(os.path.join(logdir, "..", f"tensorboard-{port}.log"), "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            logdir,
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tensorboard exited with {proc.returncode}")
            try:
                listing = _get(f"{base}/data/plugins_listing", timeout=2)
                runs = _get(f"{base}/data/plugin/kerasinit/runs", timeout=5)
                # The data server indexes the log dir in the background.
                if listing.get("kerasinit", {}).get("enabled") and len(
                    runs["runs"]
                ) == len(os.listdir(logdir)):
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("tensorboard did not come up in time")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _plugin_frame(page):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "plugin_entry.html" in frame.url and "kerasinit" in frame.url:
                return frame
        page.wait_for_timeout(250)
    raise AssertionError("the kerasinit iframe never appeared")


def test_dashboard_in_real_tensorboard(dash_runs, tmp_path):
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed")

    with _tensorboard(dash_runs.logdir) as base:
        # The default loader's routes agree with the Python loader's.
        python_loader = PluginClient(make_plugin(dash_runs.logdir))
        for run in (dash_runs.vanishing.name, dash_runs.nonfinite.name):
            query = urllib.parse.urlencode({"run": run})
            for route in ("health", "verdicts"):
                fast = _get(f"{base}/data/plugin/kerasinit/{route}?{query}")
                slow = python_loader.json(f"/{route}", {"run": run})
                assert fast == slow, route
        with pytest.raises(urllib.error.HTTPError) as bad:
            _get(f"{base}/data/plugin/kerasinit/verdicts")
        assert bad.value.code == 400

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(
                    viewport={"width": 1400, "height": 1000}
                )
                dialogs = []
                page.on(
                    "dialog", lambda d: (dialogs.append(d.message), d.dismiss())
                )
                page.goto(f"{base}/#{schema.PLUGIN_NAME}")
                frame = _plugin_frame(page)
                frame.wait_for_selector(
                    ".ki-root[data-state=ready]", timeout=60000
                )
                _check_overview(frame, dash_runs)
                _select_by_keyboard(frame, page, dash_runs)
                _check_profile(frame, dash_runs)
                _check_health_map(frame, dash_runs)
                _check_verdict_click(frame, dash_runs, python_loader)
                _screenshots(page, frame, tmp_path)
                _check_hostile(frame, page, dash_runs)
                assert dialogs == []
                page.screenshot(
                    path=str(tmp_path / "dashboard-hostile.png"), full_page=True
                )
            finally:
                browser.close()


def _rows(frame):
    return frame.locator("tr.ki-run-row").evaluate_all(
        "rows => rows.map(r => [r.dataset.run, r.dataset.severity,"
        " r.getAttribute('aria-selected') === 'true'])"
    )


def _check_overview(frame, dash_runs):
    rows = _rows(frame)
    assert len(rows) == 6
    # Sorted by worst severity, and the worst runs are the ones shown.
    ranks = [("none", "info", "warning", "error").index(s) for _, s, _ in rows]
    assert ranks == sorted(ranks, reverse=True)
    worst = {
        run.name
        for run in (
            dash_runs.healthy,
            dash_runs.vanishing,
            dash_runs.saturating,
            dash_runs.nonfinite,
        )
        if any(f.severity == "error" for f in run.findings)
    }
    assert len(worst) >= 2
    assert {run for run, _, selected in rows if selected} == worst
    frame.wait_for_selector(".ki-heatmap")
    shown = frame.locator(".ki-run").evaluate_all(
        "panels => panels.map(p => p.dataset.run)"
    )
    assert set(shown) == worst

    # Sorting by name, both ways.
    frame.click("button.ki-sort[data-sort=run]")
    names = [run for run, _, _ in _rows(frame)]
    assert names == sorted(names)
    frame.click("button.ki-sort[data-sort=run]")
    assert [run for run, _, _ in _rows(frame)] == sorted(names, reverse=True)
    frame.click("button.ki-sort[data-sort=severity]")

    # Filtering by text: names and verdicts.
    frame.fill(".ki-run-filter", "tanh")
    assert [run for run, _, _ in _rows(frame)] == [dash_runs.saturating.name]
    frame.fill(".ki-run-filter", "vanishing gradients")
    filtered = {run for run, _, _ in _rows(frame)}
    assert dash_runs.vanishing.name in filtered
    assert dash_runs.healthy.name not in filtered
    frame.fill(".ki-run-filter", "")
    assert len(_rows(frame)) == 6


def _select_by_keyboard(frame, page, dash_runs):
    """Add the vanishing and the He runs with the keyboard alone."""
    for run in (dash_runs.vanishing.name, dash_runs.healthy.name):
        frame.focus(".ki-run-filter")
        page.keyboard.press("ArrowDown")
        for _ in range(10):
            focused = frame.evaluate("document.activeElement.dataset.run")
            if focused == run:
                break
            page.keyboard.press("ArrowDown")
        assert frame.evaluate("document.activeElement.dataset.run") == run
        page.keyboard.press("Space")
        frame.wait_for_selector(f'.ki-heatmap[data-run="{run}"]', timeout=30000)
    selected = {run for run, _, on in _rows(frame) if on}
    assert dash_runs.vanishing.name in selected
    assert dash_runs.healthy.name in selected
    assert len(selected) == 4
    frame.wait_for_selector(".ki-root[data-state=ready]")


def _expected_special(runs, step, metric):
    """Markers the profile must draw at `step`: (zeros, non-finite)."""
    zeros = nonfinite = 0
    for run in runs:
        index = max(i for i, s in enumerate(run.steps) if s <= step)
        for layer in run.layers:
            value = np.float32(run.stats[index][layer][metric])
            zeros += int(value == 0)
            nonfinite += int(not np.isfinite(value))
    return zeros, nonfinite


def _band_pixels(frame, metric, band, colour):
    """Pixels of `colour` (#rrggbb) in a band of a profile chart."""
    return frame.evaluate(
        """([metric, band, colour]) => {
            const c = document.querySelector(
                `.ki-profile-chart[data-metric="${metric}"]`);
            const [y0, y1] = c.dataset[band].split(",").map(Number);
            const data = c.getContext("2d").getImageData(
                0, y0, c.width, y1 - y0).data;
            const want = [1, 3, 5].map(
                i => parseInt(colour.slice(i, i + 2), 16));
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (want.every((v, k) => Math.abs(data[i + k] - v) <= 2)) n++;
            }
            return n;
        }""",
        [metric, band, colour],
    )


def _run_colour(frame, run):
    return frame.locator(
        f'.ki-run-legend .ki-legend-item[data-run="{run}"] .ki-swatch'
    ).get_attribute("data-colour")


def _check_profile(frame, dash_runs):
    runs = [
        dash_runs.healthy,
        dash_runs.vanishing,
        dash_runs.saturating,
        dash_runs.nonfinite,
    ]
    charts = frame.locator(".ki-profile-chart")
    assert charts.evaluate_all("cs => cs.map(c => c.dataset.metric)") == list(
        schema.HEATMAP_METRICS
    )
    # Pre-flight by default.
    assert charts.first.get_attribute("data-step") == "0"
    assert "pre-flight" in frame.text_content(".ki-step-label")
    for metric in ("act_std", "grad_norm"):
        chart = frame.locator(f'.ki-profile-chart[data-metric="{metric}"]')
        zeros, nonfinite = _expected_special(runs, 0, metric)
        assert chart.get_attribute("data-zero") == str(zeros)
        assert chart.get_attribute("data-nonfinite") == str(nonfinite)
    # The vanishing run's gradients underflow to exactly 0: on the band.
    zeros, _ = _expected_special([dash_runs.vanishing], 0, "grad_norm")
    assert zeros > 0
    colour = _run_colour(frame, dash_runs.vanishing.name)
    assert _band_pixels(frame, "grad_norm", "zeroBand", colour) > 0
    # Every run is drawn: each has its colour in the plot area.
    for run in runs:
        assert (
            _band_pixels(
                frame, "dead_fraction", "plot", _run_colour(frame, run.name)
            )
            > 0
        ), run.name

    # The last step: the run that diverged is NaN, on the top band.
    last = max(max(run.steps) for run in runs)
    frame.eval_on_selector(
        ".ki-step-slider",
        "(s) => { s.value = s.max; s.dispatchEvent(new Event('input')); }",
    )
    chart = frame.locator('.ki-profile-chart[data-metric="act_std"]')
    assert chart.get_attribute("data-step") == str(last)
    zeros, nonfinite = _expected_special(runs, last, "act_std")
    assert nonfinite > 0
    assert chart.get_attribute("data-nonfinite") == str(nonfinite)
    assert chart.get_attribute("data-zero") == str(zeros)
    colour = _run_colour(frame, dash_runs.nonfinite.name)
    assert _band_pixels(frame, "act_std", "nanBand", colour) > 0
    frame.eval_on_selector(
        ".ki-step-slider",
        "(s) => { s.value = 0; s.dispatchEvent(new Event('input')); }",
    )


def _cell_rgb(frame, run, metric, row, column):
    return frame.evaluate(
        """([run, metric, row, column]) => {
            const c = document.querySelector(
                `.ki-heatmap[data-run="${CSS.escape(run)}"]`
                + `[data-metric="${metric}"]`);
            const w = Number(c.dataset.cellWidth);
            const h = Number(c.dataset.cellHeight);
            const d = c.getContext("2d").getImageData(
                column * w + Math.floor(w / 2),
                row * h + Math.floor(h / 2), 1, 1).data;
            return [d[0], d[1], d[2]];
        }""",
        [run, metric, row, column],
    )


def _check_health_map(frame, dash_runs):
    maps = frame.locator(".ki-heatmap")
    ranges = {}
    for i in range(maps.count()):
        canvas = maps.nth(i)
        metric = canvas.get_attribute("data-metric")
        assert (
            canvas.get_attribute("data-scale")
            == (schema.HEATMAP_METRICS[metric]["scale"])
        )
        ranges.setdefault(metric, set()).add(canvas.get_attribute("data-range"))
    # One colour scale per metric, shared by every shown run.
    assert all(len(r) == 1 for r in ranges.values())
    vanishing = dash_runs.vanishing
    grads = [
        np.float32(vanishing.stats[0][layer]["grad_norm"])
        for layer in vanishing.layers
    ]
    zero_row = next(i for i, g in enumerate(grads) if g == 0)
    assert _cell_rgb(frame, vanishing.name, "grad_norm", zero_row, 0) == [
        0,
        0,
        0,
    ]
    broken = dash_runs.nonfinite
    last = len(broken.steps) - 1
    nan_row = next(
        i
        for i, layer in enumerate(broken.layers)
        if np.isnan(broken.stats[last][layer]["act_std"])
    )
    assert _cell_rgb(frame, broken.name, "act_std", nan_row, last) == [
        0xE6,
        0x19,
        0x4B,
    ]
    # Healthy finite cells are on the ramp: neither special colour.
    assert _cell_rgb(frame, dash_runs.healthy.name, "act_std", 0, 0) not in (
        [0, 0, 0],
        [0xE6, 0x19, 0x4B],
        [0xFF, 0x00, 0xFF],
        [0xD9, 0xD9, 0xD9],
    )


def _check_verdict_click(frame, dash_runs, python_loader):
    expected = 0
    for run in frame.locator(".ki-run").evaluate_all(
        "ps => ps.map(p => p.dataset.run)"
    ):
        expected += len(
            python_loader.json("/verdicts", {"run": run})["verdicts"]
        )
    assert frame.locator("tr.ki-verdict").count() == expected
    run = dash_runs.vanishing
    diagnosis = next(d for d in run.diagnoses if d.kind == "dead_units")
    row = frame.locator(
        f'tr.ki-verdict[data-run="{run.name}"][data-kind="dead_units"]'
    )
    assert row.get_attribute("data-first-layer") == diagnosis.first_layer
    assert row.get_attribute("data-span") == str(len(diagnosis.layers))
    assert row.get_attribute("data-source") == "diagnoses"
    assert diagnosis.cause in row.inner_text()
    row.click()
    frame.wait_for_selector("tr.ki-verdict-detail")
    frame.wait_for_selector(".ki-dist-map", timeout=30000)
    row = frame.locator(
        f'tr.ki-verdict[data-run="{run.name}"][data-kind="dead_units"]'
    )
    assert "ki-highlight" in row.get_attribute("class")
    assert row.get_attribute("aria-expanded") == "true"
    evidence = frame.locator("tr.ki-verdict-detail tr.ki-evidence")
    assert evidence.evaluate_all("rs => rs.map(r => r.dataset.layer)") == [
        f.layer for f in diagnosis.findings
    ]
    # The verdict's layers are outlined in that run's map ...
    panel = frame.locator(f'.ki-run[data-run="{run.name}"]')
    assert panel.locator(".ki-label.ki-highlight").evaluate_all(
        "ls => ls.map(l => l.dataset.layer)"
    ) == list(diagnosis.layers)
    first = run.layers.index(diagnosis.first_layer)
    outline = frame.evaluate(
        """([run, rows]) => {
            const c = document.querySelector(
                `.ki-heatmap[data-run="${CSS.escape(run)}"]`
                + '[data-metric="dead_fraction"]');
            const h = Number(c.dataset.cellHeight);
            const ctx = c.getContext("2d");
            return rows.map(r => [...ctx.getImageData(1, r * h + 1, 1, 1).data]
                .slice(0, 3));
        }""",
        [run.name, [first, 0]],
    )
    assert outline[0] == [0xFF, 0x2D, 0x55]  # the outline's top edge
    assert outline[1] != [0xFF, 0x2D, 0x55]  # a row outside the verdict
    # ... and banded in the profile, over their layer indices only.
    tint = frame.evaluate(
        """() => {
            const c = document.querySelector(
                '.ki-profile-chart[data-metric="dead_fraction"]');
            const [x0, x1] = c.dataset.highlight.split(",").map(Number);
            const y = Number(c.dataset.nanBand.split(",")[0]) + 2;
            const ctx = c.getContext("2d");
            const inside = ctx.getImageData(x0 + 2, y, 1, 1).data;
            const outside = ctx.getImageData(60, y, 1, 1).data;
            return [x0, x1, [...inside].slice(0, 3), [...outside].slice(0, 3)];
        }"""
    )
    x0, x1, inside, outside = tint
    assert x0 > 60 and x1 > x0
    assert inside[0] > inside[1] + 15  # pink over the grey band
    assert abs(outside[0] - outside[1]) <= 2  # the band's own grey
    # The layer detail opened on the first layer, large enough to read.
    body = frame.locator(".ki-detail-body")
    assert body.get_attribute("data-layer") == diagnosis.first_layer
    dist = frame.locator(".ki-dist-map")
    assert int(dist.get_attribute("width")) >= 500
    assert int(dist.get_attribute("height")) >= 200
    assert int(dist.get_attribute("data-steps")) == len(run.steps)
    assert frame.locator("canvas.ki-hist").count() == 1


def _screenshots(page, frame, tmp_path):
    # TensorBoard sizes the plugin's iframe to the window: a tall window
    # shows every view whole.
    page.set_viewport_size({"width": 1400, "height": 4200})
    frame.wait_for_timeout(500)
    page.screenshot(path=str(tmp_path / "dashboard.png"))
    for name, selector in (
        ("overview", ".ki-overview"),
        ("profile", ".ki-profile"),
        ("health-map", ".ki-health"),
        ("verdicts", ".ki-verdicts"),
        ("layer-detail", ".ki-detail"),
    ):
        frame.locator(selector).screenshot(
            path=str(tmp_path / f"dashboard-{name}.png")
        )
    print(f"screenshots in {tmp_path}")


def _check_hostile(frame, page, dash_runs):
    frame.fill(".ki-run-filter", "schema-hostile")
    frame.focus(".ki-run-filter")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    frame.wait_for_selector(
        f'.ki-heatmap[data-run="{dash_runs.hostile}"]', timeout=30000
    )
    frame.wait_for_selector(".ki-root[data-state=ready]")
    labels = frame.locator(f'.ki-run[data-run="{dash_runs.hostile}"] .ki-label')
    assert labels.evaluate_all("ls => ls.map(l => l.dataset.layer)") == [
        "dense",
        HOSTILE,
    ]
    assert HOSTILE in labels.all_text_contents()
    hostile_rows = frame.locator(
        "tr.ki-verdict", has=frame.locator("td", has_text=HOSTILE)
    )
    assert hostile_rows.count() == 1
    frame.fill(".ki-run-filter", "img")
    assert dash_runs.hostile_dir in [run for run, _, _ in _rows(frame)]
    assert frame.locator("img").count() == 0
    assert page.locator("img").count() == 0
