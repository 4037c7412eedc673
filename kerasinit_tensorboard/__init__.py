"""The kerasinit TensorBoard dashboard.

This package is loaded by TensorBoard through the ``tensorboard_plugins``
entry point. It lives outside the ``kerasinit`` package on purpose: importing
``kerasinit`` imports Keras and TensorFlow, and an import error (or a slow
import) in a plugin's entry point takes the whole ``tensorboard`` command
down. Nothing here imports TensorFlow or Keras.
"""
