"""lodetools: local-motion-deblurring benchmarks and networks.

Builds LODE-style and ReLoBlur-style benchmarks (frame averaging, RAW
post-processing, local blur masks, local blur synthesis) and trains the
networks that use them (LBAG, BladeNet, SimpleNet, ASPDC).
"""

__version__ = "0.1.0"
