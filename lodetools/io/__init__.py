"""Files in and out: images, videos, RAW, VOC, manifests, atomic writes, layouts."""
