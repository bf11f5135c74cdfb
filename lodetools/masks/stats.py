"""Blur statistics of local-blur masks: blurred fraction per image, dataset summary, histogram.

ReLoBlur reports that "on average, the blur regions take up 11.75 % of the
whole image area" of its dataset (main paper, "ReLoBlur Dataset"): the mean
over images of :func:`blurred_fraction`. Pure functions; the histogram is
returned as PNG bytes (matplotlib's Agg backend), the caller writes it.
"""

from __future__ import annotations

import io

import numpy as np

#: the dataset mean blurred fraction ReLoBlur reports (main paper)
RELOBLUR_MEAN_FRACTION = 0.1175


def blurred_fraction(mask: np.ndarray) -> float:
    """Fraction of an image's pixels inside its local-blur mask.

    Parameters
    ----------
    mask : ndarray (H, W)
        Boolean, or 0/255 (any nonzero counts: the fraction is of a 0/1 mask,
        not of the 0/255 values, which the ReLoBlur code mixes up).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> blurred_fraction(np.array([[0, 255], [0, 0]], np.uint8))
    0.25
    """
    m = np.asarray(mask)
    if m.size == 0:
        raise ValueError("empty mask")
    return float(np.count_nonzero(m) / m.size)


def summarize(fractions) -> dict:
    """Summary of per-image blurred fractions.

    Parameters
    ----------
    fractions : sequence of float

    Returns
    -------
    dict
        ``count, mean, std, median, min, max, p10, p90`` (fractions, not
        percent), plus ``reloblur_mean`` for comparison (ReLoBlur: 0.1175).
    """
    f = np.asarray(list(fractions), dtype=np.float64)
    out = {"count": int(f.size), "reloblur_mean": RELOBLUR_MEAN_FRACTION}
    if f.size == 0:
        out.update({k: None for k in ("mean", "std", "median", "min", "max", "p10", "p90")})
        return out
    out.update({"mean": float(f.mean()), "std": float(f.std()), "median": float(np.median(f)),
                "min": float(f.min()), "max": float(f.max()),
                "p10": float(np.percentile(f, 10)), "p90": float(np.percentile(f, 90))})
    return out


def histogram_png(fractions, *, bins: int = 20, title: str = "Blurred fraction per image") -> bytes:
    """A histogram of per-image blurred fractions (percent), as PNG bytes.

    The dataset mean and ReLoBlur's 11.75 % are drawn as vertical lines.

    Parameters
    ----------
    fractions : sequence of float in [0, 1]
    bins : int
        Bins over 0-100 %.
    title : str

    Returns
    -------
    bytes
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pct = 100.0 * np.asarray(list(fractions), dtype=np.float64)
    fig = Figure(figsize=(6, 3.6), dpi=100)
    FigureCanvasAgg(fig)  # the Agg canvas, without touching pyplot's global backend
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(pct, bins=bins, range=(0, 100), color="#4477aa", edgecolor="white")
    if pct.size:
        ax.axvline(pct.mean(), color="#cc3311", label=f"mean {pct.mean():.2f} %")
    ax.axvline(100 * RELOBLUR_MEAN_FRACTION, color="#999999", linestyle="--",
               label=f"ReLoBlur {100 * RELOBLUR_MEAN_FRACTION:.2f} %")
    ax.set_xlabel("blurred area (% of image)")
    ax.set_ylabel("images")
    ax.set_title(f"{title} (n = {pct.size})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
