"""Blur masks and blurred-area statistics (LODE section 5.1, ReLoBlur LBFMG)."""
