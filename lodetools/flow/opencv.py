"""OpenCV optical-flow backends: DIS, DeepFlow and Dual TV-L1 (opencv-contrib).

All take float images in [0, 1] (RGB (H, W, 3) or gray (H, W)), convert them to
8-bit gray as OpenCV's implementations expect, and return the flow in the
package convention ``moving(x + flow(x)) ~= ref(x)``, which is OpenCV's
``calc(I0=ref, I1=moving)`` convention.

References
----------
.. [1] T. Kroeger et al., "Fast Optical Flow using Dense Inverse Search", ECCV 2016 (DIS).
.. [2] P. Weinzaepfel et al., "DeepFlow: Large displacement optical flow with deep
   matching", ICCV 2013 (OpenCV's DeepFlow is its variational part).
.. [3] C. Zach, T. Pock, H. Bischof, "A duality based approach for realtime TV-L1
   optical flow", DAGM 2007.
"""

from __future__ import annotations

import cv2
import numpy as np

DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def to_gray_u8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] (RGB or gray) -> uint8 gray (Rec. 601 weights, as cv2)."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3:
        img = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def dis_flow(ref, moving, *, preset: str = "medium") -> np.ndarray:
    """Dense Inverse Search flow (``cv2.DISOpticalFlow``), ``preset`` in ultrafast/fast/medium."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return dis.calc(to_gray_u8(ref), to_gray_u8(moving), None).astype(np.float32)


def deepflow_flow(ref, moving) -> np.ndarray:
    """OpenCV DeepFlow (``cv2.optflow.createOptFlow_DeepFlow``)."""
    return cv2.optflow.createOptFlow_DeepFlow().calc(to_gray_u8(ref), to_gray_u8(moving), None).astype(np.float32)


def tvl1_flow(ref, moving) -> np.ndarray:
    """Dual TV-L1 flow (``cv2.optflow.DualTVL1OpticalFlow_create``, default parameters)."""
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return tvl1.calc(to_gray_u8(ref), to_gray_u8(moving), None).astype(np.float32)
