"""Chance level of each demo metric: the best image-independent guess."""
import glob
import json
import os.path as osp
from typing import Sequence

from .tasks import REPO, TASKS


def seg_chance(label_files: Sequence[str], num_classes: int,
               reduce_zero_label: bool = False) -> dict:
    """mIoU (%) of the better of two image-independent predictors.

    Computed exactly on the validation labels: always the most frequent
    class (mIoU = its pixel share / number of classes present), or a
    uniformly random class (expected IoU of class c = (n_c/C) /
    (n_c + N/C - n_c/C), over all C classes).
    """
    import numpy as np
    from PIL import Image
    counts = np.zeros(num_classes, dtype=np.float64)
    for path in label_files:
        label = np.asarray(Image.open(path)).astype(np.int64)
        if reduce_zero_label:
            label = np.where(label == 0, 255, label - 1)
        valid = label[(label >= 0) & (label < num_classes)]
        counts += np.bincount(valid, minlength=num_classes)[:num_classes]
    total = counts.sum()
    if total == 0:
        return dict(value=None, how='no labelled pixels')
    present = int((counts > 0).sum())
    majority = 100 * counts.max() / total / present
    c = num_classes
    random_iou = (counts / c) / (counts + total / c - counts / c)
    random = 100 * random_iou.mean()
    best = max(majority, random)
    return dict(
        value=best,
        how=(f'best image-independent predictor on the validation labels: '
             f'always the most frequent class gives mIoU {majority:.2f}, a '
             f'uniformly random class {random:.2f} (in expectation); '
             f'{present} of {num_classes} classes occur'))


def cls_chance(val_list: str, num_classes: int) -> dict:
    """Top-1 accuracy (%) of always predicting the most frequent class."""
    labels = []
    with open(val_list) as f:
        for line in f:
            if line.strip():
                labels.append(int(line.split()[-1]))
    if not labels:
        return dict(value=None, how='no validation labels')
    top = max(labels.count(k) for k in set(labels))
    value = 100 * top / len(labels)
    return dict(value=value,
                how=f'always the most frequent class of the validation set '
                f'({len(labels)} images, {num_classes} classes; a uniform '
                f'guess scores {100 / num_classes:.1f})')


def pose_chance(root: str) -> dict:
    """AP of the mean pose placed in every person box (image-independent).

    The mean pose is the average of the training keypoints normalised to
    their boxes; it is placed in each box of the detection file the demo
    config evaluates with and scored with the COCO keypoint OKS AP.
    """
    import numpy as np
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    with open(osp.join(root, 'annotations',
                       'person_keypoints_train2017.json')) as f:
        train = json.load(f)
    sums, nums = np.zeros((17, 2)), np.zeros((17, 1))
    for ann in train['annotations']:
        x, y, w, h = ann['bbox']
        if w <= 0 or h <= 0:
            continue
        kpts = np.asarray(ann['keypoints'], dtype=np.float64).reshape(17, 3)
        vis = kpts[:, 2:] > 0
        norm = (kpts[:, :2] - [x, y]) / [w, h]
        sums += norm * vis
        nums += vis
    mean = sums / np.maximum(nums, 1)
    with open(osp.join(root, 'person_detection_results',
                       'COCO_val2017_detections_AP_H_56_person.json')) as f:
        dets = json.load(f)
    results = []
    for det in dets:
        x, y, w, h = det['bbox']
        pts = mean * [w, h] + [x, y]
        kpts = np.concatenate([pts, np.ones((17, 1))], axis=1)
        results.append(dict(image_id=det['image_id'], category_id=1,
                            keypoints=kpts.flatten().tolist(),
                            score=float(det.get('score', 1.0))))
    gt = COCO(osp.join(root, 'annotations', 'person_keypoints_val2017.json'))
    dt = gt.loadRes(results)
    sigmas = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62,
                       .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0
    ev = COCOeval(gt, dt, 'keypoints', sigmas, use_area=True)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return dict(value=float(ev.stats[0]),
                how='the mean training pose (normalised to its box) placed '
                'in every validation person box, COCO OKS AP')


def chance_level(task_name: str, data_root: str) -> dict:
    """The chance level of the task's metric on its generated data.

    Returns ``dict(value=..., how=...)``; ``value`` is None with the reason
    in ``how`` when it could not be computed.
    """
    task = TASKS[task_name]
    root = osp.join(REPO, data_root, task['folder'])
    try:
        if task_name == 'seg':
            files = glob.glob(osp.join(root, 'gtFine', 'val', '*',
                                       '*_labelTrainIds.png'))
            return seg_chance(files, 19)
        if task_name == 'ade20k':
            files = glob.glob(osp.join(root, 'annotations', 'validation',
                                       '*.png'))
            return seg_chance(files, 150, reduce_zero_label=True)
        if task_name == 'cls':
            return cls_chance(osp.join(root, 'meta', 'val.txt'), 10)
        if task_name == 'pose':
            return pose_chance(root)
    except Exception as e:  # a report without chance beats no report
        return dict(value=None, how=f'could not be computed ({e!r})')
    return {}
