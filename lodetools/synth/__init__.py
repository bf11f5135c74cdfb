"""Blur synthesis: frame averaging and local blur synthesis."""
