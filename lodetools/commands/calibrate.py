"""``lodetools calibrate crf|color``."""

from lodetools.commands._lazy import lazy_group

command = lazy_group(
    "calibrate",
    {"crf": "calibrate_crf", "color": "calibrate_color"},
    help="Calibrate a camera: its response curve (crf) or its location-dependent colour cast (color).",
)
