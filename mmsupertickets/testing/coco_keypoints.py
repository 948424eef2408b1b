"""Synthetic stick figures in the COCO person-keypoints layout.

Layout written under ``root`` (what mmpose's ``CocoDataset`` reads in the
stock top-down configs)::

    root
    ├── annotations
    │   ├── person_keypoints_train2017.json
    │   └── person_keypoints_val2017.json
    ├── person_detection_results
    │   └── COCO_val2017_detections_AP_H_56_person.json
    ├── train2017/<image_id:012d>.jpg
    └── val2017/<image_id:012d>.jpg

The annotation files follow the COCO format: ``images`` (``id``,
``file_name``, ``height``, ``width``), ``annotations`` (``id``, ``image_id``,
``category_id`` 1, ``bbox`` ``[x, y, w, h]``, ``area``, ``iscrowd`` 0,
``num_keypoints``, ``keypoints`` as 17 integer ``[x, y, v]`` triplets and a
convex-hull polygon as ``segmentation``) and one ``person`` category holding
the 17 keypoint names and the COCO skeleton.

Every image holds one to three front-facing stick figures (hair and face,
torso, upper arms in the shirt colour, bare forearms and hands, trousers) on
a textured background with some clutter. Keypoints sit at the joints of the
drawn limbs, so the person's left side is on the image's right, as for a
real person facing the camera. Visibility follows the COCO rules: ``v=2``
visible, ``v=1`` labelled but hidden behind a figure drawn later, ``v=0``
not labelled (outside the frame or under an occluding box), with ``x=y=0``.

The detection file lists the ground-truth boxes of the validation images
with score 1.0, standing in for the person detector results the stock
val config reads through ``bbox_file``. That path is relative to the working
directory, not to ``data_root``, so a config whose ``data_root`` is not
``data/coco/`` must set ``bbox_file`` (and ``val_evaluator.ann_file``) too.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import cv2
import numpy as np

from .drawing import (
    circle_mask,
    ellipse_mask,
    finish_image,
    jitter_color,
    line_mask,
    make_rng,
    polygon_mask,
    rect_mask,
    regular_polygon,
    textured_background,
    write_image,
)

KEYPOINT_NAMES = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
                  'left_shoulder', 'right_shoulder', 'left_elbow',
                  'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
                  'right_hip', 'left_knee', 'right_knee', 'left_ankle',
                  'right_ankle')
# 1-based keypoint index pairs, as in the COCO category record.
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13],
            [6, 7], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3],
            [2, 4], [3, 5], [4, 6], [5, 7]]
CATEGORY = dict(
    supercategory='person',
    id=1,
    name='person',
    keypoints=list(KEYPOINT_NAMES),
    skeleton=SKELETON)
DETECTION_FILE = 'COCO_val2017_detections_AP_H_56_person.json'
(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW,
 L_WRIST, R_WRIST, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE) = range(17)
# Fewer labelled keypoints than this and a figure is placed again.
MIN_LABELLED = 5
_DATASET_KEY = 3
_SPLITS = dict(train=('train2017', 0, 1), val=('val2017', 1, 500001))
SKIN_TONES = ((240, 200, 170), (225, 175, 135), (190, 140, 100), (140, 95, 65),
              (100, 70, 50))


def _direction(angle: float, side: int) -> np.ndarray:
    """Unit vector ``angle`` radians from straight down, outwards on
    ``side`` (+1 the figure's left, i.e. image right; -1 its right)."""
    return np.array([side * np.sin(angle), np.cos(angle)])


def sample_pose(rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Sample a front-facing pose in a unit frame.

    The unit is the torso length, the origin the middle of the hips and
    ``y`` points down.

    Returns:
        dict: ``keypoints`` ``(17, 2)``, ``head`` centre, ``head_radius`` and
        ``neck``.
    """
    kpts = np.zeros((17, 2))
    kpts[L_HIP], kpts[R_HIP] = (0.22, 0), (-0.22, 0)
    neck = np.array([0., -1.])
    kpts[L_SHOULDER], kpts[R_SHOULDER] = (0.38, -0.95), (-0.38, -0.95)
    head = np.array([rng.uniform(-0.05, 0.05), -1.42])
    # A small head turn moves the face features, not the ears.
    turn = rng.uniform(-0.07, 0.07)
    kpts[NOSE] = head + (turn, 0.08)
    kpts[L_EYE], kpts[R_EYE] = head + (turn + 0.11, -0.04), \
        head + (turn - 0.11, -0.04)
    kpts[L_EAR], kpts[R_EAR] = head + (0.29, 0.0), head + (-0.29, 0.0)
    for side, sh, el, wr in ((1, L_SHOULDER, L_ELBOW, L_WRIST),
                             (-1, R_SHOULDER, R_ELBOW, R_WRIST)):
        upper = np.deg2rad(rng.uniform(-15, 160))
        lower = upper + np.deg2rad(rng.uniform(-100, 100))
        kpts[el] = kpts[sh] + 0.5 * _direction(upper, side)
        kpts[wr] = kpts[el] + 0.45 * _direction(lower, side)
    for side, hip, knee, ankle in ((1, L_HIP, L_KNEE, L_ANKLE),
                                   (-1, R_HIP, R_KNEE, R_ANKLE)):
        thigh = np.deg2rad(rng.uniform(-8, 45))
        shin = thigh + np.deg2rad(rng.uniform(-40, 40))
        kpts[knee] = kpts[hip] + 0.55 * _direction(thigh, side)
        kpts[ankle] = kpts[knee] + 0.55 * _direction(shin, side)
    return dict(keypoints=kpts, head=head, head_radius=0.3, neck=neck)


class _Figure:
    """A posed figure placed in the image, with its pixel mask."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        pose = sample_pose(rng)
        size = rng.uniform(0.3, 0.85) * height / 2.8
        angle = np.deg2rad(np.clip(rng.normal(0, 10), -25, 25))
        center = (rng.uniform(0.05, 0.95) * width,
                  rng.uniform(0.35, 0.85) * height)
        c, s = np.cos(angle), np.sin(angle)
        rot = np.array([[c, -s], [s, c]])

        def place(p):
            return np.asarray(p) @ rot.T * size + center

        self.unit = size
        self.keypoints = place(pose['keypoints'])
        self.head = place(pose['head'])
        self.head_radius = pose['head_radius'] * size
        self.neck = place(pose['neck'])
        self.up = rot @ np.array([0., -1.])
        self.shape = (height, width)
        self.skin = jitter_color(rng, SKIN_TONES[rng.integers(5)], 10)
        self.hair = jitter_color(rng, (60, 40, 25), 25) * rng.uniform(0.4, 1.6)
        self.shirt = rng.uniform(30, 240, 3)
        self.pants = rng.uniform(20, 160, 3)
        self.mask = np.zeros(self.shape, bool)

    def in_frame(self) -> np.ndarray:
        """Which keypoints round to a pixel inside the image."""
        xy = np.round(self.keypoints)
        h, w = self.shape
        return (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (
            xy[:, 1] < h)

    def draw(self, img: np.ndarray, rng: np.random.Generator) -> None:
        """Paint the figure on ``img`` and record its mask."""
        k, t = self.keypoints, self.unit
        parts = []

        def add(mask, color, texture=6.):
            parts.append((mask, color, texture))

        for hip, knee, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE,
                                                            R_ANKLE)):
            add(line_mask(self.shape, k[hip], k[knee], 0.22 * t), self.pants)
            add(
                line_mask(self.shape, k[knee], k[ankle], 0.18 * t),
                self.pants * 0.8)
            foot = k[ankle] + 0.06 * t * np.array([0, 1])
            add(
                ellipse_mask(self.shape, foot, (0.12 * t, 0.06 * t)),
                (35, 30, 30), 3.)
        torso = np.array([k[L_SHOULDER], k[R_SHOULDER], k[R_HIP], k[L_HIP]])
        centre = torso.mean(0)
        add(
            polygon_mask(self.shape, centre + 1.12 * (torso - centre)),
            self.shirt)
        add(line_mask(self.shape, self.neck, self.head, 0.14 * t), self.skin)
        for sh, el, wr in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER,
                                                            R_ELBOW, R_WRIST)):
            add(line_mask(self.shape, k[sh], k[el], 0.17 * t), self.shirt)
            add(line_mask(self.shape, k[el], k[wr], 0.13 * t), self.skin)
            add(circle_mask(self.shape, k[wr], 0.09 * t), self.skin * 0.92)
        add(circle_mask(self.shape, self.head, self.head_radius), self.hair)
        face = self.head - self.up * 0.06 * t
        add(circle_mask(self.shape, face, self.head_radius * 0.84), self.skin)
        for ear in (L_EAR, R_EAR):
            add(circle_mask(self.shape, k[ear], 0.07 * t), self.skin * 0.8, 3.)
        for eye in (L_EYE, R_EYE):
            add(circle_mask(self.shape, k[eye], 0.045 * t), (25, 25, 30), 2.)
        add(circle_mask(self.shape, k[NOSE], 0.05 * t), self.skin * 0.7, 2.)
        for mask, color, texture in parts:
            if mask.any():
                fill = np.asarray(color, np.float32) + rng.normal(
                    0, texture, 3).astype(np.float32)
                img[mask] = np.clip(fill, 0, 255)
                self.mask |= mask

    def annotation(self, visibility: np.ndarray, image_id: int,
                   ann_id: int) -> Dict:
        """The COCO annotation record for this figure."""
        xy = np.round(self.keypoints).astype(int)
        kpts = []
        for (x, y), v in zip(xy, visibility):
            kpts += [int(x), int(y), int(v)] if v > 0 else [0, 0, 0]
        ys, xs = np.nonzero(self.mask)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
        polygon = [float(v) for v in hull.reshape(-1)]
        return dict(
            id=ann_id,
            image_id=image_id,
            category_id=1,
            bbox=[float(x0),
                  float(y0),
                  float(x1 - x0),
                  float(y1 - y0)],
            area=float(self.mask.sum()),
            iscrowd=0,
            num_keypoints=int((visibility > 0).sum()),
            keypoints=kpts,
            segmentation=[polygon])


def _overlaps(fig: _Figure, others: List[_Figure]) -> bool:
    """Whether ``fig``'s keypoint box covers another figure's too much."""
    lo, hi = fig.keypoints.min(0), fig.keypoints.max(0)
    for other in others:
        olo, ohi = other.keypoints.min(0), other.keypoints.max(0)
        inter = np.prod(
            np.clip(np.minimum(hi, ohi) - np.maximum(lo, olo), 0, None))
        if inter > 0.35 * min(np.prod(hi - lo), np.prod(ohi - olo)):
            return True
    return False


def render_coco(rng: np.random.Generator, height: int, width: int,
                image_id: int, first_ann_id: int):
    """Render one image with 1-3 figures and build its annotations.

    Args:
        rng (np.random.Generator): Random source of this image.
        height (int): Image height.
        width (int): Image width.
        image_id (int): COCO image id.
        first_ann_id (int): Id of the first annotation; the others follow.

    Returns:
        tuple[np.ndarray, list[dict]]: RGB ``uint8`` image and annotations.
    """
    img = textured_background(
        rng, height, width, rng.uniform(60, 200, 3), 20, cells=4)
    shape = (height, width)
    # Clutter behind the figures: boxes and discs, never limb-like.
    for _ in range(rng.integers(2, 6)):
        center = rng.uniform((0, 0), (width, height))
        r = rng.uniform(0.04, 0.15) * height
        mask = (
            circle_mask(shape, center, r)
            if rng.random() < 0.5 else polygon_mask(
                shape, regular_polygon(center, r, 4, rng.uniform(0, np.pi))))
        img[mask] = np.clip(rng.uniform(40, 220, 3), 0, 255)

    figures: List[_Figure] = []
    for _ in range(rng.integers(1, 4)):
        for _ in range(30):
            fig = _Figure(rng, height, width)
            if fig.in_frame().sum() >= 10 and not _overlaps(fig, figures):
                figures.append(fig)
                break
    for fig in figures:
        fig.draw(img, rng)

    visibility = []
    for i, fig in enumerate(figures):
        xy = np.round(fig.keypoints).astype(int)
        inside = fig.in_frame()
        v = np.where(inside, 2, 0)
        for j in np.nonzero(inside)[0]:
            x, y = xy[j]
            if any(later.mask[y, x] for later in figures[i + 1:]):
                v[j] = 1
        visibility.append(v)

    # Sometimes a box hides part of a figure: what it covers is unlabelled,
    # as an annotator could not place those joints.
    if figures and rng.random() < 0.35:
        for _ in range(10):
            fig = figures[rng.integers(len(figures))]
            bw, bh = rng.uniform(0.6, 1.4, 2) * fig.unit
            cx, cy = fig.keypoints[rng.integers(17)]
            box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
            covered = [(np.round(f.keypoints[:, 0]) >= box[0])
                       & (np.round(f.keypoints[:, 0]) < box[2])
                       & (np.round(f.keypoints[:, 1]) >= box[1])
                       & (np.round(f.keypoints[:, 1]) < box[3])
                       for f in figures]
            left = [((v > 0) & ~c).sum() for v, c in zip(visibility, covered)]
            if min(left) >= MIN_LABELLED:
                mask = rect_mask(shape, *box)
                occluder = textured_background(rng, height, width,
                                               rng.uniform(50, 200, 3), 12)
                img[mask] = occluder[mask]
                for v, c in zip(visibility, covered):
                    v[c] = 0
                break

    anns = [
        fig.annotation(v, image_id, first_ann_id + i)
        for i, (fig, v) in enumerate(zip(figures, visibility))
    ]
    return finish_image(rng, img, 4., 0.5), anns


def generate_coco_keypoints(root: str,
                            num_train: int = 200,
                            num_val: int = 40,
                            image_size: Sequence[int] = (192, 256),
                            seed: int = 0) -> Dict:
    """Write a synthetic COCO person-keypoints dataset under ``root``.

    Args:
        root (str): Dataset root (``data_root`` in a config).
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        image_size (Sequence[int]): ``(H, W)``.
        seed (int): Seed; the same seed gives byte-identical files.

    Returns:
        dict: ``root``, per-split image and person counts, and the paths of
        the annotation files and of the detection file.
    """
    height, width = int(image_size[0]), int(image_size[1])
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    result = dict(root=root, image_size=(height, width))
    for split, num in (('train', num_train), ('val', num_val)):
        folder, key, first_id = _SPLITS[split]
        images, annotations = [], []
        for i in range(num):
            image_id = first_id + i
            rng = make_rng(seed, _DATASET_KEY, key, i)
            img, anns = render_coco(rng, height, width, image_id,
                                    image_id * 10)
            file_name = f'{image_id:012d}.jpg'
            write_image(osp.join(root, folder, file_name), img)
            images.append(
                dict(
                    id=image_id,
                    file_name=file_name,
                    height=height,
                    width=width))
            annotations += anns
        coco = dict(
            info=dict(
                description='mmsupertickets synthetic person keypoints',
                version='1.0'),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=[CATEGORY])
        ann_file = osp.join(root, 'annotations',
                            f'person_keypoints_{folder}.json')
        with open(ann_file, 'w') as f:
            json.dump(coco, f)
        result[split] = num
        result[f'{split}_persons'] = len(annotations)
        result[f'{split}_ann_file'] = ann_file
        if split == 'val':
            dets = [
                dict(
                    image_id=a['image_id'],
                    category_id=1,
                    bbox=a['bbox'],
                    score=1.0) for a in annotations
            ]
            det_file = osp.join(root, 'person_detection_results',
                                DETECTION_FILE)
            os.makedirs(osp.dirname(det_file), exist_ok=True)
            with open(det_file, 'w') as f:
                json.dump(dets, f)
            result['bbox_file'] = det_file
    return result
