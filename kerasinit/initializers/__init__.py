"""Initializers (being built)."""
