"""The generated data a drop-in matrix cell trains on
(:mod:`mmsupertickets.testing.dropin`): the small datasets in the real
on-disk formats, and a stock config's training loader rewritten to read
them at a small input."""
import glob
import os.path as osp
import re
import shutil
from typing import Dict, Optional, Tuple

SEG_SIZE = 64
CLS_SIZE = 64
# Stock training transforms that only add randomness.
_RANDOM_TRANSFORMS = re.compile(
    r'Random|Albu|Photometric|Mosaic|MixUp|YOLOX|FilterAnnotations|'
    r'CachedMixUp|CachedMosaic|HalfBody|Flip|ColorJitter|AutoAugment|'
    r'RandAugment|Erasing|Lighting|CutMix')

__all__ = ['generate_data', 'register_fold_labels', 'generated_loader',
           'config_image_size', 'SEG_SIZE', 'CLS_SIZE']


def generate_data(root: str) -> Dict[str, str]:
    """Write (once) the small generated datasets the runs read; returns the
    root of each format.

    Example:
        >>> generate_data('/tmp/dropin/data')['coco']  # doctest: +SKIP
        '/tmp/dropin/data/coco'
    """
    from mmsupertickets.testing.ade20k import generate_ade20k
    from mmsupertickets.testing.cityscapes import generate_cityscapes
    from mmsupertickets.testing.coco_keypoints import generate_coco_keypoints
    from mmsupertickets.testing.imagenet import generate_imagenet
    makers = dict(
        ade20k=lambda r: generate_ade20k(r, 4, 2, (64, 64)),
        cityscapes=lambda r: generate_cityscapes(r, 4, 2, (64, 128)),
        coco=lambda r: generate_coco_keypoints(r, 4, 2, (256, 192)),
        imagenet=lambda r: generate_imagenet(r, 1, 1, (64, 64)))
    roots = {}
    for name, make in makers.items():
        path = osp.join(root, name)
        if not osp.exists(osp.join(path, '.done')):
            shutil.rmtree(path, ignore_errors=True)
            make(path)
            open(osp.join(path, '.done'), 'w').close()
        roots[name] = path
    return roots


def register_fold_labels() -> None:
    """Register the ``FoldLabels`` transform the rewritten mmseg pipelines
    use (once; mmcv is imported only here).

    Example:
        >>> register_fold_labels()  # doctest: +SKIP
    """
    from mmcv.transforms import BaseTransform
    from mmengine.registry import TRANSFORMS

    if TRANSFORMS.get('FoldLabels') is not None:
        return

    @TRANSFORMS.register_module()
    class FoldLabels(BaseTransform):
        """Folds generated segmentation labels into ``num_classes`` (the
        model's class count stays stock); 255 stays ignored."""

        def __init__(self, num_classes: int):
            self.num_classes = int(num_classes)

        def transform(self, results: dict) -> dict:
            seg = results['gt_seg_map']
            keep = seg != 255
            seg = seg.copy()
            seg[keep] = seg[keep] % self.num_classes
            results['gt_seg_map'] = seg
            return results


def generated_loader(cfg: dict, codebase: str, config: str,
                     roots: Dict[str, str], size: Optional[int] = None
                     ) -> Optional[Tuple[dict, tuple, str]]:
    """The training loader of the generated dataset of ``codebase``, the
    input shape (H, W) and one image for inference: ``(loader, shape,
    image)``. mmseg configs also get the small input in their data
    preprocessor and a whole-image ``test_cfg`` (``cfg`` is changed).
    ``size`` replaces mmpretrain's small input. None for an mmpose config
    without a training pipeline.

    Example:
        >>> loader, shape, image = generated_loader(  # doctest: +SKIP
        ...     cfg, 'mmpretrain', 'resnet/resnet18_8xb32_in1k.py', roots)
        >>> shape  # doctest: +SKIP
        (64, 64)
    """
    if codebase == 'mmseg':
        return _seg_data(cfg, config, roots)
    if codebase == 'mmpose':
        return _pose_data(cfg, roots)
    return _cls_data(cfg, roots, size or CLS_SIZE)


def config_image_size(cfg: dict) -> int:
    """The image size a classification config is built for: its
    backbone's ``img_size`` if it fixes one, else its test crop (or resize)
    size, else 224.

    Example:
        >>> config_image_size(dict(model=dict(backbone=dict(img_size=384))))
        384
        >>> config_image_size(dict(model=dict(backbone=dict()),
        ...     test_pipeline=[dict(type='ResizeEdge', scale=256),
        ...                    dict(type='CenterCrop', crop_size=224)]))
        224
    """
    fixed = _find(cfg['model'].get('backbone') or {}, 'img_size')
    if fixed is None:
        pipeline = cfg.get('test_pipeline') or _find(
            cfg.get('test_dataloader') or {}, 'pipeline') or []
        for key in ('crop_size', 'scale'):
            fixed = _find(pipeline, key)
            if fixed is not None:
                break
    if isinstance(fixed, (list, tuple)):
        fixed = max(fixed)
    return int(fixed) if isinstance(fixed, (int, float)) else 224


def _find(obj, key):
    """First value of ``key`` in a nested dict/list, depth first."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _loader(dataset: dict, batch_size: int = 2) -> dict:
    return dict(batch_size=batch_size, num_workers=0,
                persistent_workers=False,
                sampler=dict(type='InfiniteSampler', shuffle=False),
                dataset=dataset)


def _seg_data(cfg, config: str, roots) -> Tuple[dict, tuple, str]:
    heads = cfg['model'].get('decode_head')
    head = heads[0] if isinstance(heads, list) else heads
    num_classes = (head or {}).get('num_classes', 2)
    if 'cityscapes' in config:
        root = roots['cityscapes']
        dataset = dict(type='CityscapesDataset', data_root=root,
                       data_prefix=dict(img_path='leftImg8bit/train',
                                        seg_map_path='gtFine/train'))
        zero = False
    else:
        root = roots['ade20k']
        dataset = dict(type='ADE20KDataset', data_root=root,
                       data_prefix=dict(img_path='images/training',
                                        seg_map_path='annotations/training'))
        zero = True
    dataset['pipeline'] = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=zero),
        dict(type='FoldLabels', num_classes=num_classes),
        dict(type='Resize', scale=(SEG_SIZE, SEG_SIZE), keep_ratio=False),
        dict(type='PackSegInputs')]
    pre = cfg['model'].get('data_preprocessor') or {}
    if 'size' in pre or 'size_divisor' not in pre:
        pre['size'] = (SEG_SIZE, SEG_SIZE)
    cfg['model']['data_preprocessor'] = pre
    cfg['model']['test_cfg'] = dict(mode='whole')
    image = sorted(glob.glob(osp.join(
        root, 'leftImg8bit/train/*/*.png' if not zero else
        'images/training/*.jpg')))[0]
    return _loader(dataset), (SEG_SIZE, SEG_SIZE), image


def _pose_data(cfg, roots) -> Optional[Tuple[dict, tuple, str]]:
    stock = cfg['train_dataloader']['dataset']
    while 'pipeline' not in stock and 'datasets' in stock:
        stock = stock['datasets'][0]
    pipeline = stock.get('pipeline') or cfg.get('train_pipeline') or []
    if not pipeline:
        return None
    bottomup = cfg['model']['type'] == 'BottomupPoseEstimator'
    if bottomup:
        stages = _bottomup_stages(pipeline, cfg.get('codec'))
    else:
        stages = [t for t in pipeline
                  if not _RANDOM_TRANSFORMS.search(str(t.get('type', '')))]
    size = _find(stages, 'input_size') or _find(cfg.get('codec'),
                                                'input_size')
    root = roots['coco']
    dataset = dict(type='CocoDataset', data_root=root,
                   data_mode='bottomup' if bottomup else 'topdown',
                   ann_file='annotations/person_keypoints_train2017.json',
                   data_prefix=dict(img='train2017/'), pipeline=stages)
    image = sorted(glob.glob(osp.join(root, 'train2017', '*.jpg')))[0]
    w, h = size if size else (192, 256)
    return _loader(dataset), (h, w), image


def _bottomup_stages(pipeline: list, codec) -> list:
    """A bottom-up training pipeline without randomness.

    ``BottomupRandomAffine`` is also the resize to the input size and
    sets the ``input_size`` key later transforms read: it stays, with
    every random part off.
    """
    stages = []
    for t in pipeline:
        kind = str(t.get('type', ''))
        if kind == 'BottomupRandomAffine':
            t = dict(t, shift_prob=0., scale_prob=0., rotate_prob=0.,
                     shear_prob=0.)
            t.setdefault('input_size', _find(codec, 'input_size'))
        elif _RANDOM_TRANSFORMS.search(kind):
            continue
        stages.append(t)
    return stages


def _cls_data(cfg, roots, size: int) -> Tuple[dict, tuple, str]:
    root = roots['imagenet']
    dataset = dict(type='CustomDataset', data_root=root,
                   ann_file='meta/train.txt', data_prefix='train',
                   with_label=True,
                   pipeline=[dict(type='LoadImageFromFile'),
                             dict(type='Resize', scale=(size, size)),
                             dict(type='PackInputs')])
    image = sorted(glob.glob(osp.join(root, 'train', '*', '*.JPEG')))[0]
    return _loader(dataset), (size, size), image
