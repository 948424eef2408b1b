"""Synthetic street scenes in the Cityscapes ``gtFine`` layout.

Layout written under ``root`` (what mmseg's ``CityscapesDataset`` reads with
the stock ``data_prefix``)::

    root
    ├── leftImg8bit
    │   ├── train/<city>/<city>_<seq:06d>_000019_leftImg8bit.png
    │   └── val/<city>/<city>_<seq:06d>_000019_leftImg8bit.png
    └── gtFine
        ├── train/<city>/<city>_<seq:06d>_000019_gtFine_labelTrainIds.png
        └── val/<city>/<city>_<seq:06d>_000019_gtFine_labelTrainIds.png

Labels are single-channel ``uint8`` train ids 0..18 in the order of
``CityscapesDataset.METAINFO['classes']``; 255 marks ignored pixels (an
ego-vehicle bonnet at the bottom of about half the frames). ``labelIds`` and
instance maps are not written: the dataset class does not read them.

Each scene has a sky band, buildings on the horizon, a road converging to a
vanishing point with sidewalks and terrain at the sides, trees, poles with a
traffic light and a traffic sign, and five to seven of the ten object classes
(wall, fence, person, rider, car, truck, bus, train, motorcycle, bicycle),
chosen so that any two consecutive frames hold all ten. Every class has its
own shape and colour, so a small network learns them in minutes.

Nothing needs changing in a config besides ``data_root`` (and a crop size that
fits the small images, e.g. ``crop_size=(128, 128)`` with
``RandomResize(scale=(256, 128))`` and ``Resize(scale=(256, 128))``).
"""
import os.path as osp
from typing import Dict, Sequence, Tuple

import numpy as np

from .drawing import (
    Canvas,
    draw_tree,
    ellipse_mask,
    finish_image,
    make_rng,
    textured_background,
    write_image,
)
from .street_scene import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    COLORS,
    FENCE,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
    Street,
    draw_background,
    draw_object,
    draw_pole,
    object_row,
)

CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
           'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
           'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
           'bicycle')
IGNORE_INDEX = 255
CITIES = dict(
    train=('aachen', 'bochum', 'bremen', 'cologne'),
    val=('frankfurt', 'lindau', 'munster'))
# Cityscapes annotates the 20th frame of every 30-frame snippet.
FRAME = 19

# Object classes rotated through the frames, five per frame.
OBJECTS = (WALL, FENCE, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE,
           BICYCLE)

_DATASET_KEY = 1
_SPLIT_KEY = dict(train=0, val=1)


def render_cityscapes(rng: np.random.Generator, height: int, width: int,
                      index: int) -> Tuple[np.ndarray, np.ndarray]:
    """Render one street scene.

    Args:
        rng (np.random.Generator): Random source of this frame.
        height (int): Image height.
        width (int): Image width.
        index (int): Frame index in its split; selects which five object
            classes are certain to appear.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB ``uint8`` image ``(H, W, 3)`` and
        train-id label map ``(H, W)``.
    """
    sky = textured_background(rng, height, width, COLORS[SKY], 10)
    canvas = Canvas(rng, sky, SKY)
    street = Street(canvas)
    draw_background(street)
    for top in ('light', 'sign', 'none')[:rng.integers(2, 4)]:
        draw_pole(street, top)

    start = (index * 5) % len(OBJECTS)
    wanted = [OBJECTS[(start + k) % len(OBJECTS)] for k in range(5)]
    others = [o for o in OBJECTS if o not in wanted]
    wanted += list(rng.choice(others, rng.integers(0, 3), replace=False))
    placed = sorted((object_row(street, cls), int(cls)) for cls in wanted)
    # Far to near, so nearer objects occlude farther ones.
    for y, cls in placed:
        draw_object(street, cls, y)

    if rng.random() < 0.5:
        bonnet = ellipse_mask(canvas.shape, (width / 2, height * 1.02),
                              (width * 0.65, height * 0.13))
        canvas.paint(bonnet, (30, 30, 36), IGNORE_INDEX, texture=4)

    # Occlusion may hide a small object completely: draw it again in front.
    required = [LIGHT, SIGN, VEGETATION, TERRAIN, BUILDING, POLE] + \
        [c for _, c in placed]
    for _ in range(4):
        present = np.bincount(canvas.label.ravel(), minlength=256)
        missing = [c for c in required if present[c] < 6]
        if not missing:
            break
        for cls in missing:
            if cls == LIGHT or cls == SIGN or cls == POLE:
                draw_pole(street, {
                    LIGHT: 'light',
                    SIGN: 'sign'
                }.get(cls, 'none'))
            elif cls == VEGETATION:
                y = street.horizon + 0.3 * (height - street.horizon)
                draw_tree(canvas,
                          rng.uniform(0.1, 0.9) * width, y, 0.4 * height,
                          COLORS[VEGETATION], VEGETATION)
            elif cls in (TERRAIN, BUILDING):
                y = street.horizon
                patch = ellipse_mask(canvas.shape,
                                     (rng.uniform(0.1, 0.9) * width, y),
                                     (0.08 * width, 0.06 * height))
                canvas.paint(patch, COLORS[cls], cls, texture=12)
            else:
                draw_object(street, cls, object_row(street, cls))
    return finish_image(rng, canvas.img), canvas.label


def _stem(city: str, seq: int) -> str:
    return f'{city}_{seq:06d}_{FRAME:06d}'


def generate_cityscapes(root: str,
                        num_train: int = 200,
                        num_val: int = 40,
                        image_size: Sequence[int] = (128, 256),
                        seed: int = 0) -> Dict:
    """Write a synthetic Cityscapes-format dataset under ``root``.

    Args:
        root (str): Dataset root (``data_root`` in a config).
        num_train (int): Number of training frames.
        num_val (int): Number of validation frames.
        image_size (Sequence[int]): ``(H, W)``; the real data is 1:2.
        seed (int): Seed; the same seed gives byte-identical files.

    Returns:
        dict: ``root``, ``classes``, per-split counts and label file lists.
    """
    height, width = int(image_size[0]), int(image_size[1])
    result = dict(root=root, classes=CLASSES, image_size=(height, width))
    for split, num in (('train', num_train), ('val', num_val)):
        cities = CITIES[split]
        labels = []
        for i in range(num):
            rng = make_rng(seed, _DATASET_KEY, _SPLIT_KEY[split], i)
            img, label = render_cityscapes(rng, height, width, i)
            city = cities[i % len(cities)]
            stem = _stem(city, i // len(cities))
            write_image(
                osp.join(root, 'leftImg8bit', split, city,
                         f'{stem}_leftImg8bit.png'), img)
            label_path = osp.join(root, 'gtFine', split, city,
                                  f'{stem}_gtFine_labelTrainIds.png')
            write_image(label_path, label)
            labels.append(label_path)
        result[split] = num
        result[f'{split}_labels'] = labels
    return result
