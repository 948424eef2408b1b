"""Shape drawing helpers shared by the synthetic dataset generators.

Images are built as ``float32`` RGB arrays of shape ``(H, W, 3)`` in 0..255
and converted to ``uint8`` only when written. Every region is painted through
a boolean mask, so a label map painted with the same mask lines up with the
image pixel for pixel.

All randomness comes from a :class:`numpy.random.Generator` passed in by the
caller; :func:`make_rng` derives one per image from the user seed and integer
keys, so a sample never depends on how many samples were drawn before it nor
on Python's hash seed.
"""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

Color = Sequence[float]


def make_rng(seed: int, *keys: int) -> np.random.Generator:
    """Build an independent generator for ``(seed, *keys)``.

    Args:
        seed (int): The user seed.
        *keys (int): Non-negative integers naming the stream, e.g. a dataset
            id, a split id and a sample index.

    Returns:
        np.random.Generator: A generator seeded from a ``SeedSequence``.
    """
    return np.random.default_rng([int(seed), *[int(k) for k in keys]])


def smooth_noise(rng: np.random.Generator,
                 height: int,
                 width: int,
                 cells: int = 6,
                 channels: int = 1) -> np.ndarray:
    """Low-frequency noise in about [-1, 1] made by upsampling a coarse grid.

    Args:
        rng (np.random.Generator): Random source.
        height (int): Output height.
        width (int): Output width.
        cells (int): Grid cells along the shorter side; more cells give a
            finer texture.
        channels (int): Number of channels.

    Returns:
        np.ndarray: ``float32`` array of shape ``(height, width, channels)``.
    """
    scale = cells / max(1, min(height, width))
    gh = max(2, int(round(height * scale)) + 1)
    gw = max(2, int(round(width * scale)) + 1)
    grid = rng.standard_normal((gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return out.reshape(height, width, channels) / 1.5


def jitter_color(rng: np.random.Generator,
                 color: Color,
                 amount: float = 12.) -> np.ndarray:
    """Shift each channel of an RGB colour by up to ``amount``."""
    c = np.asarray(color, dtype=np.float32)
    return np.clip(c + rng.uniform(-amount, amount, 3), 0, 255)


def textured_background(rng: np.random.Generator,
                        height: int,
                        width: int,
                        color: Color,
                        amplitude: float = 18.,
                        cells: int = 5) -> np.ndarray:
    """A mildly noisy background: base colour plus coarse and fine texture.

    Args:
        rng (np.random.Generator): Random source.
        height (int): Image height.
        width (int): Image width.
        color (Sequence[float]): Base RGB colour.
        amplitude (float): Strength of the coarse texture in grey levels.
        cells (int): Grid cells of the coarse texture.

    Returns:
        np.ndarray: ``float32`` image of shape ``(height, width, 3)``.
    """
    base = np.asarray(color, dtype=np.float32).reshape(1, 1, 3)
    coarse = smooth_noise(rng, height, width, cells, 1)
    tint = smooth_noise(rng, height, width, max(2, cells // 2), 3)
    fine = smooth_noise(rng, height, width, cells * 6, 1)
    img = base + amplitude * coarse + 0.4 * amplitude * tint \
        + 0.3 * amplitude * fine
    return np.clip(img, 0, 255)


def paint(img: np.ndarray,
          mask: np.ndarray,
          color: Color,
          rng: np.random.Generator,
          texture: float = 8.,
          label: Optional[np.ndarray] = None,
          label_value: Optional[int] = None) -> None:
    """Fill ``mask`` in ``img`` with a textured colour, and in ``label``.

    Args:
        img (np.ndarray): ``float32`` RGB image, modified in place.
        mask (np.ndarray): Boolean mask of the region.
        color (Sequence[float]): RGB colour of the region.
        rng (np.random.Generator): Random source for the texture.
        texture (float): Texture strength in grey levels; a per-region
            texture keeps the colour from being a flat, trivial cue.
        label (np.ndarray, optional): Label map, modified in place.
        label_value (int, optional): Value written into ``label``.
    """
    # Work on the bounding box only: regions are mostly small.
    x0, y0, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    if bw == 0 or bh == 0:
        return
    y1, x1 = y0 + bh, x0 + bw
    sub = mask[y0:y1, x0:x1]
    noise = smooth_noise(rng, y1 - y0, x1 - x0, 3, 1)
    fill = np.asarray(color, np.float32).reshape(1, 1, 3) + texture * noise
    img[y0:y1, x0:x1][sub] = np.clip(fill, 0, 255)[sub]
    if label is not None:
        label[mask] = label_value


def polygon_mask(shape: Tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Boolean mask of a filled polygon given as ``(N, 2)`` xy points."""
    mask = np.zeros(shape, np.uint8)
    pts = np.round(np.asarray(points, np.float64)).astype(np.int32)
    cv2.fillPoly(mask, [pts.reshape(-1, 1, 2)], 1)
    return mask.astype(bool)


def circle_mask(shape: Tuple[int, int], center: Sequence[float],
                radius: float) -> np.ndarray:
    """Boolean mask of a filled circle."""
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, (int(round(center[0])), int(round(center[1]))),
               max(1, int(round(radius))), 1, -1)
    return mask.astype(bool)


def ellipse_mask(shape: Tuple[int, int],
                 center: Sequence[float],
                 axes: Sequence[float],
                 angle: float = 0.) -> np.ndarray:
    """Boolean mask of a filled ellipse; ``angle`` in degrees."""
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (int(round(center[0])), int(round(center[1]))),
                (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))),
                float(angle), 0, 360, 1, -1)
    return mask.astype(bool)


def rect_mask(shape: Tuple[int, int], x0: float, y0: float, x1: float,
              y1: float) -> np.ndarray:
    """Boolean mask of an axis-aligned rectangle, clipped to the image."""
    mask = np.zeros(shape, bool)
    h, w = shape
    xa, xb = int(np.clip(round(x0), 0, w)), int(np.clip(round(x1), 0, w))
    ya, yb = int(np.clip(round(y0), 0, h)), int(np.clip(round(y1), 0, h))
    mask[ya:yb, xa:xb] = True
    return mask


def line_mask(shape: Tuple[int, int], p0: Sequence[float], p1: Sequence[float],
              thickness: float) -> np.ndarray:
    """Boolean mask of a thick segment with round caps."""
    mask = np.zeros(shape, np.uint8)
    cv2.line(mask, (int(round(p0[0])), int(round(p0[1]))),
             (int(round(p1[0])), int(round(p1[1]))), 1,
             max(1, int(round(thickness))))
    return mask.astype(bool)


def regular_polygon(center: Sequence[float],
                    radius: float,
                    sides: int,
                    angle: float = 0.) -> np.ndarray:
    """Vertices of a regular polygon; ``angle`` in radians."""
    t = angle + np.arange(sides) * 2 * np.pi / sides
    return np.stack(
        [center[0] + radius * np.cos(t), center[1] + radius * np.sin(t)], 1)


def star_polygon(center: Sequence[float],
                 radius: float,
                 points: int = 5,
                 inner: float = 0.45,
                 angle: float = 0.) -> np.ndarray:
    """Vertices of a star with ``points`` tips; ``angle`` in radians."""
    t = angle + np.arange(2 * points) * np.pi / points
    r = np.where(np.arange(2 * points) % 2 == 0, radius, radius * inner)
    return np.stack([center[0] + r * np.cos(t), center[1] + r * np.sin(t)], 1)


def transform_points(points: np.ndarray, center: Sequence[float], scale: float,
                     angle: float) -> np.ndarray:
    """Scale, rotate (radians) and move unit-frame ``(N, 2)`` points."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]], np.float64)
    return np.asarray(points, np.float64) @ rot.T * scale + np.asarray(
        center, np.float64)


def finish_image(rng: np.random.Generator,
                 img: np.ndarray,
                 noise_sigma: float = 4.,
                 blur_sigma: float = 0.6) -> np.ndarray:
    """Soften edges a little, add sensor-like noise and convert to uint8."""
    if blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_sigma)
    img = img + rng.normal(0., noise_sigma, img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_image(path: str, rgb: np.ndarray, jpeg_quality: int = 90) -> None:
    """Write an RGB uint8 image (or a single-channel map) with OpenCV.

    The format follows the file suffix. Creates the parent folder.

    Raises:
        IOError: If OpenCV could not encode or write the file.
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    data = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    params = []
    if path.lower().endswith(('.jpg', '.jpeg')):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    if not cv2.imwrite(path, np.ascontiguousarray(data), params):
        raise IOError(f'Failed to write {path}')


class Canvas:
    """An RGB image and its label map painted together.

    Args:
        rng (np.random.Generator): Random source used for textures.
        background (np.ndarray): ``float32`` RGB image to start from.
        label_fill (int): Initial value of every label pixel.
    """

    def __init__(self, rng: np.random.Generator, background: np.ndarray,
                 label_fill: int) -> None:
        self.rng = rng
        self.img = background.astype(np.float32)
        self.label = np.full(background.shape[:2], label_fill, np.uint8)

    @property
    def shape(self) -> Tuple[int, int]:
        """``(height, width)`` of the canvas."""
        return self.label.shape

    def paint(self,
              mask: np.ndarray,
              color: Color,
              label_value: Optional[int] = None,
              texture: float = 8.) -> None:
        """Paint ``mask`` with ``color``; also the label unless it is None."""
        paint(self.img, mask, color, self.rng, texture,
              self.label if label_value is not None else None, label_value)


def draw_wheels(canvas: Canvas, xs: Sequence[float], y: float, radius: float,
                label_value: int) -> None:
    """Dark tyres with a lighter hub, labelled as the vehicle they carry."""
    for x in xs:
        canvas.paint(
            circle_mask(canvas.shape, (x, y), radius), (25, 25, 25),
            label_value,
            texture=4)
        canvas.paint(
            circle_mask(canvas.shape, (x, y), radius * 0.4), (150, 150, 150),
            label_value,
            texture=4)


def draw_window_grid(canvas: Canvas, x0: float, y0: float, x1: float,
                     y1: float, rows: int, cols: int, color: Color,
                     label_value: int) -> None:
    """A regular grid of small windows inside a box (same label)."""
    if rows < 1 or cols < 1:
        return
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    for r in range(rows):
        for c in range(cols):
            canvas.paint(
                rect_mask(canvas.shape, x0 + c * cw + 0.25 * cw,
                          y0 + r * ch + 0.25 * ch, x0 + (c + 0.75) * cw,
                          y0 + (r + 0.7) * ch),
                color,
                label_value,
                texture=5)


def draw_pedestrian(canvas: Canvas, x: float, y_base: float, height: float,
                    cloth: Color, label_value: int) -> None:
    """A standing pedestrian: legs, a coat-shaped body and a round head."""
    h = height
    skin = jitter_color(canvas.rng, (225, 185, 150), 15)
    legs = np.asarray(cloth, np.float32) * 0.55
    step = canvas.rng.uniform(0.05, 0.14) * h
    hip = (x, y_base - 0.45 * h)
    for dx in (-step, step):
        canvas.paint(
            line_mask(canvas.shape, hip, (x + dx, y_base), 0.11 * h), legs,
            label_value)
    body = np.array([[x - 0.12 * h, y_base - 0.78 * h],
                     [x + 0.12 * h, y_base - 0.78 * h],
                     [x + 0.15 * h, y_base - 0.42 * h],
                     [x - 0.15 * h, y_base - 0.42 * h]])
    canvas.paint(polygon_mask(canvas.shape, body), cloth, label_value)
    canvas.paint(
        circle_mask(canvas.shape, (x, y_base - 0.87 * h), 0.09 * h), skin,
        label_value)


def draw_car(canvas: Canvas, x: float, y_base: float, height: float,
             color: Color, label_value: int) -> None:
    """A side-view car: long low body, trapezoid cabin, windows, wheels."""
    h = height
    w = 2.2 * h
    canvas.paint(
        rect_mask(canvas.shape, x - w / 2, y_base - 0.62 * h, x + w / 2,
                  y_base - 0.15 * h), color, label_value)
    cabin = np.array([[x - 0.32 * w, y_base - 0.6 * h],
                      [x - 0.2 * w, y_base - h], [x + 0.18 * w, y_base - h],
                      [x + 0.3 * w, y_base - 0.6 * h]])
    canvas.paint(polygon_mask(canvas.shape, cabin), color, label_value)
    # Windows: the cabin shrunk towards its centre.
    centre = cabin.mean(0, keepdims=True)
    canvas.paint(
        polygon_mask(canvas.shape, centre + 0.7 * (cabin - centre)),
        (160, 190, 210),
        label_value,
        texture=5)
    draw_wheels(canvas, (x - 0.3 * w, x + 0.3 * w), y_base - 0.16 * h,
                0.17 * h, label_value)


def draw_tree(canvas: Canvas, x: float, y_base: float, height: float,
              leaves: Color, label_value: int) -> None:
    """A trunk under a cluster of overlapping round crowns."""
    h = height
    canvas.paint(
        line_mask(canvas.shape, (x, y_base), (x, y_base - 0.6 * h),
                  max(2, 0.07 * h)), (95, 70, 45), label_value)
    rng = canvas.rng
    for _ in range(rng.integers(3, 6)):
        cx = x + rng.uniform(-0.22, 0.22) * h
        cy = y_base - rng.uniform(0.6, 0.85) * h
        canvas.paint(
            circle_mask(canvas.shape, (cx, cy),
                        rng.uniform(0.15, 0.25) * h),
            jitter_color(rng, leaves, 12),
            label_value,
            texture=14)
