"""The Custom Scalars layout of the monitor's tags.

The Scalars dashboard shows one chart per tag: with 17 metrics and 50 layers
that is 850 charts, grouped by metric (the text before the first ``/`` of
``{metric}/{layer}``), and "layer X, dead fraction" is found by typing
``dead_fraction/X`` into its tag filter. The Custom Scalars dashboard can do
better with a layout: one chart per metric that draws every layer as one
line (the depth picture over time), and, folded away until opened, one
section per layer with one chart per metric.

Pure protos: nothing here imports TensorFlow, so the monitor's TF-free writer
and the plugin can both use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tensorboard.plugins.custom_scalar import layout_pb2

from kerasinit_tensorboard import schema

__all__ = ["scalars_layout"]

#: Title of the section that holds one all-layers chart per metric.
METRICS_CATEGORY = "kerasinit: every layer, one chart per metric"
#: Prefix of each layer's section title.
LAYER_CATEGORY_PREFIX = "kerasinit layer: "


def scalars_layout(
    metrics: Iterable[str] | None = None, layers: Iterable[str] = ()
) -> layout_pb2.Layout:
    """The Custom Scalars layout for the monitor's scalar tags.

    Args:
        metrics: the metrics written, in display order; names outside
            `schema.ACTIVATION_METRICS` and `schema.GRADIENT_METRICS` are
            refused. Defaults to all of them.
        layers: the monitored layer paths in model order; each gets a
            section, closed by default, with one chart per metric. Defaults
            to none (only the all-layers charts).

    Returns:
        A `layout_pb2.Layout`: first the all-layers section, open, whose
        chart titles are the metrics' labels (`schema.METRIC_LABELS`); then
        one closed section per layer.

    Example:

    ```python
    from tensorboard.plugins.custom_scalar import summary
    from kerasinit_tensorboard.layout import scalars_layout

    proto = summary.pb(scalars_layout(layers=["dense", "dense_1"]))
    ```
    """
    known = schema.ACTIVATION_METRICS + schema.GRADIENT_METRICS
    metrics = tuple(known if metrics is None else metrics)
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise ValueError(
            f"Expected `metrics` to name metrics of the schema, {known}. "
            f"Received: metrics={unknown!r}"
        )
    layers = tuple(layers)
    if any(not isinstance(layer, str) or not layer for layer in layers):
        raise ValueError(
            "Expected `layers` to be non-empty layer paths. "
            f"Received: layers={layers!r}"
        )
    overview = layout_pb2.Category(
        title=METRICS_CATEGORY,
        chart=[
            layout_pb2.Chart(
                title=schema.METRIC_LABELS[metric],
                multiline=layout_pb2.MultilineChartContent(
                    tag=[rf"^{re.escape(metric)}/"]
                ),
            )
            for metric in metrics
        ],
    )
    per_layer = [
        layout_pb2.Category(
            title=f"{LAYER_CATEGORY_PREFIX}{layer}",
            # Closed: 50 open sections would bury the overview again.
            closed=True,
            chart=[
                layout_pb2.Chart(
                    title=f"{layer}: {schema.METRIC_LABELS[metric]}",
                    multiline=layout_pb2.MultilineChartContent(
                        tag=[
                            rf"^{re.escape(schema.scalar_tag(metric, layer))}$"
                        ]
                    ),
                )
                for metric in metrics
            ],
        )
        for layer in layers
    ]
    return layout_pb2.Layout(category=[overview, *per_layer])
