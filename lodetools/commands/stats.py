"""``lodetools stats blur-ratio``."""

from lodetools.commands._lazy import lazy_group

command = lazy_group(
    "stats",
    {"blur-ratio": "stats_blur_ratio"},
    help="Dataset statistics (blurred-area ratio curves, LODE Figure 3).",
)
