"""Rendering: the exposition line format, the per-object series store, the /metrics body in every
format, and the background renderer. Imports ``metrics`` and below, never ``web``."""
