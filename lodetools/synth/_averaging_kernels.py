"""Compiled (numba) kernels for 8-bit frame averaging: ``g(mean(g^-1(frames)))``, LODE Eqs. (6)-(7).

The default path of :class:`lodetools.synth.averaging.WindowAverager` (8-bit
frames, no saturation boost, no noise, 8-bit output) runs here, fused: the
window's frames are walked in blocks of :data:`BLOCK` values that stay in the
L1/L2 cache, and per block

1. ``acc = g^-1(f_0) + g^-1(f_1) + ...`` in float32, frame after frame (the same
   additions, in the same order, as the numpy path: bit-identical sums). The
   lookup ``g^-1`` (LODE Eq. (7) for ``gamma:2.2``: ``x**2.2``) is a 256-entry
   float32 table. On CPUs with AVX-512 VBMI it is done 64 codes at a time with
   byte permutations (``vpermi2b``; the table split into its 4 byte planes,
   held in 16 registers; the planes joined by in-lane unpacks, so the
   accumulator keeps each group of 64 values in :func:`lane_order`). AVX-512
   gathers were measured first: about 2 cycles per element on the build
   machine (AMD Zen 4), 3x slower than the permutes (0.45 cycle per value).
   Elsewhere a plain loop (gathers or scalar loads, as LLVM chooses).
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
   path. With VBMI and ``K = 1024``, one correction (``gamma:2.2``, ``srgb``,
   ``linear``), both lookups are byte permutes too (``T`` in 8 pieces of 128
   entries, ``t`` in 4 byte planes); otherwise gathers.

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
from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.compiler import Compiler
from numba.extending import intrinsic

from lodetools.parallel import cpu_threads

#: values per cache block: a multiple of 64 (vector width of the VBMI lookup) and of 3 (RGB)
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


# ----------------------------------------------------------------------------- CPU features
def vbmi_available() -> bool:
    """Whether numba compiles for a CPU with AVX-512 VBMI (``vpermi2b``).

    ``False`` when ``NUMBA_CPU_NAME`` asks for another target than the host,
    or ``LODETOOLS_NO_VBMI`` is set (to exercise the portable kernel).
    """
    if os.environ.get("LODETOOLS_NO_VBMI"):
        return False
    if numba.config.CPU_NAME not in (None, "host"):
        return False
    try:
        from llvmlite import binding as llvm

        feats = llvm.get_host_cpu_features()
        return bool(feats.get("avx512vbmi")) and bool(feats.get("avx512bw"))
    except Exception:  # pragma: no cover - exotic platforms
        return False


# ----------------------------------------------------------------------------- g^-1 lookup, VBMI
_I8, _I16, _I32, _I64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
_F32 = ir.FloatType()
_V64B = ir.VectorType(_I8, 64)


def _interleave(builder, a, b, n, width):
    """``a0 b0 a1 b1 ...``: two ``<n x iW>`` vectors into one ``<2n x iW>``."""
    mask = [k for i in range(n) for k in (i, n + i)]
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, 2 * n), mask))


def _lane_floats(builder, perm, tabs, idx):
    """``tab[idx]`` as ``<64 x float>`` in *lane order* (see :func:`lane_order`).

    The 4 byte planes are joined by in-lane unpacks (``vpunpck{l,h}{bw,wd}``:
    8 shuffles), cheaper than a true interleave; value ``16 L + 4 k + i`` of
    the 64 lands at position ``16 k + 4 L + i`` (``L, k < 4``, ``i < 4``).
    """
    byte = [_vbmi_lookup(builder, perm, tabs[4 * k:4 * k + 4], idx) for k in range(4)]

    def unpack(a, b, lanes, half, width):
        per = 16 // width  # elements per 128-bit lane
        lo = half * per // 2
        mask = [x for L in range(4) for i in range(lo, lo + per // 2) for x in (per * L + i, lanes + per * L + i)]
        return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, len(mask)), mask))

    w16 = ir.VectorType(_I16, 32)
    lo01, hi01 = (builder.bitcast(unpack(byte[0], byte[1], 64, h, 1), w16) for h in (0, 1))
    lo23, hi23 = (builder.bitcast(unpack(byte[2], byte[3], 64, h, 1), w16) for h in (0, 1))
    quads = [unpack(lo01, lo23, 32, 0, 2), unpack(lo01, lo23, 32, 1, 2),
             unpack(hi01, hi23, 32, 0, 2), unpack(hi01, hi23, 32, 1, 2)]  # <32 x i16> each
    a = builder.shuffle_vector(quads[0], quads[1], ir.Constant(ir.VectorType(_I32, 64), list(range(64))))
    b = builder.shuffle_vector(quads[2], quads[3], ir.Constant(ir.VectorType(_I32, 64), list(range(64))))
    whole = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, 128), list(range(128))))
    return builder.bitcast(whole, ir.VectorType(_F32, 64))


def lane_order(n: int) -> np.ndarray:
    """Where the VBMI accumulator keeps each value: ``acc[q]`` holds value ``order[q]``.

    Within each full group of 64 values, position ``16 k + 4 L + i`` holds
    value ``16 L + 4 k + i`` (a transpose: its own inverse); the last
    ``n % 64`` values stay in place. The VBMI quantiser undoes it.
    """
    q = np.arange(64)
    e = 16 * ((q // 4) % 4) + 4 * (q // 16) + q % 4
    order = np.arange(n)
    nv = n - n % 64
    order[:nv] = (np.arange(0, nv, 64)[:, None] + e[None, :]).reshape(-1)
    return order


@intrinsic
def _lut_pass_vbmi(typingctx, acc, frame, start, n, planes, first):
    """``acc[i] (=|+=) lut[frame[start + i]]`` for ``i < n - n % 64``, 64 codes per step.

    ``planes`` holds the float32 table's 4 byte planes (``planes[256 k + c]`` =
    byte ``k`` of ``lut[c]``); each plane is looked up with two ``vpermi2b``
    (codes below / from 128) and a select on the code's top bit, then the 4
    planes are interleaved back into 64 float32 values.
    """
    sig = types.void(acc, frame, start, n, planes, first)

    def codegen(context, builder, signature, args):
        acc_v, fr_v, start_v, n_v, pl_v, first_v = args
        acc_a = context.make_array(signature.args[0])(context, builder, acc_v)
        fr_a = context.make_array(signature.args[1])(context, builder, fr_v)
        pl_a = context.make_array(signature.args[4])(context, builder, pl_v)
        tabs = _load_tables(builder, pl_a.data, 16)
        perm = _vpermi2b(builder)
        frp = builder.gep(builder.bitcast(fr_a.data, _I8.as_pointer()), [start_v])
        accp = builder.bitcast(acc_a.data, _F32.as_pointer())
        v64f = ir.VectorType(_F32, 64)
        with cgutils.for_range(builder, builder.udiv(n_v, ir.Constant(_I64, 64))) as loop:
            off = builder.mul(loop.index, ir.Constant(_I64, 64))
            idx = builder.load(builder.bitcast(builder.gep(frp, [off]), _V64B.as_pointer()), align=1)
            vals = _lane_floats(builder, perm, tabs, idx)
            ap = builder.bitcast(builder.gep(accp, [off]), v64f.as_pointer())
            with builder.if_else(first_v) as (then, other):
                with then:
                    builder.store(vals, ap, align=4)
                with other:
                    builder.store(builder.fadd(builder.load(ap, align=4), vals), ap, align=4)
        return context.get_dummy_value()

    return sig, codegen


def _load_tables(builder, data, count):
    """``count`` consecutive 64-byte vectors from an array's data pointer (the lookup tables)."""
    base = builder.bitcast(data, _I8.as_pointer())
    return [builder.load(builder.bitcast(builder.gep(base, [ir.Constant(_I64, 64 * j)]), _V64B.as_pointer()),
                         align=1) for j in range(count)]


def _vpermi2b(builder):
    """The AVX-512 VBMI two-table byte permute (``vpermi2b``) as an LLVM intrinsic."""
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V64B, [_V64B] * 3),
                                          "llvm.x86.avx512.vpermi2var.qi.512")


def _vbmi_lookup(builder, perm, tabs, idx):
    """``tab[idx]`` for 64 byte indices, ``tab`` a 256-byte table held in 4 registers."""
    lo = builder.call(perm, [tabs[0], idx, tabs[1]])
    hi = builder.call(perm, [tabs[2], idx, tabs[3]])
    return builder.select(builder.icmp_signed("<", idx, ir.Constant(_V64B, None)), hi, lo)


def _vbmi_floats(builder, perm, tabs, idx):
    """``tab[idx]`` as ``<64 x float>`` for a 256-entry float32 table given as 4 byte planes."""
    byte = [_vbmi_lookup(builder, perm, tabs[4 * k:4 * k + 4], idx) for k in range(4)]
    w01 = builder.bitcast(_interleave(builder, byte[0], byte[1], 64, 8), ir.VectorType(_I16, 64))
    w23 = builder.bitcast(_interleave(builder, byte[2], byte[3], 64, 8), ir.VectorType(_I16, 64))
    return builder.bitcast(_interleave(builder, w01, w23, 64, 16), ir.VectorType(_F32, 64))


@intrinsic
def _quantise_pass_vbmi(typingctx, acc, n, inv, qtabs, out, start):
    """``out[start + i] = code(clip(acc[i] * inv, 0, 1))`` for ``i < n - n % 64``, 64 values per step.

    ``qtabs``: 1024 bytes of bucket codes ``T[b]`` (``K = 1024``, ``b = min(int(sqrt(m) * K),
    K - 1)``) then the 4 byte planes of ``U[c] = t_{c+1}`` (``U[255] = inf``); the code is
    ``T[b] + (m >= U[T[b]])`` (one correction). Both lookups are ``vpermi2b``: the bucket
    table in 8 pieces of 128 entries chosen by ``b >> 7``.
    """
    sig = types.void(acc, n, inv, qtabs, out, start)

    def codegen(context, builder, signature, args):
        acc_v, n_v, inv_v, q_v, out_v, start_v = args
        acc_a = context.make_array(signature.args[0])(context, builder, acc_v)
        q_a = context.make_array(signature.args[3])(context, builder, q_v)
        out_a = context.make_array(signature.args[4])(context, builder, out_v)
        tabs = _load_tables(builder, q_a.data, 32)
        perm = _vpermi2b(builder)
        v64f, v64i = ir.VectorType(_F32, 64), ir.VectorType(_I32, 64)
        sqrt = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v64f, [v64f]),
                                              "llvm.sqrt.v64f32")
        accp = builder.bitcast(acc_a.data, _F32.as_pointer())
        outp = builder.gep(builder.bitcast(out_a.data, _I8.as_pointer()), [start_v])

        def splat(const, vt):
            return ir.Constant(vt, [const] * 64)

        unlane = ir.Constant(ir.VectorType(_I32, 64), [int(x) for x in lane_order(64)])  # back to value order
        inv_vec = builder.insert_element(ir.Constant(v64f, None), inv_v, ir.Constant(_I32, 0))
        inv_vec = builder.shuffle_vector(inv_vec, ir.Constant(v64f, None), ir.Constant(v64i, [0] * 64))
        with cgutils.for_range(builder, builder.udiv(n_v, ir.Constant(_I64, 64))) as loop:
            off = builder.mul(loop.index, ir.Constant(_I64, 64))
            a = builder.load(builder.bitcast(builder.gep(accp, [off]), v64f.as_pointer()), align=4)
            m = builder.fmul(a, inv_vec)
            m = builder.select(builder.fcmp_ordered(">", m, splat(0.0, v64f)), m, splat(0.0, v64f))
            m = builder.select(builder.fcmp_ordered("<", m, splat(1.0, v64f)), m, splat(1.0, v64f))
            b = builder.fptosi(builder.fmul(builder.call(sqrt, [m]), splat(1024.0, v64f)), v64i)
            b = builder.select(builder.icmp_signed("<", b, splat(1023, v64i)), b, splat(1023, v64i))
            lo7 = builder.trunc(builder.and_(b, splat(127, v64i)), _V64B)
            piece = builder.trunc(builder.lshr(b, splat(7, v64i)), _V64B)
            code = builder.call(perm, [tabs[0], lo7, tabs[1]])
            for g in range(1, 8):
                r = builder.call(perm, [tabs[2 * g], lo7, tabs[2 * g + 1]])
                code = builder.select(builder.icmp_unsigned("==", piece, ir.Constant(_V64B, [g] * 64)), r, code)
            u = _vbmi_floats(builder, perm, tabs[16:], code)
            up = builder.zext(builder.fcmp_ordered(">=", m, u), _V64B)
            res = builder.shuffle_vector(builder.add(code, up), ir.Constant(_V64B, None), unlane)
            builder.store(res, builder.bitcast(builder.gep(outp, [off]), _V64B.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


def lut_planes(lut: np.ndarray) -> np.ndarray:
    """The 4 byte planes of a 256-entry float32 table: ``(1024,) uint8``, plane-major."""
    b = np.ascontiguousarray(np.asarray(lut, np.float32).reshape(256)).view(np.uint8).reshape(256, 4)
    if np.little_endian is False:  # pragma: no cover
        b = b[:, ::-1]
    return np.ascontiguousarray(b.T).reshape(-1)


# ----------------------------------------------------------------------------- block stages
@_kernel
def _accumulate_vbmi(frames, s, n, lut, planes, acc):
    """acc[:n] = sum_k lut[frames[k][s:s + n]] (float32, frames in order); VBMI lookups."""
    nv = n - n % 64
    lut1 = lut[0]
    f0 = frames[0]
    _lut_pass_vbmi(acc, f0, s, n, planes, True)
    for p in range(nv, n):
        acc[p] = lut1[f0[s + p]]
    for k in range(1, len(frames)):
        f = frames[k]
        _lut_pass_vbmi(acc, f, s, n, planes, False)
        for p in range(nv, n):
            acc[p] += lut1[f[s + p]]


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
def _accumulate_plain(frames, s, n, lut, planes, acc):
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
def _quantise_vbmi(acc, s, n, inv, table, thr, scale, two, qtabs, out):
    """As :func:`_quantise` (one channel, ``K = 1024``, one correction), 64 values per VBMI step."""
    nv = n - n % 64
    _quantise_pass_vbmi(acc, nv, inv, qtabs, out, s)
    _quantise1(acc[nv:n], inv, table[0], thr[0], scale, two, out[s + nv:s + n])


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
def _average_vbmi(frames, lut, planes, inv, table, thr, scale, two, out, block, b0, b1):
    for i in range(b0, b1):
        acc = np.empty(block, np.float32)
        n = min(block, out.size - i * block)
        _accumulate_vbmi(frames, i * block, n, lut, planes[:1024], acc)
        if planes.size > 1024:
            _quantise_vbmi(acc, i * block, n, inv, table, thr, scale, two, planes[1024:], out)
        else:
            _quantise(acc, i * block, n, inv, table, thr, scale, two, out)


@njit(**_average_opts)
def _average_plain(frames, lut, planes, inv, table, thr, scale, two, out, block, b0, b1):
    for i in range(b0, b1):
        acc = np.empty(block, np.float32)
        n = min(block, out.size - i * block)
        _accumulate_plain(frames, i * block, n, lut, planes, acc)
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

    @property
    def vbmi_tables(self) -> np.ndarray:
        """The tables of the VBMI quantiser (``K = 1024``, one correction, one channel), else empty.

        1024 bytes of bucket codes ``T[b]`` then the 4 byte planes of ``U[c] = t_{c + 1}``.
        """
        if self.buckets != 1024 or self.corrections != 1 or self.table.shape[0] != 1:
            return np.zeros(0, np.uint8)
        return np.concatenate([self.table[0, :1024].astype(np.uint8), lut_planes(self.thresholds[0, 1:257])])


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
                  vbmi: bool | None = None, parallel: bool = False) -> np.ndarray:
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
    vbmi : bool, optional
        Use the AVX-512 VBMI lookup (default: when the CPU has it and ``C = 1``).
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
    if vbmi is None:
        vbmi = vbmi_available()
    vbmi = vbmi and lut.shape[0] == 1
    planes = np.concatenate([lut_planes(lut[0]), quant.vbmi_tables]) if vbmi else np.zeros(1024, np.uint8)
    inv = np.float32(1.0 / len(frames))
    args = (tuple(frames), lut, planes, inv, quant.table, quant.thresholds, np.float32(quant.buckets),
            quant.corrections == 2, out, BLOCK)
    nblk = (out.size + BLOCK - 1) // BLOCK
    fn = _average_vbmi if vbmi else _average_plain
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


def _worker():
    """A lazily started worker thread for the second half of the blocks."""
    global _WORKER
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
