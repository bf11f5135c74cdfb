"""Compiled (numba) kernels for 8-bit frame averaging: ``g(mean(g^-1(frames)))``, LODE Eqs. (6)-(7).

The default path of :class:`lodetools.synth.averaging.WindowAverager` (8-bit
frames, no saturation boost, no noise, 8-bit output) runs here, fused: the
window's frames are walked in blocks of :data:`BLOCK` values that stay in the
L1/L2 cache, and per block

1. ``acc = g^-1(f_0) + g^-1(f_1) + ...`` in float32, frame after frame (the same
   additions, in the same order, as the numpy path: bit-identical sums). The
   lookup ``g^-1`` (LODE Eq. (7) for ``gamma:2.2``: ``x**2.2``) is a 256-entry
   float32 table, looked up by a plain loop (gathers or scalar loads, as LLVM
   chooses). An AVX-512 VBMI byte-permute lookup (``vpermi2b``) was measured
   too and removed: 21 instead of 29 ms of CPU per 1080p window of 11 frames,
   about 2 % of the whole ``synthesize`` command, whose time goes to decoding
   and PNG encoding (``docs/performance.md``); one portable kernel is kept.
2. ``m = clip(acc * (1 / M), 0, 1)`` (float32, as the numpy path) and the
   8-bit output code ``round_half_up(255 * g(m))`` (LODE Eq. (6)) without
   ``pow``: the code is the number of thresholds ``t_j = g^-1((j - 0.5) / 255)``,
   ``j = 1..255``, with ``m >= t_j``. Thresholds are computed in float64 from
   the CRF's definition and rounded *up* to float32, so ``m >= t32_j`` is
   exactly ``m >= t_j``: the code is the exact rounding of ``g(m)``, where the
   numpy path rounds a float32 ``pow`` (the two differ only when ``g(m) * 255``
   is within float32 error of a half-integer, by 1). The lookup: bucket
   ``b = int(sqrt(m) * K)`` (a vector sqrt; in the sqrt domain the codes of a
   gamma-like curve have near-uniform widths), ``code = T[b]`` (the code at
   the bucket's lower edge), then ``ncorr`` (1 or 2) unconditional corrections
   ``code += m >= t[code + 1]``. :func:`build_quantiser` verifies that no
   bucket holds more thresholds than the corrections absorb (the bucket edges
   widened by the float32 rounding of ``sqrt``); a CRF that fails (e.g. a
   table with a near-flat stretch) gets ``None`` and the caller uses the numpy
   path.

:func:`average_codes` splits the blocks in two halves, one on a worker thread
(the kernels release the GIL). numba's ``parallel=True`` with ``prange`` over
the blocks was measured as well: the same wall time with ffmpeg decoding
alongside, more CPU time (spinning OpenMP threads).

References
----------
.. [1] Li et al., "Real-World Deep Local Motion Deblurring" (LODE), AAAI 2023,
   section 3 and appendix A.1, Eqs. (6)-(7).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.core.compiler import Compiler

from lodetools.parallel import cpu_threads

#: values per cache block: a multiple of 3 (RGB) and of 64 (a cache line)
BLOCK = 64 * 3 * 85  # 16320 values: 64 KB of float32 accumulator
#: bucket counts tried by :func:`build_quantiser` (powers of two: ``sqrt(m) * K`` is exact)
BUCKETS = (1024, 2048, 4096, 8192, 16384, 32768, 65536)
_SQRT_MARGIN = 1e-6  # relative error bound of a float32 sqrt (2**-24), with room to spare


class _NoAliasCompiler(Compiler):
    """numba's pipeline with ``noalias`` on array arguments.

    Our kernels never receive overlapping buffers (frames, tables, accumulator
    and output are distinct arrays); telling LLVM so lets it vectorize loops
    that read a table at data-dependent positions while storing elsewhere.
    """

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


def _kernel(fn):
    """``numba.njit`` for the block stages: cached, GIL released, IEEE float32 (no fastmath), noalias."""
    return njit(cache=True, nogil=True, fastmath=False, pipeline_class=_NoAliasCompiler)(fn)


# ----------------------------------------------------------------------------- block stages
@_kernel
def _lut_set(f, lut1, acc):
    """``acc = lut1[f]`` (LLVM may vectorize it: the arguments do not alias)."""
    for p in range(acc.size):
        acc[p] = lut1[f[p]]


@_kernel
def _lut_add(f, lut1, acc):
    """``acc += lut1[f]``."""
    for p in range(acc.size):
        acc[p] += lut1[f[p]]


@_kernel
def _accumulate_plain(frames, s, n, lut, acc):
    """acc[:n] = sum_k lut[c, frames[k][s:s + n]] (channel c = position % C); portable."""
    C = lut.shape[0]
    a = acc[:n]
    if C == 1:
        _lut_set(frames[0][s:s + n], lut[0], a)
        for k in range(1, len(frames)):
            _lut_add(frames[k][s:s + n], lut[0], a)
        return
    for k in range(len(frames)):
        f = frames[k]
        for p in range(n):
            v = lut[(s + p) % C, f[s + p]]
            if k == 0:
                a[p] = v
            else:
                a[p] += v


@_kernel
def _quantise1(acc, inv, table, thr, scale, two, out):
    """8-bit codes of ``clip(acc * inv, 0, 1)`` by bucket table + corrections (one channel)."""
    for p in range(out.size):
        m = min(max(acc[p] * inv, np.float32(0.0)), np.float32(1.0))
        c = table[np.int32(np.sqrt(m) * scale)]
        c += np.int32(m >= thr[c + 1])
        if two:
            c += np.int32(m >= thr[c + 1])
        out[p] = np.uint8(c)


@_kernel
def _quantise(acc, s, n, inv, table, thr, scale, two, out):
    """``out[s:s + n]`` = 8-bit codes of ``clip(acc[:n] * inv, 0, 1)`` (channel = position % C)."""
    C = table.shape[0]
    if C == 1:
        _quantise1(acc[:n], inv, table[0], thr[0], scale, two, out[s:s + n])
        return
    for p in range(n):
        ch = (s + p) % C
        m = min(max(acc[p] * inv, np.float32(0.0)), np.float32(1.0))
        c = table[ch, np.int32(np.sqrt(m) * scale)]
        c += np.int32(m >= thr[ch, c + 1])
        if two:
            c += np.int32(m >= thr[ch, c + 1])
        out[s + p] = np.uint8(c)


_average_opts = dict(cache=True, nogil=True, fastmath=False)


# The whole-window kernels, over blocks b0..b1 - 1: per cache block, accumulate then quantise.
# (numba's parallel=True / prange over the blocks was measured too: the same wall time with the
# decoder running, more CPU time (OpenMP threads spin), so two plain threads split the blocks.)
@njit(**_average_opts)
def _average_plain(frames, lut, inv, table, thr, scale, two, out, block, b0, b1):
    for i in range(b0, b1):
        acc = np.empty(block, np.float32)
        n = min(block, out.size - i * block)
        _accumulate_plain(frames, i * block, n, lut, acc)
        _quantise(acc, i * block, n, inv, table, thr, scale, two, out)


# ----------------------------------------------------------------------------- quantiser tables
@dataclass(frozen=True)
class Quantiser:
    """Bucket tables for the 8-bit output code (see the module docstring).

    Attributes
    ----------
    thresholds : ndarray of float32, shape (C, 258)
        ``[-inf, t_1 .. t_255, +inf, +inf]``, ``t_j`` = smallest float32 >= ``g^-1((j - 0.5) / 255)``.
    table : ndarray of int32, shape (C, K + 1)
        Code at the lower edge of bucket ``b = int(sqrt(m) * K)``.
    buckets : int
        ``K``.
    corrections : int
        1 or 2: the most thresholds any bucket holds.
    """

    thresholds: np.ndarray
    table: np.ndarray
    buckets: int
    corrections: int


def _f32_ceil(t: np.ndarray) -> np.ndarray:
    """The smallest float32 >= each float64 value."""
    t32 = t.astype(np.float32)
    low = t32.astype(np.float64) < t
    t32[low] = np.nextafter(t32[low], np.float32(np.inf))
    return t32


def code_thresholds(crf, channels: int = 3) -> np.ndarray:
    """``t_j = g^-1((j - 0.5) / 255)``, ``j = 1..255``, float64, shape ``(C, 255)``.

    ``m >= t_j`` exactly when ``g(m) * 255 + 0.5 >= j`` (``g`` increasing), so
    the 8-bit code ``floor(g(m) * 255 + 0.5)`` (LODE Eq. (6), rounded half up)
    is the number of thresholds ``<= m``. For a table CRF ``g`` is the
    piecewise-linear inverse of the table (as :meth:`CRF.to_display`), so
    ``t_j`` is the midpoint of entries ``j - 1`` and ``j``.
    """
    y = (np.arange(1, 256, dtype=np.float64) - 0.5) / 255.0
    return crf.decode(np.repeat(y[None, :, None], channels, axis=2))[0].T.copy()


def _bucket_table(t32: np.ndarray, K: int):
    """(lower-edge codes, most thresholds in one bucket) for one channel's thresholds."""
    t = t32.astype(np.float64)
    b = np.arange(K + 1, dtype=np.float64)
    lo = (b / K * (1.0 - _SQRT_MARGIN)) ** 2
    hi = np.minimum(((b + 1.0) / K * (1.0 + _SQRT_MARGIN)) ** 2, 1.0)
    code_lo = np.searchsorted(t, lo, side="right")
    code_hi = np.searchsorted(t, hi, side="right")
    return code_lo.astype(np.int32), int((code_hi - code_lo).max())


def build_quantiser(crf, channels: int = 3) -> Quantiser | None:
    """Bucket tables for ``crf``, or ``None`` if no bucket count passes the check.

    The smallest ``K`` in :data:`BUCKETS` whose every bucket holds at most one
    threshold is taken (one correction); else the smallest with at most two.
    Channels with identical thresholds share one table (``C = 1``).
    """
    t = code_thresholds(crf, channels)
    if all(np.array_equal(t[0], t[c]) for c in range(1, t.shape[0])):
        t = t[:1]
    if not np.all(np.diff(t, axis=1) > 0):
        return None
    t32 = _f32_ceil(t)
    for ncorr in (1, 2):
        for K in BUCKETS:
            tables, worst = zip(*(_bucket_table(row, K) for row in t32))
            if max(worst) <= ncorr:
                thr = np.full((t32.shape[0], 258), np.inf, np.float32)
                thr[:, 0] = -np.inf
                thr[:, 1:256] = t32
                return Quantiser(thr, np.ascontiguousarray(np.stack(tables)), K, ncorr)
    return None


# ----------------------------------------------------------------------------- entry point
def average_codes(frames, lut: np.ndarray, quant: Quantiser, out: np.ndarray, *,
                  parallel: bool = False) -> np.ndarray:
    """8-bit ``g(mean(g^-1(frames)))`` (LODE Eqs. (6)-(7)) of a window of 8-bit frames.

    Parameters
    ----------
    frames : tuple of ndarray
        ``M`` C-contiguous uint8 arrays of ``N`` values each (flat views of
        ``(H, W, C)`` frames; all read-only or all writeable, so that the tuple
        has one element type).
    lut : ndarray of float32, shape (C, 256)
        ``g^-1`` per channel (``C = 1`` when the channels share it).
    quant : Quantiser
        From :func:`build_quantiser` (same ``C`` as ``lut``, or 1).
    out : ndarray of uint8, shape (N,)
        Receives the codes (channel of value ``i`` is ``i % C``).
    parallel : bool
        Split the blocks in two halves, one computed on a worker thread (the
        kernel releases the GIL), one on the calling thread, when
        :func:`lodetools.parallel.cpu_threads` allows more than one thread.

    Returns
    -------
    ndarray
        ``out``.
    """
    lut = np.ascontiguousarray(lut, np.float32)
    inv = np.float32(1.0 / len(frames))
    args = (tuple(frames), lut, inv, quant.table, quant.thresholds, np.float32(quant.buckets),
            quant.corrections == 2, out, BLOCK)
    nblk = (out.size + BLOCK - 1) // BLOCK
    fn = _average_plain
    if parallel and nblk > 1 and cpu_threads(nblk, min_work=2) > 1:
        # two halves: one on a worker thread, one here (the kernel releases the GIL); one thread
        # when the cores are busy or in a worker process (the thread policy of lodetools.parallel)
        half = nblk // 2
        job = _worker().submit(fn, *args, half, nblk)
        fn(*args, 0, half)
        job.result()
    else:
        fn(*args, 0, nblk)
    return out


_WORKER = None
_WORKER_LOCK = threading.Lock()


def _worker():
    """A lazily started worker thread for the second half of the blocks."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            from concurrent.futures import ThreadPoolExecutor

            _WORKER = ThreadPoolExecutor(1, thread_name_prefix="lodetools-average")
        return _WORKER


def _forget_worker():
    """In a forked child the parent's worker thread does not exist: start a new one when needed."""
    global _WORKER
    _WORKER = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)
