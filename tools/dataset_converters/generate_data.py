"""Generate the small synthetic datasets used by tests and demos.

Usage::

    python tools/dataset_converters/generate_data.py \
        {cityscapes,ade20k,coco,imagenet,all} [--out data/demo] [--seed 0] \
        [--num-train N] [--num-val N] [--size H W] [--force]

Each dataset is written under ``--out`` with the sub-layout of the stock
configs' ``data_root``::

    data/demo/cityscapes                  mmseg CityscapesDataset
    data/demo/ade/ADEChallengeData2016    mmseg ADE20KDataset
    data/demo/coco                        mmpose CocoDataset
    data/demo/imagenet                    mmpretrain ImageNet

A dataset is built in a hidden temporary folder next to its target and
renamed into place only once complete, with a ``.generated.json`` record of
its parameters written last; an interrupted run therefore never leaves a
folder that looks complete. An existing complete dataset is skipped unless
``--force`` is given; a folder without the record (an interrupted or foreign
dataset) is left untouched unless ``--force`` is given.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

from mmsupertickets.testing import (
    generate_ade20k,
    generate_cityscapes,
    generate_coco_keypoints,
    generate_imagenet,
)

MARKER = '.generated.json'
# name: (generator, folder under --out, num_train, num_val, (H, W))
DATASETS = {
    'cityscapes': (generate_cityscapes, 'cityscapes', 200, 40, (128, 256)),
    'ade20k':
    (generate_ade20k, 'ade/ADEChallengeData2016', 200, 40, (128, 128)),
    'coco': (generate_coco_keypoints, 'coco', 200, 40, (192, 256)),
    # ImageNet counts are per class (10 classes).
    'imagenet': (generate_imagenet, 'imagenet', 100, 20, (64, 64)),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write small synthetic datasets in the on-disk formats '
        'of the stock OpenMMLab dataset classes.')
    parser.add_argument(
        'dataset', choices=list(DATASETS) + ['all'], help='what to generate')
    parser.add_argument(
        '--out', default='data/demo', help='root folder of the datasets')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--num-train',
        type=int,
        help='training images (ImageNet: per class); default per dataset: ' +
        ', '.join(f'{k} {v[2]}' for k, v in DATASETS.items()))
    parser.add_argument(
        '--num-val',
        type=int,
        help='validation images (ImageNet: per class); default per dataset: ' +
        ', '.join(f'{k} {v[3]}' for k, v in DATASETS.items()))
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='image size; default per dataset: ' +
        ', '.join(f'{k} {v[4][0]}x{v[4][1]}' for k, v in DATASETS.items()))
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate even if the target folder exists')
    return parser.parse_args(argv)


def generate_one(name: str,
                 out: str,
                 seed: int,
                 num_train=None,
                 num_val=None,
                 size=None,
                 force: bool = False) -> bool:
    """Generate one dataset atomically.

    Args:
        name (str): Key of :data:`DATASETS`.
        out (str): Root folder of all datasets.
        seed (int): Random seed.
        num_train (int, optional): Training images; None for the default.
        num_val (int, optional): Validation images; None for the default.
        size (tuple[int, int], optional): ``(H, W)``; None for the default.
        force (bool): Replace an existing target folder.

    Returns:
        bool: False if the target exists but is not a complete generated
        dataset and ``force`` is not set; True otherwise.
    """
    generator, folder, default_train, default_val, default_size = \
        DATASETS[name]
    params = dict(
        dataset=name,
        seed=seed,
        num_train=default_train if num_train is None else num_train,
        num_val=default_val if num_val is None else num_val,
        image_size=list(default_size if size is None else size))
    target = osp.abspath(osp.join(out, folder))
    marker = osp.join(target, MARKER)

    if osp.exists(target) and not force:
        if not osp.isfile(marker):
            print(f'{name}: {target} exists but is not a complete generated '
                  'dataset; left untouched (use --force to replace it)')
            return False
        with open(marker) as f:
            existing = json.load(f).get('params', {})
        note = '' if existing == params else \
            f' (written with {existing}; use --force for {params})'
        print(f'{name}: {target} is complete, skipped{note}')
        return True

    parent = osp.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(target)}.tmp-', dir=parent)
    # mkdtemp makes a private (0700) folder; give the dataset the usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    start = time.time()
    try:
        info = generator(
            tmp,
            num_train=params['num_train'],
            num_val=params['num_val'],
            image_size=tuple(params['image_size']),
            seed=seed)
        counts = {k: info[k] for k in ('train', 'val')}
        # Written last: its presence is what marks the folder complete.
        with open(osp.join(tmp, MARKER), 'w') as f:
            json.dump(dict(params=params, counts=counts), f, indent=2)
        if osp.exists(target):
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(target)}.old-', dir=parent)
            os.rename(target, osp.join(old, 'data'))
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f'{name}: wrote {counts["train"]} train / {counts["val"]} val '
          f'images to {target} in {time.time() - start:.1f}s')
    return True


def main(argv=None) -> int:
    args = parse_args(argv)
    names = list(DATASETS) if args.dataset == 'all' else [args.dataset]
    start = time.time()
    ok = True
    for name in names:
        ok &= generate_one(name, args.out, args.seed, args.num_train,
                           args.num_val, args.size, args.force)
    if len(names) > 1:
        print(f'done in {time.time() - start:.1f}s')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
