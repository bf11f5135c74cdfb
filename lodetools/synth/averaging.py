"""Streaming frame averaging: blurred = g(mean(g^-1(frames))) (LODE Eqs. (6)-(7)).

The GoPro/REDS/LODE recipe turns M consecutive sharp frames of a high-frame-rate
video into one blurred frame by averaging them in linear light, and takes the
middle frame as the sharp ground truth. This module is the fast core of that
recipe: it reads each frame once and keeps at most the current window's M
frames (read-only decoder buffers by reference). A clip is never held in
memory; :class:`WindowAverager` also has a running-sum mode that keeps no
frame at all.

Two implementations of the same formula:

- the default path (8-bit frames, 8-bit output, no saturation boost, no
  noise: what ``synthesize`` does unless asked otherwise) is a fused numba
  kernel, :mod:`lodetools.synth._averaging_kernels`: per cache block, the
  frames' codes are looked up (``g^-1``), summed in float32, averaged and
  turned into 8-bit codes by comparison with the thresholds
  ``g^-1((j - 0.5) / 255)`` (no ``pow``; the exact rounding of ``g``);
- everything else (16-bit frames or output, float output, ``--saturation``,
  ``--noise``, the running-sum mode, and a table CRF too irregular for the
  kernel's bucket check) runs in numpy in blocks of rows that stay in the CPU
  cache: ``cv2.LUT`` on 8-bit input (a gather on 16-bit input), a float32
  sum, ``g`` by ``pow`` (or the CRF's own function), rounding half up.

The two agree within 1 gray level, and on all but values whose ``g(m) * 255``
lies within float32 rounding of a half-integer (tests: >= 99.9 % identical).

Beyond the anchors, off by default:

- saturation: a clipped pixel's true radiance is unknown; as RSBlur does, its
  linear value is boosted by ``a`` (``a ~ U(lo, hi)`` per window) before
  averaging, and the blurred value is clipped after (reference notes, RSBlur).
- noise: Poisson-Gaussian sensor noise added to the blurred image in linear
  light, ``y = a * Poisson(x / a) + N(0, b^2)``.

References
----------
.. [1] Li et al., "Real-World Deep Local Motion Deblurring" (LODE), AAAI 2023,
   section 3 and appendix A.1, Eqs. (6)-(7).
.. [2] Nah et al., "Deep Multi-Scale CNN for Dynamic Scene Deblurring" (GoPro), CVPR 2017.
.. [3] Rim et al., "Realistic Blur Synthesis for Learning Image Deblurring" (RSBlur), ECCV 2022.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import cv2
import numpy as np

from lodetools.color.crf import CRF
from lodetools.errors import BadConfig, BadInput


#: split the fused kernel's blocks over two threads (measured: benchmarks/bench_synthesize.py)
KERNEL_THREADS = True


@dataclass(frozen=True)
class Saturation:
    """RSBlur-style boost of clipped pixels before averaging (off when ``None``).

    Attributes
    ----------
    gain_min, gain_max : float
        The boost ``a`` added to a clipped pixel's linear value (all channels) is
        drawn per window from ``U(gain_min, gain_max)`` (RSBlur: 0.25 to 1.75).
    threshold : float
        A pixel counts as clipped when any channel's display value is at least
        this fraction of the top code (1.0: only the top code itself).
    """

    gain_min: float = 0.25
    gain_max: float = 1.75
    threshold: float = 1.0


@dataclass(frozen=True)
class Noise:
    """Poisson-Gaussian sensor noise on the blurred image, in linear light.

    ``y = shot * Poisson(x / shot) + N(0, read**2)``, so ``Var(y) = shot * x + read**2``.
    """

    shot: float = 0.002
    read: float = 0.002


@dataclass
class Window:
    """One blur window: frames ``start .. start + m - 1`` of a clip."""

    start: int
    m: int

    @property
    def middle(self) -> int:
        """Index of the sharp (middle) frame."""
        return self.start + self.m // 2

    @property
    def stop(self) -> int:
        return self.start + self.m


@dataclass
class WindowResult:
    """A synthesised pair: ``blur`` (float32 display values) and ``sharp`` (the frame as decoded)."""

    window: Window
    blur: np.ndarray
    sharp: np.ndarray
    provenance: dict = field(default_factory=dict)


def code_max(dtype) -> int:
    """The top code of an integer image dtype (255 or 65535)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255
    if dtype == np.uint16:
        return 65535
    raise BadInput(f"frames must be 8- or 16-bit integers, got {dtype}")


def inverse_lut(crf: CRF, dtype=np.uint8, channels: int = 3) -> np.ndarray:
    """``g^-1`` tabulated for every integer code: the linear value of each code.

    Evaluated in float64 at the exact code values ``k / top`` and rounded to
    float32 once, so a table CRF given at every code returns its own entries
    (interpolating at float32 code positions would blur a steep table).

    Parameters
    ----------
    crf : CRF
    dtype : {uint8, uint16}
        Code range of the frames.
    channels : int

    Returns
    -------
    ndarray of float32, shape ``(2**bits, channels)``
    """
    top = code_max(dtype)
    codes = np.arange(top + 1, dtype=np.float64) / top
    lut = crf.decode(np.repeat(codes[:, None, None], channels, axis=2))  # (top + 1, 1, C) image
    return np.ascontiguousarray(lut[:, 0, :], dtype=np.float32)


class WindowAverager:
    """Average one window in linear light: ``g(mean(g^-1(frames)))`` (LODE Eqs. (6)-(7)).

    Parameters
    ----------
    crf : CRF
        The camera response ``g`` (LODE Eq. (7) for ``gamma:2.2``).
    shape : tuple
        ``(H, W, 3)`` of the frames.
    dtype : {uint8, uint16}
    saturation : Saturation, optional
    hold : bool
        ``True`` (default): keep the window's frames (references to the
        decoder's buffers, at most M of them) and compute the result in
        blocks that stay in the CPU cache (writeable frames are
        copied, read-only ones referenced): each block of every
        frame is looked up (``g^-1``), summed, averaged, mapped back (``g``)
        and quantised while in cache, so the float32 sum never travels
        through main memory. ``False``: a running float32 sum over whole
        frames (memory: one accumulator, no frame kept; numpy path).
    kernel : bool
        Use the fused numba kernel for :meth:`blurred_codes` with 8-bit
        output and no noise, when it applies (``hold``, 8-bit frames, no
        ``saturation``, a CRF that passes the kernel's bucket check; see
        :attr:`uses_kernel`). ``False`` forces the numpy path.

    Notes
    -----
    ``g^-1`` is a lookup table on the integer codes (several times faster
    than ``pow``); ``g`` is applied once per window. The numpy path serves
    16-bit frames and output, float output (:meth:`blurred`), saturation and
    noise (all off by default in ``synthesize``).

    References
    ----------
    .. [1] Li et al., "Real-World Deep Local Motion Deblurring" (LODE), AAAI 2023, Eqs. (6)-(7).
    """

    def __init__(self, crf: CRF, shape, dtype=np.uint8, saturation: Saturation | None = None,
                 hold: bool = True, kernel: bool = True):
        self.crf = crf
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.top = code_max(self.dtype)
        chans = self.shape[2] if len(self.shape) == 3 else 1
        lut = inverse_lut(crf, self.dtype, chans)
        if self.dtype == np.uint8:
            # cv2.LUT: one (256,) table when the channels share the curve (faster), else (256, 1, C)
            same = all(np.array_equal(lut[:, 0], lut[:, c]) for c in range(chans))
            self._lut = lut[:, 0].copy() if same else np.ascontiguousarray(lut.reshape(256, 1, chans))
        else:
            self._lut = lut
        self.saturation = saturation
        self.hold = bool(hold)
        # row blocks of about 1 MB of float32: they stay in the CPU cache
        row = int(np.prod(self.shape[1:]))
        self._rows = max(1, (1 << 18) // max(row, 1))
        nb = min(self._rows, self.shape[0])
        self._blk = np.empty((nb,) + self.shape[1:], np.float32)
        self._tmp = np.empty((nb,) + self.shape[1:], np.float32)
        self._acc = None if self.hold else np.zeros(self.shape, np.float32)
        self._held: list = []
        self._gain = 0.0
        self._sat_code = None
        if saturation is not None:
            self._sat_code = int(np.ceil(saturation.threshold * self.top - 1e-9))
        self.count = 0
        # the fused kernel (LODE Eqs. (6)-(7), _averaging_kernels): 8-bit frames held, no saturation
        self._quant = None
        if self.hold and self.dtype == np.uint8 and saturation is None and kernel:
            from lodetools.synth import _averaging_kernels as kern

            self._quant = kern.build_quantiser(crf, chans)  # None: this CRF fails the bucket check
            self._kernel_lut = np.ascontiguousarray(lut.T[:self._quant.table.shape[0]]) \
                if self._quant is not None else None

    @property
    def uses_kernel(self) -> bool:
        """Whether 8-bit output without noise goes through the compiled kernel."""
        return self._quant is not None

    def reset(self, gain: float = 0.0) -> None:
        """Start a new window; ``gain`` is this window's saturation boost ``a``."""
        self._gain = float(gain)
        self._held = []
        self.count = 0

    def _linear(self, frame: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``g^-1(frame)`` into ``out`` (same number of rows as ``frame``)."""
        if self.dtype == np.uint8:
            cv2.LUT(frame, self._lut, dst=out)
        elif frame.ndim == 3:
            for c in range(frame.shape[2]):
                out[..., c] = np.take(self._lut[:, c], frame[..., c])
        else:
            out[...] = np.take(self._lut[:, 0], frame)
        if self._sat_code is not None and self._gain:
            # RSBlur-style: a clipped pixel's radiance is unknown; boost it by the window's gain
            clipped = frame.max(axis=2) >= self._sat_code if frame.ndim == 3 else frame >= self._sat_code
            boost = clipped.astype(np.float32) * np.float32(self._gain)
            out += boost[..., None] if frame.ndim == 3 else boost
        return out

    def add(self, frame: np.ndarray) -> None:
        """Add one frame (integer codes, same shape and dtype as the averager's).

        In ``hold`` mode a read-only frame (as :func:`lodetools.io.video.iter_frames`
        yields: views of immutable decoder buffers) is kept by reference, a
        writeable one is copied (its reader may reuse the buffer).
        """
        frame = np.asarray(frame)
        if frame.shape != self.shape or frame.dtype != self.dtype:
            raise BadInput(f"frame of shape {frame.shape} {frame.dtype} in a clip of "
                           f"{self.shape} {self.dtype} frames")
        if self.hold:
            # a read-only frame (a decoder's immutable buffer) is kept by reference; a writeable
            # one could be reused by its reader for the next frame, so it is copied
            if frame.flags.writeable or not frame.flags.c_contiguous:
                frame = np.array(frame, order="C")
                frame.flags.writeable = False  # every held frame read-only: one type for the kernel
            self._held.append(frame)
        elif self.count == 0:  # the first frame of a window starts the sum (no zero fill)
            self._linear(frame, self._acc)
        else:
            step = self._rows
            for r in range(0, self.shape[0], step):
                acc = self._acc[r:r + step]
                np.add(acc, self._linear(frame[r:r + step], self._tmp[:acc.shape[0]]), out=acc)
        self.count += 1

    def _mean_blocks(self):
        """Yield ``(r0, r1, mean linear block)``; the block is an internal buffer."""
        if self.count == 0:
            raise ValueError("no frame added")
        inv = np.float32(1.0 / self.count)
        if not self.hold:
            np.multiply(self._acc, inv, out=self._acc)
            yield 0, self.shape[0], self._acc
            return
        step = self._rows
        for r in range(0, self.shape[0], step):
            n = min(step, self.shape[0] - r)
            acc, tmp = self._blk[:n], self._tmp[:n]
            self._linear(self._held[0][r:r + n], acc)
            for f in self._held[1:]:
                np.add(acc, self._linear(f[r:r + n], tmp), out=acc)
            np.multiply(acc, inv, out=acc)
            yield r, r + n, acc

    def _display_blocks(self, noise, rng):
        """Yield ``(r0, r1, g(clip(mean [+ noise])))`` blocks, float32 (LODE Eq. (6))."""
        for r0, r1, lin in self._mean_blocks():
            if noise is not None:
                lin = add_poisson_gaussian(lin, noise, rng)
            np.clip(lin, 0.0, 1.0, out=lin)
            yield r0, r1, self.crf.encode(lin, out=lin)  # in place; g maps [0, 1] into [0, 1]
        self._held = []
        self.count = 0

    def linear_mean(self) -> np.ndarray:
        """The mean linear image of the window (a new float32 array); ends the window."""
        out = np.empty(self.shape, np.float32)
        for r0, r1, blk in self._mean_blocks():
            out[r0:r1] = blk
        self._held = []
        self.count = 0
        return out

    def blurred(self, *, noise: Noise | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
        """``B = g(mean(g^-1(frames)))`` (LODE Eq. (6)), a new float32 array in ``[0, 1]``.

        The linear mean is clipped to ``[0, 1]`` before ``g`` (saturation boosts
        are clipped here, after averaging); with ``noise`` it gets
        Poisson-Gaussian noise first (``rng`` required). Ends the window.
        """
        out = np.empty(self.shape, np.float32)
        for r0, r1, disp in self._display_blocks(noise, rng):
            out[r0:r1] = disp
        return out

    def blurred_codes(self, bit_depth: int = 8, *, noise: Noise | None = None,
                      rng: np.random.Generator | None = None) -> np.ndarray:
        """:meth:`blurred` quantised to ``bit_depth`` integers, ``floor(x * top + 0.5)``.

        The same rounding as :func:`lodetools.io.images.float_to_uint` (round
        half up); done block by block. With ``bit_depth=8``, no noise and
        :attr:`uses_kernel`, the fused numba kernel computes it (LODE Eqs.
        (6)-(7), thresholds instead of ``pow``: the exact rounding of ``g``);
        otherwise the numpy path. Ends the window.
        """
        from lodetools.io.images import float_to_uint

        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
        if bit_depth == 8 and noise is None and self._quant is not None:
            return self._kernel_codes()
        out = np.empty(self.shape, np.uint8 if bit_depth == 8 else np.uint16)
        for r0, r1, disp in self._display_blocks(noise, rng):
            if bit_depth == 16:
                out[r0:r1] = float_to_uint(disp, 16)  # float64 rounding, as the image writer does
                continue
            np.multiply(disp, np.float32(255.0), out=disp)
            np.add(disp, np.float32(0.5), out=disp)
            np.clip(disp, 0.0, 255.0, out=disp)
            np.copyto(out[r0:r1], disp, casting="unsafe")  # truncation == floor for values >= 0
        return out

    def _kernel_codes(self) -> np.ndarray:
        """The window's 8-bit blurred codes by the fused kernel (LODE Eqs. (6)-(7)); ends the window."""
        from lodetools.synth import _averaging_kernels as kern

        if self.count == 0:
            raise ValueError("no frame added")
        out = np.empty(self.shape, np.uint8)
        kern.average_codes(tuple(f.reshape(-1) for f in self._held), self._kernel_lut, self._quant,
                           out.reshape(-1), parallel=KERNEL_THREADS)
        self._held = []
        self.count = 0
        return out


def add_poisson_gaussian(linear: np.ndarray, noise: Noise, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian noise: ``shot * Poisson(x / shot) + N(0, read^2)`` (float32).

    Parameters
    ----------
    linear : ndarray
        Linear-light image, values >= 0.
    noise : Noise
    rng : numpy.random.Generator
    """
    if rng is None:
        raise ValueError("noise needs a random generator")
    x = np.clip(linear, 0.0, None).astype(np.float64)
    y = rng.poisson(x / noise.shot) * noise.shot if noise.shot > 0 else x
    if noise.read > 0:
        y = y + rng.normal(0.0, noise.read, size=x.shape)
    return y.astype(np.float32)


def average_frames(frames, crf: CRF, *, saturation_gain: float = 0.0,
                   saturation: Saturation | None = None) -> np.ndarray:
    """Blur a list of integer frames: ``g(mean(g^-1(frames)))`` (LODE Eqs. (6)-(7)).

    Parameters
    ----------
    frames : sequence of ndarray
        uint8 or uint16 ``(H, W, 3)`` frames, display-referred.
    crf : CRF
    saturation_gain : float
        The boost ``a`` of clipped pixels (used when ``saturation`` is given).
    saturation : Saturation, optional

    Returns
    -------
    ndarray of float32
        Blurred display values in ``[0, 1]``.

    Examples
    --------
    A black and a white frame average to half the light, encoded as
    ``0.5 ** (1 / 2.2)`` (LODE Eq. (6)), not to the half code of a plain mean:

    >>> f0, f1 = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
    >>> average_frames([f0, f1], CRF("gamma", gamma=2.2))[0, 0].astype(float).round(4).tolist()
    [0.7297, 0.7297, 0.7297]
    >>> average_frames([f0, f1], CRF("linear"))[0, 0].tolist()
    [0.5, 0.5, 0.5]
    """
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to average")
    avg = WindowAverager(crf, frames[0].shape, frames[0].dtype, saturation)
    avg.reset(saturation_gain if saturation is not None else 0.0)
    for f in frames:
        avg.add(np.asarray(f))
    return avg.blurred()


def check_window_length(m: int) -> int:
    """An allowed window length M: an odd integer >= 3 (the middle frame is the sharp one).

    Raises
    ------
    BadConfig
    """
    if int(m) != m:
        raise BadConfig(f"frame count M={m} is not an integer")
    m = int(m)
    if m < 3:
        raise BadConfig(f"frame count M={m} out of range: need an odd M >= 3")
    if m % 2 == 0:
        raise BadConfig(f"even frame count M={m}: M must be odd so that the sharp image is the middle frame")
    return m


def odd_lengths(m_min: int, m_max: int) -> list[int]:
    """The odd window lengths in ``[m_min, m_max]`` (both bounds must be odd, LODE: 7..13).

    Raises
    ------
    BadConfig
        If a bound is even or below 3, or ``m_min > m_max``.
    """
    lo, hi = check_window_length(m_min), check_window_length(m_max)
    if lo > hi:
        raise BadConfig(f"frame count range {lo}..{hi} is empty (--frames-min > --frames-max)")
    return list(range(lo, hi + 1, 2))


def plan_windows(n_frames: int, lengths: list[int], rng: np.random.Generator,
                 count: int = 1) -> list[Window]:
    """Choose non-overlapping windows in a clip of ``n_frames`` frames.

    Each window's M is drawn uniformly from ``lengths``; the free frames are
    spread as random gaps before, between and after the windows (a uniform
    random composition). ``count = 0`` takes as many back-to-back windows as
    fit (GoPro style).

    Parameters
    ----------
    n_frames : int
    lengths : list of int
        Allowed (odd) window lengths.
    rng : numpy.random.Generator
    count : int
        Windows wanted; 0 for as many as fit.

    Returns
    -------
    list of Window
        In time order; fewer than ``count`` (possibly none) when the clip is short.
    """
    ms: list[int] = []
    total = 0
    while count == 0 or len(ms) < count:
        m = int(lengths[rng.integers(len(lengths))])
        if total + m > n_frames:
            # a shorter window may still fit at the end
            fits = [x for x in lengths if total + x <= n_frames]
            if not fits or count == 0:
                break
            m = int(fits[rng.integers(len(fits))])
        ms.append(m)
        total += m
    if not ms:
        return []
    slack = n_frames - total
    if count == 0:
        gaps = [0] * (len(ms) + 1)
        gaps[0] = int(rng.integers(slack + 1))
    else:
        cuts = np.sort(rng.integers(0, slack + 1, size=len(ms)))
        gaps = np.diff(np.concatenate([[0], cuts])).tolist()
    windows, pos = [], 0
    for m, g in zip(ms, gaps):
        pos += int(g)
        windows.append(Window(pos, m))
        pos += m
    return windows


def synthesize_windows(frames: Iterable, windows: list[Window], crf: CRF, *,
                       saturation: Saturation | None = None, noise: Noise | None = None,
                       rng: np.random.Generator | None = None,
                       bit_depth: int | None = None, reuse: int = 0) -> Iterator[WindowResult]:
    """Stream a clip's frames and yield one blurred/sharp pair per window.

    Parameters
    ----------
    frames : iterable of (int, ndarray)
        ``(index, frame)`` in increasing index order, integer codes
        ``(H, W, 3)``; frames outside every window are ignored. Frames are
        consumed one at a time; at most the current window's M frames are
        kept (by reference, see :class:`WindowAverager`).
    windows : list of Window
        Non-overlapping, in time order.
    crf : CRF
    saturation : Saturation, optional
    noise : Noise, optional
    rng : numpy.random.Generator
        Draws each window's saturation gain and noise (required with either).
    bit_depth : {None, 8, 16}
        ``None`` gives float32 blurred images; 8 or 16 gives them quantised
        (:meth:`WindowAverager.blurred_codes`).
    reuse : int
        0 if every frame has its own buffer; else the reader reuses a
        frame's buffer for the frame ``reuse`` positions later
        (:func:`lodetools.io.video.iter_frames` with ``ring=reuse``): it
        must exceed the longest window (checked), as each window holds its
        frames until its last one has arrived.

    Yields
    ------
    WindowResult
        ``blur`` = ``g(mean(g^-1(frames)))`` (LODE Eq. (6)), float32 or integer codes;
        ``sharp`` = the middle frame exactly as decoded.

    Raises
    ------
    BadInput
        If the frames end before the last window is complete (a truncated clip),
        or frame shapes change within the clip.
    """
    windows = sorted(windows, key=lambda w: w.start)
    for a, b in zip(windows, windows[1:]):
        if b.start < a.stop:
            raise ValueError("windows overlap")
    if (saturation is not None or noise is not None) and rng is None:
        raise ValueError("saturation and noise need a random generator")
    if reuse and windows and reuse <= max(w.m for w in windows):
        raise ValueError(f"a reader reusing buffers after {reuse} frames cannot hold a window of "
                         f"{max(w.m for w in windows)} frames")
    if not windows:
        return
    avg = None
    wi = 0
    sharp = None
    last = -1
    w = windows[0]
    gain = 0.0
    started = False
    for idx, frame in frames:
        if idx <= last:
            raise ValueError("frame indices must increase")
        last = idx
        if idx < w.start:
            continue
        frame = np.asarray(frame)
        if avg is None:
            avg = WindowAverager(crf, frame.shape, frame.dtype, saturation)
        if idx == w.start:
            gain = float(rng.uniform(saturation.gain_min, saturation.gain_max)) if saturation else 0.0
            avg.reset(gain)
            started = True
        elif not started or avg.count != idx - w.start:
            raise BadInput(f"frame {w.start + (avg.count if started else 0)} missing from the clip")
        avg.add(frame)
        if idx == w.middle:
            sharp = frame.copy()
        if idx == w.stop - 1:
            # the window is averaged before the next frame is requested: a reader reusing its
            # buffers (``reuse``) cannot overwrite a held frame
            prov = {"start": w.start, "m": w.m, "middle": w.middle,
                    "frames": [w.start, w.stop - 1]}
            if saturation is not None:
                prov["saturation_gain"] = gain
            blur = avg.blurred(noise=noise, rng=rng) if bit_depth is None else \
                avg.blurred_codes(bit_depth, noise=noise, rng=rng)
            yield WindowResult(w, blur, sharp, prov)
            sharp = None
            started = False
            wi += 1
            if wi == len(windows):
                return
            w = windows[wi]
    raise BadInput(f"clip ended after {last + 1} frames, before window {wi + 1} of {len(windows)} "
                   f"(frames {w.start}..{w.stop - 1}) was complete: truncated or corrupt")
