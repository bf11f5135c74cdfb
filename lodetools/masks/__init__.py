"""Local-blur masks and blur statistics."""
