"""Activation layers (being built)."""
