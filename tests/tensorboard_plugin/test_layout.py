"""The Custom Scalars layout finds exactly the monitor's tags."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from kerasinit_tensorboard import layout, schema

LAYERS = ["dense", "block/dense_1", "a+b(c)", "dense_1"]
METRICS = schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS


def _matches(chart, tags):
    return {
        tag
        for tag in tags
        for pattern in chart.multiline.tag
        if re.search(pattern, tag)
    }


def test_one_chart_per_metric_holds_every_layer():
    tags = {schema.scalar_tag(m, layer) for m in METRICS for layer in LAYERS}
    tags |= {"epoch_loss", "kerasinit/record", "activations/dense"}
    proto = layout.scalars_layout(layers=LAYERS)
    overview = proto.category[0]
    assert overview.title == layout.METRICS_CATEGORY
    assert not overview.closed
    assert [c.title for c in overview.chart] == [
        schema.METRIC_LABELS[m] for m in METRICS
    ]
    for metric, chart in zip(METRICS, overview.chart):
        assert _matches(chart, tags) == {
            schema.scalar_tag(metric, layer) for layer in LAYERS
        }


def test_one_closed_section_per_layer_with_its_tags_only():
    tags = {schema.scalar_tag(m, layer) for m in METRICS for layer in LAYERS}
    proto = layout.scalars_layout(["dead_fraction", "grad_norm"], LAYERS)
    sections = proto.category[1:]
    assert [s.title for s in sections] == [
        layout.LAYER_CATEGORY_PREFIX + layer for layer in LAYERS
    ]
    for layer, section in zip(LAYERS, sections):
        assert section.closed
        # "dense" must not pick up "dense_1", nor "block/dense_1".
        assert [_matches(c, tags) for c in section.chart] == [
            {schema.scalar_tag("dead_fraction", layer)},
            {schema.scalar_tag("grad_norm", layer)},
        ]


def test_without_layers_only_the_overview():
    proto = layout.scalars_layout(["act_std"])
    assert len(proto.category) == 1
    assert [c.title for c in proto.category[0].chart] == ["activation std"]


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"metrics": ["act_std", "loss"]}, "Received: metrics=['loss']"),
        ({"layers": ["dense", ""]}, "Received: layers=('dense', '')"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        layout.scalars_layout(**kwargs)


def test_layout_imports_no_tensorflow():
    code = (
        "import sys, kerasinit_tensorboard.layout; "
        "print([m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
