"""The plugin's WSGI app over a log directory, read by the Python loader."""

from __future__ import annotations

from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import (
    plugin_event_multiplexer as event_multiplexer,
)
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

from kerasinit_tensorboard import plugin as plugin_lib


def make_plugin(logdir: str, size_guidance: dict | None = None):
    """The plugin over ``logdir``, read as ``tensorboard --load_fast=false``."""
    multiplexer = event_multiplexer.EventMultiplexer(
        size_guidance=size_guidance
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    context = base_plugin.TBContext(
        logdir=logdir, data_provider=provider, multiplexer=multiplexer
    )
    return plugin_lib.KerasinitPlugin(context)


class PluginClient:
    """Calls one plugin's routes the way TensorBoard mounts them."""

    def __init__(self, plugin):
        self.plugin = plugin
        self._apps = plugin.get_plugin_apps()

    def get(self, route: str, query: dict | list | None = None):
        client = werkzeug_test.Client(self._apps[route], wrappers.Response)
        return client.get(route, query_string=query or {})

    def json(self, route: str, query: dict | list | None = None):
        response = self.get(route, query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()
