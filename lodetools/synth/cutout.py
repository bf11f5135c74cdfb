"""Foreground cut-outs and their poses: what local blur synthesis pastes and moves.

A :class:`Cutout` is an object in linear light with a soft alpha mask; a pose
is the 2x3 affine matrix from the cut-out's pixel grid to the canvas
(:func:`pose_matrix`, OpenCV's ``warpAffine`` convention). Local blur
synthesis (:mod:`lodetools.synth.lbs`) moves cut-outs from a segmentation
dataset; the synthetic capture world (:mod:`lodetools.sim`) cuts them from
photographs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Cutout:
    """A foreground object: linear RGB texture and a soft alpha mask.

    Attributes
    ----------
    rgb : ndarray, float32 (h, w, 3)
        Linear-light colours.
    alpha : ndarray, float32 (h, w)
        Coverage in ``[0, 1]`` with soft (blurred) edges; zero on the border.
    source : str
        Where it was cut from (``"<photo>/<shape>"``, a VOC instance, ...).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    source: str


def pose_matrix(center: tuple[float, float], angle_deg: float, scale: float,
                cutout_shape: tuple[int, int]) -> np.ndarray:
    """2x3 affine matrix taking cut-out pixel coordinates to canvas coordinates.

    The cut-out's centre goes to ``center = (x, y)``, rotated counter-clockwise
    by ``angle_deg`` and scaled by ``scale`` about its centre.

    Parameters
    ----------
    center : (x, y)
        Canvas position of the cut-out's centre.
    angle_deg : float
    scale : float
    cutout_shape : (h, w)

    Returns
    -------
    ndarray of float64, shape (2, 3)

    Examples
    --------
    A 5x3 cut-out (centre pixel (1, 2)) turned by 90 degrees about its centre,
    which lands on canvas pixel (10, 20); its top-left pixel lands at (8, 21):

    >>> m = pose_matrix((10.0, 20.0), 90.0, 1.0, (5, 3))
    >>> (np.round(m @ [0.0, 0.0, 1.0], 6) + 0.0).tolist()
    [8.0, 21.0]
    """
    h, w = cutout_shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, scale)
    m[0, 2] += center[0] - (w - 1) / 2.0
    m[1, 2] += center[1] - (h - 1) / 2.0
    return m
