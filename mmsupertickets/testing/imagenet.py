"""Synthetic ten-class image classification in the ImageNet layout.

Layout written under ``root`` (what mmpretrain's ``ImageNet`` reads with
``split='train'`` / ``split='val'``, which pick up ``meta/<split>.txt`` by
themselves)::

    root
    ├── train/<wnid>/<wnid>_<n>.JPEG            n = 1, 2, ... per class
    ├── val/ILSVRC2012_val_<n:08d>.JPEG         classes shuffled
    └── meta
        ├── train.txt    "<wnid>/<wnid>_<n>.JPEG <label>" per line
        └── val.txt      "ILSVRC2012_val_<n:08d>.JPEG <label>" per line

The ten classes are the first ten ImageNet-1k synsets in sorted order
(:data:`WNIDS`), with labels 0..9. Because they are also the first ten
entries of the 1000-class list, ``ImageNet`` (which keeps its 1000 class
names as metainfo when reading an ``ann_file``) names them correctly
(tench, goldfish, ..., ostrich). Each image shows one object whose class is
fixed by its shape *and* hue (:data:`SHAPES`), at a random position, scale
and rotation, on a noisy background with a few grey distractors.

A config must set ``num_classes=10`` in the classification head and in
``data_preprocessor`` (used by batch mixing); ``Accuracy`` with
``topk=(1, 5)`` works as is. Optionally pass
``metainfo=dict(classes=IMAGENET_CATEGORIES[:10])`` to the datasets so that
``dataset.metainfo['classes']`` has ten entries instead of 1000. The images
are small (64x64 by default): replace the stock ``RandomResizedCrop(224)`` /
``ResizeEdge(256)`` + ``CenterCrop(224)`` with sizes that fit, e.g.
``RandomResizedCrop(scale=64, crop_ratio_range=(0.6, 1.0))`` and
``ResizeEdge(scale=64)`` + ``CenterCrop(64)``.
"""
import colorsys
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from .drawing import (
    circle_mask,
    finish_image,
    line_mask,
    make_rng,
    paint,
    polygon_mask,
    regular_polygon,
    star_polygon,
    textured_background,
    transform_points,
    write_image,
)

WNIDS = ('n01440764', 'n01443537', 'n01484850', 'n01491361', 'n01494475',
         'n01496331', 'n01498041', 'n01514668', 'n01514859', 'n01518878')
SHAPES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'crescent',
          'hexagon', 'arrow', 'four-point star')
# Class hues in degrees, spread round the colour wheel.
HUES = tuple(36 * i for i in range(10))
_DATASET_KEY = 4

# Unit-size outlines (radius about 1) of the polygonal classes.
_CROSS = np.array([[-1, -0.33], [-0.33, -0.33], [-0.33, -1], [0.33, -1],
                   [0.33, -0.33], [1, -0.33], [1, 0.33], [0.33, 0.33],
                   [0.33, 1], [-0.33, 1], [-0.33, 0.33], [-1, 0.33]])
_ARROW = np.array([[-1, -0.25], [0.15, -0.25], [0.15, -0.7], [1, 0],
                   [0.15, 0.7], [0.15, 0.25], [-1, 0.25]])


def _class_color(rng: np.random.Generator, label: int) -> np.ndarray:
    """A saturated colour near the class hue."""
    hue = (HUES[label] + rng.uniform(-8, 8)) % 360 / 360
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.65, 1.0),
                              rng.uniform(0.65, 1.0))
    return np.array(rgb, np.float32) * 255


def _shape_mask(shape, label: int, center, radius: float,
                angle: float) -> np.ndarray:
    """Mask of the class shape of ``label``; ``angle`` in radians."""
    name = SHAPES[label]
    if name == 'circle':
        return circle_mask(shape, center, radius)
    if name == 'ring':
        return circle_mask(shape, center,
                           radius) & ~circle_mask(shape, center, radius * 0.55)
    if name == 'crescent':
        off = transform_points([[0.45, 0]], (0, 0), radius, angle)[0]
        return circle_mask(
            shape, center,
            radius) & ~circle_mask(shape,
                                   np.asarray(center) + off, radius * 0.85)
    if name == 'square':
        pts = regular_polygon(center, radius * 1.05, 4, angle)
    elif name == 'triangle':
        pts = regular_polygon(center, radius * 1.1, 3, angle)
    elif name == 'hexagon':
        pts = regular_polygon(center, radius, 6, angle)
    elif name == 'star':
        pts = star_polygon(center, radius * 1.1, 5, 0.42, angle)
    elif name == 'four-point star':
        pts = star_polygon(center, radius * 1.1, 4, 0.35, angle)
    elif name == 'cross':
        pts = transform_points(_CROSS, center, radius, angle)
    else:  # arrow
        pts = transform_points(_ARROW, center, radius, angle)
    return polygon_mask(shape, pts)


def render_imagenet(rng: np.random.Generator, size: Sequence[int],
                    label: int) -> np.ndarray:
    """Render one image of class ``label``.

    Args:
        rng (np.random.Generator): Random source of this image.
        size (Sequence[int]): ``(H, W)``.
        label (int): Class index 0..9.

    Returns:
        np.ndarray: RGB ``uint8`` image.
    """
    h, w = int(size[0]), int(size[1])
    shape = (h, w)
    # A dull background keeps the object's hue the salient colour.
    grey = rng.uniform(70, 190)
    img = textured_background(
        rng, h, w, grey + rng.uniform(-25, 25, 3), 22, cells=4)
    for _ in range(rng.integers(2, 5)):
        p0 = rng.uniform((0, 0), (w, h))
        tone = rng.uniform(40, 220)
        if rng.random() < 0.5:
            mask = circle_mask(shape, p0, rng.uniform(0.03, 0.08) * min(h, w))
        else:
            p1 = p0 + rng.uniform(-0.3, 0.3, 2) * min(h, w)
            mask = line_mask(shape, p0, p1, max(1, 0.03 * min(h, w)))
        img[mask] = tone + rng.uniform(-10, 10, 3)
    radius = rng.uniform(0.18, 0.36) * min(h, w)
    center = rng.uniform((0.3 * w, 0.3 * h), (0.7 * w, 0.7 * h))
    mask = _shape_mask(shape, label, center, radius, rng.uniform(0, 2 * np.pi))
    paint(img, mask, _class_color(rng, label), rng, texture=12)
    return finish_image(rng, img, 5., 0.5)


def generate_imagenet(root: str,
                      num_train: int = 100,
                      num_val: int = 20,
                      image_size: Sequence[int] = (64, 64),
                      seed: int = 0) -> Dict:
    """Write a synthetic ImageNet-format dataset under ``root``.

    Args:
        root (str): Dataset root (``data_root`` in a config).
        num_train (int): Training images *per class*.
        num_val (int): Validation images *per class*.
        image_size (Sequence[int]): ``(H, W)``.
        seed (int): Seed; the same seed gives byte-identical files.

    Returns:
        dict: ``root``, ``classes`` (the wnids), total per-split counts and
        the paths of the two list files.
    """
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    lines = []
    for label, wnid in enumerate(WNIDS):
        for n in range(1, num_train + 1):
            rng = make_rng(seed, _DATASET_KEY, 0, label, n)
            rel = f'{wnid}/{wnid}_{n}.JPEG'
            write_image(
                osp.join(root, 'train', rel),
                render_imagenet(rng, image_size, label))
            lines.append(f'{rel} {label}')
    train_list = osp.join(root, 'meta', 'train.txt')
    with open(train_list, 'w') as f:
        f.write('\n'.join(lines) + '\n')

    # The real validation folder is flat with classes interleaved.
    order = np.repeat(np.arange(len(WNIDS)), num_val)
    make_rng(seed, _DATASET_KEY, 1, 0, 0).shuffle(order)
    lines = []
    for i, label in enumerate(order.tolist()):
        rng = make_rng(seed, _DATASET_KEY, 1, 1, i)
        name = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
        write_image(
            osp.join(root, 'val', name),
            render_imagenet(rng, image_size, label))
        lines.append(f'{name} {label}')
    val_list = osp.join(root, 'meta', 'val.txt')
    with open(val_list, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return dict(
        root=root,
        classes=WNIDS,
        image_size=tuple(int(s) for s in image_size),
        train=num_train * len(WNIDS),
        val=num_val * len(WNIDS),
        train_list=train_list,
        val_list=val_list)
