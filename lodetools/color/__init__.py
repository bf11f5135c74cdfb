"""Colour: camera response (CRF), colour correction, photometric alignment, ISP."""
