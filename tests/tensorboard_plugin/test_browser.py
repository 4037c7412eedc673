"""The dashboard in a real TensorBoard, driven by headless Chromium.

TensorBoard runs as a subprocess on a free port of 127.0.0.1 with its
default loader (the Rust data server when installed), over the log dir of
the real runs in conftest.py. Without a browser the test skips, except in
CI (``CI=true``), where it fails: CI installs one.
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

import pytest

from kerasinit_tensorboard import schema

from ._client import PluginClient, make_plugin
from .conftest import HOSTILE

pytestmark = pytest.mark.browser

ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "artifacts")
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


def test_dashboard_in_real_tensorboard(real_runs):
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed")

    with _tensorboard(real_runs.logdir) as base:
        # The default loader's routes agree with the Python loader's.
        python_loader = PluginClient(make_plugin(real_runs.logdir))
        for run in (real_runs.broken, real_runs.healthy):
            query = urllib.parse.urlencode({"run": run})
            fast = _get(f"{base}/data/plugin/kerasinit/health?{query}")
            slow = python_loader.json("/health", {"run": run})
            assert fast["layers"] == slow["layers"]
            assert fast["steps"] == slow["steps"]
            fast = _get(f"{base}/data/plugin/kerasinit/findings?{query}")
            slow = python_loader.json("/findings", {"run": run})
            assert fast == slow
        with pytest.raises(urllib.error.HTTPError) as bad:
            _get(f"{base}/data/plugin/kerasinit/health")
        assert bad.value.code == 400

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(
                    viewport={"width": 1400, "height": 1500}
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
                _check_page(frame, real_runs)

                # Click the first finding: its layer row is highlighted, and
                # the layer detail opens on it.
                first = frame.locator("tr.ki-finding").first
                layer = first.get_attribute("data-layer")
                first.click()
                frame.wait_for_selector(".ki-dist-map", timeout=30000)
                broken_panel = frame.locator(
                    ".ki-run", has=frame.locator("h3", has_text="broken/")
                )
                assert broken_panel.locator(
                    ".ki-label.ki-highlight"
                ).all_text_contents() == [layer]
                assert (
                    frame.locator(".ki-detail-body").get_attribute("data-layer")
                    == layer
                )
                os.makedirs(ARTIFACTS, exist_ok=True)
                page.screenshot(path=os.path.join(ARTIFACTS, "dashboard.png"))

                # The run whose layer name is markup.
                frame.locator(
                    f'input[type=checkbox][data-run="{real_runs.hostile}"]'
                ).check()
                frame.wait_for_selector(
                    f'.ki-heatmap[data-run="{real_runs.hostile}"]',
                    timeout=30000,
                )
                frame.wait_for_selector(".ki-root[data-state=ready]")
                labels = frame.locator(
                    ".ki-run", has=frame.locator("h3", has_text="schema-")
                ).locator(".ki-label")
                assert labels.all_text_contents() == ["dense", HOSTILE]
                hostile_rows = frame.locator(
                    "tr.ki-finding", has=frame.locator("td", has_text=HOSTILE)
                )
                assert hostile_rows.count() == 1
                assert frame.locator("img").count() == 0
                assert page.locator("img").count() == 0
                assert dialogs == []
                page.screenshot(
                    path=os.path.join(ARTIFACTS, "dashboard-hostile.png")
                )
            finally:
                browser.close()


def _check_page(frame, real_runs):
    for run in (real_runs.broken, real_runs.healthy):
        maps = frame.locator(f'.ki-heatmap[data-run="{run}"]')
        assert maps.count() == len(schema.HEATMAP_METRICS)
        for i in range(maps.count()):
            assert maps.nth(i).get_attribute("data-layers") == str(
                len(real_runs.layers)
            )
            assert maps.nth(i).get_attribute("data-steps") == str(
                real_runs.events
            )
    rows = frame.locator("tr.ki-finding")
    shown = {
        (
            rows.nth(i).get_attribute("data-run"),
            rows.nth(i).get_attribute("data-layer"),
            rows.nth(i).get_attribute("data-kind"),
        )
        for i in range(rows.count())
    }
    expected = {
        (real_runs.broken, f.layer, f.kind) for f in real_runs.broken_findings
    }
    assert shown == expected
    assert rows.count() == len(real_runs.broken_findings)

    # Filtering by the healthy run leaves no findings.
    frame.select_option(".ki-filter-run", real_runs.healthy)
    assert frame.locator("tr.ki-finding").count() == 0
    assert frame.locator("tr.ki-no-findings").count() == 1
    frame.select_option(".ki-filter-run", "")
    frame.select_option(".ki-filter-kind", "dead_units")
    kinds = frame.locator("tr.ki-finding").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    assert set(kinds) <= {"dead_units"}
    frame.select_option(".ki-filter-kind", "")

    # The hostile run directory name is shown as text.
    assert (
        real_runs.healthy in frame.locator(".ki-run-label").all_text_contents()
    )
    assert frame.locator("img").count() == 0
