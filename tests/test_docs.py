"""The documentation builds with warnings as errors, and says true things."""

import os
import re
import subprocess
import sys

import pytest

from kerasinit import cli, demo, findings

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
DOCS = os.path.join(ROOT, "docs")


def _mkdocs_or_skip():
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("mkdocs and mkdocstrings are required in CI")
        pytest.skip("docs tools not installed: pip install '.[docs]'")


def _nav_pages():
    text = open(os.path.join(ROOT, "mkdocs.yml")).read()
    return re.findall(r"^\s+- [^:]+: (\S+\.md)\s*$", text, re.M)


def test_mkdocs_build_strict(tmp_path):
    _mkdocs_or_skip()
    missing = [
        p for p in _nav_pages() if not os.path.exists(os.path.join(DOCS, p))
    ]
    assert not missing, f"pages in the nav but not in docs/: {missing}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    # The reference is generated from the code, not left empty.
    for name in ("HealthMonitor", "SwiGLU", "ForActivation", "lsuv", "pair"):
        assert name in api


def test_every_docs_page_is_in_the_nav():
    pages = {p for p in os.listdir(DOCS) if p.endswith(".md")}
    assert pages <= set(_nav_pages())


def test_guide_has_a_fix_for_every_finding_kind():
    guide = open(os.path.join(DOCS, "guide.md")).read()
    headings = re.findall(r"^### (.+)$", guide, re.M)
    documented = {k for h in headings for k in re.findall(r"`(\w+)`", h)}
    assert set(findings.WARNING_CLASSES) <= documented
    for cls in set(findings.WARNING_CLASSES.values()):
        assert cls.__name__ in guide


def test_guide_documents_the_command_as_it_is():
    guide = open(os.path.join(DOCS, "guide.md")).read()
    parser = cli.build_parser()
    demo_help = parser._subparsers._group_actions[0].choices["demo"]
    for action in demo_help._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert flag in guide, flag
    config = demo.DemoConfig
    assert f"default 6, or {config.quick().epochs} with `--quick`" in guide
    assert config.full().epochs == 6


def test_science_references_are_links_or_books():
    science = open(os.path.join(DOCS, "science.md")).read()
    refs = science.split("## References", 1)[1]
    entries = [e for e in refs.split("\n- ") if e.strip()]
    assert len(entries) >= 10
    linked = [e for e in entries if "<https://" in e]
    assert len(linked) >= len(entries) - 1
