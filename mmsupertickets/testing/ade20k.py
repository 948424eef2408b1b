"""Synthetic indoor and outdoor scenes in the ADEChallengeData2016 layout.

Layout written under ``root`` (what mmseg's ``ADE20KDataset`` reads with the
stock ``data_prefix``)::

    root
    ├── images
    │   ├── training/ADE_train_<n:08d>.jpg
    │   └── validation/ADE_val_<n:08d>.jpg
    └── annotations
        ├── training/ADE_train_<n:08d>.png
        └── validation/ADE_val_<n:08d>.png

Numbering starts at 1, as in the real release. Annotations are
single-channel ``uint8`` PNGs in the raw ADE20K encoding: 0 is "other"
(ignored) and ``k`` in 1..150 is class ``k - 1`` of
``ADE20KDataset.METAINFO['classes']``. Only twelve of the 150 classes are
drawn (:data:`USED_CLASSES`); the value range stays that of the real data.

Even frames are outdoor scenes (sky, building, tree, road, grass, person,
car), odd frames indoor ones (wall, floor, windowpane, table, painting,
person), so any two consecutive frames hold all twelve classes. A few
randomly coloured clutter shapes are labelled 0.

A config keeps ``reduce_zero_label=True`` (the dataset default and the stock
``LoadAnnotations`` setting), which maps 0 to 255 and ``k`` to ``k - 1``, and
keeps ``num_classes=150`` in the decode heads; the unused classes simply get
no pixels (their IoU shows as NaN and is left out of mIoU).
"""
import os.path as osp
from typing import Dict, Sequence, Tuple

import numpy as np

from .drawing import (
    Canvas,
    circle_mask,
    draw_car,
    draw_pedestrian,
    draw_tree,
    draw_window_grid,
    finish_image,
    jitter_color,
    line_mask,
    make_rng,
    polygon_mask,
    rect_mask,
    regular_polygon,
    star_polygon,
    textured_background,
    write_image,
)

OTHER = 0
# Raw annotation values (class index + 1) of the classes drawn.
WALL, BUILDING, SKY, FLOOR, TREE = 1, 2, 3, 4, 5
ROAD, WINDOWPANE, GRASS, PERSON = 7, 9, 10, 13
TABLE, CAR, PAINTING = 16, 21, 23
USED_CLASSES = {
    WALL: 'wall',
    BUILDING: 'building',
    SKY: 'sky',
    FLOOR: 'floor',
    TREE: 'tree',
    ROAD: 'road',
    WINDOWPANE: 'windowpane',
    GRASS: 'grass',
    PERSON: 'person',
    TABLE: 'table',
    CAR: 'car',
    PAINTING: 'painting'
}
OUTDOOR = (SKY, BUILDING, TREE, ROAD, GRASS, PERSON, CAR)
INDOOR = (WALL, FLOOR, WINDOWPANE, TABLE, PAINTING, PERSON)

COLORS = {
    WALL: (222, 212, 182),
    BUILDING: (150, 118, 108),
    SKY: (140, 190, 240),
    FLOOR: (175, 125, 75),
    TREE: (40, 120, 45),
    ROAD: (105, 105, 108),
    WINDOWPANE: (175, 215, 245),
    GRASS: (95, 175, 60),
    PERSON: (60, 80, 200),
    TABLE: (100, 60, 30),
    CAR: (200, 40, 40),
    PAINTING: (185, 150, 40),
}
_DATASET_KEY = 2
_SPLITS = dict(
    train=('training', 'ADE_train', 0), val=('validation', 'ADE_val', 1))


def _draw_clutter(c: Canvas, y_min: float) -> None:
    """One to three small shapes of a random colour labelled "other"."""
    h, w = c.shape
    rng = c.rng
    for _ in range(rng.integers(1, 4)):
        center = (rng.uniform(0, w), rng.uniform(y_min, h))
        r = rng.uniform(0.04, 0.08) * h
        kind = rng.integers(3)
        if kind == 0:
            mask = circle_mask(c.shape, center, r)
        elif kind == 1:
            mask = polygon_mask(
                c.shape,
                regular_polygon(center, r, rng.integers(3, 7),
                                rng.uniform(0, np.pi)))
        else:
            mask = polygon_mask(
                c.shape, star_polygon(center, r, 4, 0.5, rng.uniform(0, 1)))
        c.paint(mask, rng.uniform(30, 230, 3), OTHER)


def _outdoor(c: Canvas) -> None:
    """Sky over grass, a road, buildings and trees, people and cars."""
    h, w = c.shape
    rng = c.rng
    yh = h * rng.uniform(0.35, 0.5)
    c.paint(rect_mask(c.shape, 0, yh, w, h), COLORS[GRASS], GRASS, 16)
    # A road crossing the ground, wider at the bottom.
    top, bottom = rng.uniform(yh + 2, yh + 0.3 * (h - yh)), h + 1
    x_top = rng.uniform(0.2, 0.8) * w
    x_bottom = rng.uniform(0.3, 0.7) * w
    half_top = rng.uniform(0.05, 0.15) * w
    half_bottom = rng.uniform(0.25, 0.4) * w
    road = np.array([[x_top - half_top, top], [x_top + half_top, top],
                     [x_bottom + half_bottom, bottom],
                     [x_bottom - half_bottom, bottom]])
    c.paint(polygon_mask(c.shape, road), COLORS[ROAD], ROAD, 10)

    for _ in range(rng.integers(1, 4)):
        bw = rng.uniform(0.15, 0.35) * w
        x0 = rng.uniform(-0.1, 0.9) * w
        y0 = yh - rng.uniform(0.3, 0.8) * yh
        color = jitter_color(rng, COLORS[BUILDING], 15)
        c.paint(rect_mask(c.shape, x0, y0, x0 + bw, yh + 1), color, BUILDING)
        # A pitched roof on some houses.
        if rng.random() < 0.5:
            roof = np.array([[x0 - 2, y0], [x0 + bw + 2, y0],
                             [x0 + bw / 2, y0 - 0.3 * bw]])
            c.paint(polygon_mask(c.shape, roof), color * 0.7, BUILDING)
        draw_window_grid(c, x0 + 2, y0 + 2, x0 + bw - 2, yh - 2,
                         max(1, int((yh - y0) // 10)), max(1, int(bw // 9)),
                         (235, 225, 170), BUILDING)
    for _ in range(rng.integers(1, 4)):
        y = yh + rng.uniform(0.02, 0.3) * (h - yh)
        draw_tree(c, rng.uniform(0, w), y,
                  rng.uniform(0.35, 0.6) * h, COLORS[TREE], TREE)
    _draw_clutter(c, yh)

    # Things, far to near; at least one person and one car.
    things = [PERSON, CAR] + list(
        rng.choice([PERSON, CAR], rng.integers(0, 3)))
    rows = sorted(
        (rng.uniform(yh + 0.2 * (h - yh), h), int(t)) for t in things)
    for y, cls in rows:
        depth = (y - yh) / (h - yh)
        if cls == CAR:
            draw_car(c,
                     rng.uniform(0.15, 0.85) * w, y, (0.12 + 0.18 * depth) * h,
                     jitter_color(rng, COLORS[CAR], 20), CAR)
        else:
            draw_pedestrian(c,
                            rng.uniform(0.05, 0.95) * w, y,
                            (0.2 + 0.3 * depth) * h,
                            jitter_color(rng, COLORS[PERSON], 25), PERSON)


def _draw_table(c: Canvas, x: float, y: float, size: float) -> None:
    """A table seen from the side: thick top and two legs."""
    half = size * c.rng.uniform(0.6, 0.9)
    color = jitter_color(c.rng, COLORS[TABLE], 12)
    for lx in (x - 0.85 * half, x + 0.85 * half):
        c.paint(
            line_mask(c.shape, (lx, y), (lx, y - 0.6 * size),
                      max(2, 0.1 * size)), color * 0.8, TABLE)
    c.paint(
        rect_mask(c.shape, x - half, y - 0.7 * size, x + half,
                  y - 0.56 * size), color, TABLE)


def _indoor(c: Canvas) -> None:
    """A room: wall over a plank floor, a window, paintings, table, people."""
    h, w = c.shape
    rng = c.rng
    yf = h * rng.uniform(0.55, 0.72)
    c.paint(rect_mask(c.shape, 0, yf, w, h), COLORS[FLOOR], FLOOR, 12)
    for py in np.arange(yf + 5, h, rng.uniform(5, 8)):
        c.paint(
            rect_mask(c.shape, 0, py, w, py + 1),
            np.asarray(COLORS[FLOOR]) * 0.75, FLOOR, 3)

    # A window: white frame and light panes, both "windowpane".
    ww, wh = rng.uniform(0.2, 0.35) * w, rng.uniform(0.25, 0.4) * h
    wx = rng.uniform(0.02, 0.98 - ww / w) * w
    wy = rng.uniform(0.05, 0.5) * (yf - wh)
    c.paint(
        rect_mask(c.shape, wx, wy, wx + ww, wy + wh), (245, 245, 240),
        WINDOWPANE, 3)
    draw_window_grid(c, wx + 1, wy + 1, wx + ww - 1, wy + wh - 1, 2, 2,
                     COLORS[WINDOWPANE], WINDOWPANE)
    # One or two paintings: gold frame around a colourful canvas.
    for _ in range(rng.integers(1, 3)):
        pw, ph = rng.uniform(0.12, 0.22) * w, rng.uniform(0.12, 0.2) * h
        px = rng.uniform(0, w - pw)
        py = rng.uniform(0.05, 0.6) * (yf - ph)
        c.paint(
            rect_mask(c.shape, px, py, px + pw, py + ph), COLORS[PAINTING],
            PAINTING, 5)
        inner = rect_mask(c.shape, px + 2, py + 2, px + pw - 2, py + ph - 2)
        c.paint(inner, rng.uniform(40, 220, 3), PAINTING, 25)
    _draw_clutter(c, yf)

    things = [TABLE, PERSON] + list(
        rng.choice([TABLE, PERSON], rng.integers(0, 2)))
    rows = sorted(
        (rng.uniform(yf + 0.15 * (h - yf), h), int(t)) for t in things)
    for y, cls in rows:
        depth = (y - yf) / (h - yf)
        if cls == TABLE:
            _draw_table(c,
                        rng.uniform(0.15, 0.85) * w, y,
                        (0.2 + 0.15 * depth) * h)
        else:
            draw_pedestrian(c,
                            rng.uniform(0.05, 0.95) * w, y,
                            (0.35 + 0.25 * depth) * h,
                            jitter_color(rng, COLORS[PERSON], 25), PERSON)


def render_ade20k(rng: np.random.Generator, height: int, width: int,
                  index: int) -> Tuple[np.ndarray, np.ndarray]:
    """Render one scene; even ``index`` is outdoor, odd is indoor.

    Args:
        rng (np.random.Generator): Random source of this image.
        height (int): Image height.
        width (int): Image width.
        index (int): Image index in its split.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB ``uint8`` image ``(H, W, 3)`` and
        raw ADE20K label map ``(H, W)`` with values in 0..150.
    """
    outdoor = index % 2 == 0
    top = SKY if outdoor else WALL
    background = textured_background(rng, height, width, COLORS[top],
                                     10 if outdoor else 14)
    for _ in range(5):
        canvas = Canvas(rng, background, top)
        (_outdoor if outdoor else _indoor)(canvas)
        present = np.bincount(canvas.label.ravel(), minlength=256)
        # Redraw the rare scene whose occlusions hid a whole class.
        if all(present[c] >= 6 for c in (OUTDOOR if outdoor else INDOOR)):
            break
    return finish_image(rng, canvas.img), canvas.label


def generate_ade20k(root: str,
                    num_train: int = 200,
                    num_val: int = 40,
                    image_size: Sequence[int] = (128, 128),
                    seed: int = 0) -> Dict:
    """Write a synthetic ADE20K-format dataset under ``root``.

    Args:
        root (str): Dataset root (``data_root`` in a config), i.e. the
            ``ADEChallengeData2016`` folder.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        image_size (Sequence[int]): ``(H, W)``.
        seed (int): Seed; the same seed gives byte-identical files.

    Returns:
        dict: ``root``, ``classes`` (raw value to name), per-split counts and
        annotation file lists.
    """
    height, width = int(image_size[0]), int(image_size[1])
    result = dict(
        root=root, classes=dict(USED_CLASSES), image_size=(height, width))
    for split, num in (('train', num_train), ('val', num_val)):
        folder, prefix, key = _SPLITS[split]
        annotations = []
        for i in range(num):
            rng = make_rng(seed, _DATASET_KEY, key, i)
            img, label = render_ade20k(rng, height, width, i)
            name = f'{prefix}_{i + 1:08d}'
            write_image(osp.join(root, 'images', folder, name + '.jpg'), img)
            ann = osp.join(root, 'annotations', folder, name + '.png')
            write_image(ann, label)
            annotations.append(ann)
        result[split] = num
        result[f'{split}_annotations'] = annotations
    return result
