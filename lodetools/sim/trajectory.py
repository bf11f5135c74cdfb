"""Smooth random motion: object trajectories and camera shake.

Every motion is a low-frequency random Fourier series per component,

    p_d(t) = offset_d + sum_k amp_kd * sin(2 pi freq_kd t + phase_kd),

with ``t`` in seconds. It is infinitely smooth, bounded (an object stays
near the canvas however long the clip), and its speed is bounded by
``sum_k 2 pi freq_kd |amp_kd|``, which is how a target peak speed is set.
Over the fraction of a second a blur window spans, it looks like the
constant-velocity-plus-acceleration motion of a real object; over a whole
clip, objects speed up, slow down and turn.

Object trajectories have four components ``(x, y, angle, log_scale)``
(canvas pixels, degrees counter-clockwise, natural log of the scale);
camera shake has three, ``(dx, dy, angle)``, centred on zero, at
hand-tremor frequencies. Speeds are given per second, so the motion per
frame (hence the blur of an M-frame average) follows the frame rate as for
a real camera. All functions are pure given the generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FourierPath:
    """A smooth bounded path ``p(t)`` in ``D`` dimensions (see module docstring).

    Attributes
    ----------
    offset : ndarray (D,)
    amp, freq, phase : ndarray (K, D)
        Amplitude, frequency (Hz) and phase (radians) of each harmonic.
    """

    offset: np.ndarray
    amp: np.ndarray
    freq: np.ndarray
    phase: np.ndarray

    def __call__(self, t) -> np.ndarray:
        """Position at time(s) ``t`` (seconds): shape ``t.shape + (D,)``."""
        tt = np.asarray(t, dtype=np.float64)[..., None, None]
        return self.offset + np.sum(self.amp * np.sin(2 * np.pi * self.freq * tt + self.phase), axis=-2)

    def velocity(self, t) -> np.ndarray:
        """Time derivative at ``t``, units per second: shape ``t.shape + (D,)``."""
        tt = np.asarray(t, dtype=np.float64)[..., None, None]
        w = 2 * np.pi * self.freq
        return np.sum(self.amp * w * np.cos(w * tt + self.phase), axis=-2)

    def peak_speed(self) -> np.ndarray:
        """Upper bound of ``|dp_d/dt|`` per component: ``sum_k 2 pi freq_k |amp_k|``."""
        return np.sum(2 * np.pi * self.freq * np.abs(self.amp), axis=0)

    def to_dict(self) -> dict:
        """JSON-friendly parameters (for ground-truth files)."""
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("offset", "amp", "freq", "phase")}

    @classmethod
    def from_dict(cls, d: dict) -> "FourierPath":
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("offset", "amp", "freq", "phase")))


def _harmonics(rng, amplitude: np.ndarray, n_harmonics: int):
    """Amplitudes ~ 1/k (random sign and share), phases, and relative frequencies ~ k."""
    amplitude = np.asarray(amplitude, dtype=np.float64)
    k = np.arange(1, n_harmonics + 1, dtype=np.float64)[:, None]
    share = rng.uniform(0.5, 1.5, (n_harmonics, amplitude.size)) / k
    share /= share.sum(axis=0, keepdims=True)
    amp = share * amplitude * rng.choice([-1.0, 1.0], share.shape)
    rel_freq = k * rng.uniform(0.8, 1.25, share.shape)
    phase = rng.uniform(0, 2 * np.pi, share.shape)
    return amp, rel_freq, phase


def fourier_path(rng: np.random.Generator, offset, amplitude, peak_speed, *,
                 groups=None, n_harmonics: int = 3) -> FourierPath:
    """A random smooth path with given amplitudes and peak speeds.

    Parameters
    ----------
    rng : numpy.random.Generator
    offset : array_like (D,)
        Centre of the motion.
    amplitude : array_like (D,)
        Sum of the harmonics' amplitudes per component: the path stays within
        ``offset +- amplitude``.
    peak_speed : array_like (G,)
        Speed bound (units per second) per group of components.
    groups : list of lists of int, optional
        Components sharing one speed bound as a vector (e.g. ``[[0, 1]]`` for
        x and y: the Euclidean norm of the bounds is ``peak_speed``).
        Default: each component its own group.
    n_harmonics : int

    Returns
    -------
    FourierPath
    """
    offset = np.asarray(offset, dtype=np.float64)
    amplitude = np.abs(np.asarray(amplitude, dtype=np.float64))
    groups = groups or [[d] for d in range(offset.size)]
    peak_speed = np.broadcast_to(np.asarray(peak_speed, dtype=np.float64), (len(groups),))
    amp, rel, phase = _harmonics(rng, amplitude, n_harmonics)
    freq = np.zeros_like(rel)
    for g, v in zip(groups, peak_speed):
        # speed bound of a component at base frequency f1: f1 * sum_k 2 pi rel_k |amp_k|
        per_hz = np.sum(2 * np.pi * rel[:, g] * np.abs(amp[:, g]), axis=0)
        norm = float(np.sqrt(np.sum(per_hz ** 2)))
        f1 = v / norm if norm > 0 else 0.0
        freq[:, g] = rel[:, g] * f1
    return FourierPath(offset, amp, freq, phase)


def random_trajectory(rng: np.random.Generator, canvas: tuple[int, int], *,
                      speed=(0.25, 1.5), spin=(0.0, 90.0), zoom: float = 0.15,
                      base_scale: float = 1.0, reach: float = 0.3,
                      n_harmonics: int = 3) -> FourierPath:
    """A random object trajectory ``(x, y, angle, log_scale)`` over a canvas.

    Parameters
    ----------
    rng : numpy.random.Generator
    canvas : (H, W)
        Canvas size in pixels.
    speed : (low, high)
        Peak translation speed, in canvas widths per second (uniform draw).
        At 250 fps and 320 px, ``(0.25, 1.5)`` is about 0.3 to 1.9 px per frame.
    spin : (low, high)
        Peak rotation speed in degrees per second (uniform draw).
    zoom : float
        Largest change of log-scale (0.15 is about +-16 % size).
    base_scale : float
        Scale at the centre of the log-scale motion.
    reach : float
        Translation amplitude as a fraction of the canvas side (uniform in
        ``[reach / 3, reach]``); the centre ``offset`` is drawn so that the
        object's centre stays inside the canvas.
    n_harmonics : int

    Returns
    -------
    FourierPath
        Four components; evaluate with :func:`pose_at`.
    """
    h, w = canvas
    amp_xy = np.array([w, h], np.float64) * rng.uniform(reach / 3, reach, 2)
    lo = np.maximum(amp_xy, 0.1 * np.array([w, h]))
    hi = np.array([w, h]) - lo
    centre = np.where(hi > lo, rng.uniform(0, 1, 2) * (hi - lo) + lo, np.array([w, h]) / 2)
    angle0 = rng.uniform(-180, 180)
    amp_angle = rng.uniform(5, 60)
    amp_zoom = rng.uniform(0.3, 1.0) * zoom
    offset = np.array([centre[0], centre[1], angle0, np.log(base_scale)])
    amplitude = np.array([amp_xy[0], amp_xy[1], amp_angle, amp_zoom])
    v_xy = rng.uniform(*speed) * w
    v_angle = rng.uniform(*spin)
    v_zoom = rng.uniform(0.0, 1.0) * zoom * 2  # up to 2 * zoom log-units per second
    return fourier_path(rng, offset, amplitude, [v_xy, v_angle, v_zoom], groups=[[0, 1], [2], [3]],
                        n_harmonics=n_harmonics)


def camera_shake(rng: np.random.Generator, *, amplitude=(1.0, 4.0), rotation=(0.2, 1.0),
                 frequency=(2.0, 8.0), n_harmonics: int = 3) -> FourierPath:
    """Small smooth global camera motion ``(dx, dy, angle)`` around zero: hand shake.

    Parameters
    ----------
    rng : numpy.random.Generator
    amplitude : (low, high)
        Largest translation per axis, in pixels (uniform draw).
    rotation : (low, high)
        Largest rotation in degrees (uniform draw).
    frequency : (low, high)
        Base tremor frequency in Hz (uniform draw); harmonics go up from it.
    n_harmonics : int

    Returns
    -------
    FourierPath
        Three components; turn a sample into a matrix with :func:`shake_matrix`.
    """
    amp = np.array([rng.uniform(*amplitude), rng.uniform(*amplitude), rng.uniform(*rotation)])
    a, rel, phase = _harmonics(rng, amp, n_harmonics)
    f1 = rng.uniform(*frequency)
    return FourierPath(np.zeros(3), a, rel * f1, phase)


def pose_at(path: FourierPath, t) -> tuple[tuple[float, float], float, float]:
    """``(center (x, y), angle_deg, scale)`` of an object trajectory at time ``t`` (s)."""
    x, y, a, ls = (float(v) for v in path(float(t)))
    return (x, y), a, float(np.exp(ls))


def shake_matrix(dx: float, dy: float, angle_deg: float, canvas: tuple[int, int]) -> np.ndarray:
    """2x3 affine matrix of a camera shake: rotation about the canvas centre, then a shift.

    It maps static-camera canvas coordinates to the shaken frame's coordinates.
    """
    import cv2

    h, w = canvas
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(angle_deg), 1.0)
    m[0, 2] += dx
    m[1, 2] += dy
    return m


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine ``outer o inner`` (apply ``inner`` first)."""
    a = outer[:, :2] @ inner[:, :2]
    b = outer[:, :2] @ inner[:, 2] + outer[:, 2]
    return np.concatenate([a, b[:, None]], axis=1)
