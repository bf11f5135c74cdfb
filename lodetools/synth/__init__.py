"""Blur synthesis from sharp frames: streaming frame averaging (LODE Eqs. (6)-(7))."""

from lodetools.synth.averaging import (  # noqa: F401
    Noise, Saturation, Window, WindowAverager, WindowResult, average_frames, check_window_length,
    inverse_lut, odd_lengths, plan_windows, synthesize_windows,
)
