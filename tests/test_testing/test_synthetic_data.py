"""The synthetic datasets load with the stock OpenMMLab dataset classes.

Each dataset is generated tiny into a temporary folder and read back through
the registries with the stock dataset class and the stock pipeline of the
package's own config (only sizes shrunk to fit the small images).
"""
import copy
import hashlib
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmsupertickets.testing import ade20k as ade_module
from mmsupertickets.testing import cityscapes as cs_module
from mmsupertickets.testing import (
    generate_ade20k,
    generate_cityscapes,
    generate_coco_keypoints,
    generate_imagenet,
)
from mmsupertickets.testing import imagenet as in_module

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# (H, W) of the tiny datasets: small enough to keep the file fast.
CS_SIZE = (64, 128)
ADE_SIZE = (64, 64)
COCO_SIZE = (96, 128)
IN_SIZE = (32, 32)


def stock_config(package: str, rel_path: str) -> Config:
    """Load a config shipped inside an installed OpenMMLab package."""
    module = importlib.import_module(package)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel_path)
    return Config.fromfile(path)


def resize_transforms(pipeline, **overrides):
    """Copy a stock pipeline, overriding arguments of some transform types."""
    pipeline = copy.deepcopy(list(pipeline))
    for t in pipeline:
        t.update(overrides.get(t['type'], {}))
    return pipeline


def read_label(path):
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


def tree_digest(root):
    """sha256 of every file under ``root`` keyed by relative path."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path,
                                root)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp('synthetic')


# --------------------------------------------------------------- Cityscapes
@pytest.fixture(scope='module')
def cityscapes(data_root):
    return generate_cityscapes(
        str(data_root / 'cityscapes'), 4, 2, CS_SIZE, seed=0)


def test_cityscapes_stock_dataset(cityscapes):
    import mmseg.datasets  # noqa: F401
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = stock_config('mmseg', '_base_/datasets/cityscapes.py')
    h, w = CS_SIZE
    allowed = set(range(19)) | {255}
    for split, num in (('train', 4), ('val', 2)):
        ds_cfg = copy.deepcopy(cfg[f'{split}_dataloader']['dataset'].to_dict())
        ds_cfg.update(
            data_root=cityscapes['root'],
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations')
            ])
        dataset = DATASETS.build(ds_cfg)
        assert len(dataset) == num
        assert len(dataset.metainfo['classes']) == 19
        seen = set()
        for i in range(len(dataset)):
            data = dataset[i]
            assert data['img'].shape == (h, w, 3)
            assert data['gt_seg_map'].shape == (h, w)
            values = set(np.unique(data['gt_seg_map']).tolist())
            assert values <= allowed
            seen |= values
        # Any two consecutive frames hold every class.
        assert seen >= set(range(19)), sorted(set(range(19)) - seen)
    # The ego-vehicle bonnet gives ignored pixels in some frames.
    assert any((read_label(p) == 255).any()
               for p in cityscapes['train_labels'] + cityscapes['val_labels'])

    # Stock pipelines, sizes shrunk to the small frames.
    train = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
    train.update(
        data_root=cityscapes['root'],
        pipeline=resize_transforms(
            cfg.train_pipeline,
            RandomResize=dict(scale=(w, h)),
            RandomCrop=dict(crop_size=(h // 2, w // 2))))
    packed = DATASETS.build(train)[0]
    assert tuple(packed['inputs'].shape) == (3, h // 2, w // 2)
    seg = packed['data_samples'].gt_sem_seg.data
    assert set(seg.unique().tolist()) <= allowed
    val = copy.deepcopy(cfg.val_dataloader.dataset.to_dict())
    val.update(
        data_root=cityscapes['root'],
        pipeline=resize_transforms(
            cfg.test_pipeline, Resize=dict(scale=(w, h))))
    packed = DATASETS.build(val)[0]
    assert tuple(packed['inputs'].shape) == (3, h, w)
    assert packed['data_samples'].gt_sem_seg.data.shape[-2:] == (h, w)


def test_cityscapes_file_names(cityscapes):
    root = cityscapes['root']
    for split, num in (('train', 4), ('val', 2)):
        images = sorted(
            osp.relpath(osp.join(d, f), osp.join(root, 'leftImg8bit', split))
            for d, _, fs in os.walk(osp.join(root, 'leftImg8bit', split))
            for f in fs)
        assert len(images) == num
        for rel in images:
            city, name = rel.split(os.sep)
            assert city in cs_module.CITIES[split]
            parts = name.split('_')
            assert parts[0] == city and len(parts[1]) == len(parts[2]) == 6
            assert name.endswith('_leftImg8bit.png')
            label = osp.join(
                root, 'gtFine', split, city,
                name.replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png'))
            assert read_label(label).dtype == np.uint8
            assert read_label(label).ndim == 2


# ------------------------------------------------------------------ ADE20K
@pytest.fixture(scope='module')
def ade20k(data_root):
    return generate_ade20k(
        str(data_root / 'ade' / 'ADEChallengeData2016'),
        4,
        2,
        ADE_SIZE,
        seed=0)


def test_ade20k_stock_dataset(ade20k):
    import mmseg.datasets  # noqa: F401
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = stock_config('mmseg', '_base_/datasets/ade20k.py')
    h, w = ADE_SIZE
    used = set(ade_module.USED_CLASSES)
    names = DATASETS.get('ADE20KDataset').METAINFO['classes']
    for value, name in ade_module.USED_CLASSES.items():
        assert names[value - 1].strip() == name
    for split, folder, num in (('train', 'training', 4), ('val', 'validation',
                                                          2)):
        # Raw annotations: 0 ("other") and the used classes, all in 0..150.
        raw = set()
        for ann in ade20k[f'{split}_annotations']:
            label = read_label(ann)
            assert label.shape == (h, w) and label.dtype == np.uint8
            raw |= set(np.unique(label).tolist())
            assert osp.isfile(
                osp.join(ade20k['root'], 'images', folder,
                         osp.basename(ann)[:-4] + '.jpg'))
        assert max(raw) <= 150
        assert raw == used | {0}

        ds_cfg = copy.deepcopy(cfg[f'{split}_dataloader']['dataset'].to_dict())
        ds_cfg.update(
            data_root=ade20k['root'],
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', reduce_zero_label=True)
            ])
        dataset = DATASETS.build(ds_cfg)
        assert len(dataset) == num
        seen = set()
        for i in range(num):
            data = dataset[i]
            assert data['img'].shape == (h, w, 3)
            seen |= set(np.unique(data['gt_seg_map']).tolist())
        # reduce_zero_label: 0 -> 255, k -> k - 1.
        assert seen == {v - 1 for v in used} | {255}

    train = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
    train.update(
        data_root=ade20k['root'],
        pipeline=resize_transforms(
            cfg.train_pipeline,
            RandomResize=dict(scale=(w, h)),
            RandomCrop=dict(crop_size=(h // 2, w // 2))))
    packed = DATASETS.build(train)[0]
    assert tuple(packed['inputs'].shape) == (3, h // 2, w // 2)
    values = set(packed['data_samples'].gt_sem_seg.data.unique().tolist())
    assert values <= set(range(150)) | {255}


# -------------------------------------------------------------------- COCO
@pytest.fixture(scope='module')
def coco(data_root):
    return generate_coco_keypoints(
        str(data_root / 'coco'), 4, 2, COCO_SIZE, seed=0)


def test_coco_json_format(coco):
    from xtcocotools.coco import COCO
    h, w = COCO_SIZE
    all_v = []
    for split, folder, num in (('train', 'train2017', 4), ('val', 'val2017',
                                                           2)):
        api = COCO(coco[f'{split}_ann_file'])
        assert len(api.getImgIds()) == num
        assert api.getCatIds() == [1]
        cat = api.loadCats(1)[0]
        assert cat['keypoints'][0] == 'nose'
        assert cat['keypoints'][-1] == 'right_ankle'
        assert len(cat['keypoints']) == 17 and len(cat['skeleton']) == 19
        for img in api.loadImgs(api.getImgIds()):
            assert img['file_name'] == f'{img["id"]:012d}.jpg'
            assert (img['height'], img['width']) == (h, w)
            image = cv2.imread(
                osp.join(coco['root'], folder, img['file_name']))
            assert image.shape == (h, w, 3)
            anns = api.loadAnns(api.getAnnIds(imgIds=img['id']))
            assert 1 <= len(anns) <= 3
            for ann in anns:
                kpts = np.array(ann['keypoints']).reshape(17, 3)
                assert all(isinstance(v, int) for v in ann['keypoints'])
                v = kpts[:, 2]
                assert set(v.tolist()) <= {0, 1, 2}
                assert ann['num_keypoints'] == (v > 0).sum() >= 5
                assert (kpts[v == 0, :2] == 0).all()
                lab = kpts[v > 0]
                assert (lab[:, 0] >= 0).all() and (lab[:, 0] < w).all()
                assert (lab[:, 1] >= 0).all() and (lab[:, 1] < h).all()
                x, y, bw, bh = ann['bbox']
                assert bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
                assert 0 < ann['area'] <= bw * bh
                assert ann['iscrowd'] == 0 and ann['category_id'] == 1
                assert len(ann['segmentation'][0]) >= 6
                all_v.append(v)
    all_v = np.concatenate(all_v)
    assert (all_v == 2).mean() > 0.5
    assert (all_v == 0).any()
    dets = json.load(open(coco['bbox_file']))
    val = json.load(open(coco['val_ann_file']))
    assert len(dets) == len(val['annotations']) == coco['val_persons']
    assert all(d['score'] == 1.0 and d['category_id'] == 1 for d in dets)


def _mmpose_cfg():
    return stock_config(
        'mmpose', 'body_2d_keypoint/topdown_heatmap/coco/'
        'td-hm_res50_8xb64-210e_coco-256x192.py')


def test_coco_stock_dataset(coco):
    import mmpose.datasets  # noqa: F401
    from mmpose.registry import DATASETS
    init_default_scope('mmpose')
    cfg = _mmpose_cfg()
    train = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
    train.update(data_root=coco['root'], pipeline=[])
    dataset = DATASETS.build(train)
    assert len(dataset) == coco['train_persons']
    kpts = np.concatenate(
        [dataset[i]['keypoints'] for i in range(len(dataset))])
    vis = np.concatenate(
        [dataset[i]['keypoints_visible'] for i in range(len(dataset))])
    assert kpts.shape == (len(dataset), 17, 2)
    assert set(np.unique(vis).tolist()) == {0., 1.}
    assert dataset.metainfo['num_keypoints'] == 17

    train['pipeline'] = cfg.train_pipeline
    packed = DATASETS.build(train)[0]
    assert tuple(packed['inputs'].shape) == (3, 256, 192)
    assert packed['data_samples'].gt_fields.heatmaps.shape == (17, 64, 48)

    # The stock val set-up: detected boxes from bbox_file.
    val = copy.deepcopy(cfg.val_dataloader.dataset.to_dict())
    val.update(
        data_root=coco['root'],
        bbox_file=coco['bbox_file'],
        pipeline=cfg.val_pipeline)
    dataset = DATASETS.build(val)
    assert len(dataset) == coco['val_persons']
    assert tuple(dataset[0]['inputs'].shape) == (3, 256, 192)


def test_coco_metric_ground_truth_scores_one(coco):
    import mmpose.datasets  # noqa: F401
    from mmpose.evaluation.metrics import CocoMetric
    from mmpose.registry import DATASETS
    init_default_scope('mmpose')
    cfg = _mmpose_cfg()
    val = copy.deepcopy(cfg.val_dataloader.dataset.to_dict())
    val.update(data_root=coco['root'], bbox_file=None, pipeline=[])
    dataset = DATASETS.build(val)
    metric = CocoMetric(ann_file=coco['val_ann_file'])
    metric.dataset_meta = dataset.metainfo
    samples = []
    for i in range(len(dataset)):
        info = dataset[i]
        kpts = info['keypoints'].copy()
        vis = info['keypoints_visible']
        # Unlabelled joints: low score at the box centre, as a model would.
        x0, y0, x1, y1 = info['bbox'][0]
        kpts[vis == 0] = ((x0 + x1) / 2, (y0 + y1) / 2)
        samples.append(
            dict(
                id=info['id'],
                img_id=info['img_id'],
                category_id=1,
                gt_instances=dict(
                    bbox_scales=np.array([[x1 - x0, y1 - y0]]),
                    bbox_scores=np.ones(1)),
                pred_instances=dict(
                    keypoints=kpts, keypoint_scores=vis.astype(np.float32))))
    metric.process([], samples)
    results = metric.evaluate(size=len(samples))
    assert results['coco/AP'] == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- ImageNet
@pytest.fixture(scope='module')
def imagenet(data_root):
    return generate_imagenet(
        str(data_root / 'imagenet'), 3, 2, IN_SIZE, seed=0)


def test_imagenet_stock_dataset(imagenet):
    import mmpretrain.datasets  # noqa: F401
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    cfg = stock_config('mmpretrain', '_base_/datasets/imagenet_bs32.py')
    size = IN_SIZE[0]
    assert in_module.WNIDS == tuple(sorted(in_module.WNIDS))
    for split, per_class in (('train', 3), ('val', 2)):
        ds_cfg = copy.deepcopy(cfg[f'{split}_dataloader']['dataset'].to_dict())
        ds_cfg.update(data_root=imagenet['root'], pipeline=[])
        dataset = DATASETS.build(ds_cfg)
        assert len(dataset) == 10 * per_class
        # Stock metainfo: the 1000 names, of which labels 0..9 use the first.
        assert len(dataset.metainfo['classes']) == 1000
        labels = [dataset[i]['gt_label'] for i in range(len(dataset))]
        assert np.bincount(labels).tolist() == [per_class] * 10
        for i in range(len(dataset)):
            path = dataset[i]['img_path']
            assert osp.isfile(path)
            if split == 'train':
                wnid = in_module.WNIDS[dataset[i]['gt_label']]
                assert osp.basename(osp.dirname(path)) == wnid
                assert osp.basename(path).startswith(wnid + '_')
            else:
                assert osp.basename(path).startswith('ILSVRC2012_val_')
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
    ds_cfg.update(
        data_root=imagenet['root'],
        metainfo=dict(classes=IMAGENET_CATEGORIES[:10]),
        pipeline=resize_transforms(
            cfg.train_pipeline, RandomResizedCrop=dict(scale=size)))
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset.metainfo['classes']) == 10
    packed = dataset[0]
    assert tuple(packed['inputs'].shape) == (3, size, size)
    assert packed['data_samples'].gt_label.tolist() == [0]
    val = copy.deepcopy(cfg.val_dataloader.dataset.to_dict())
    val.update(
        data_root=imagenet['root'],
        pipeline=resize_transforms(
            cfg.test_pipeline,
            ResizeEdge=dict(scale=size),
            CenterCrop=dict(crop_size=size)))
    assert tuple(DATASETS.build(val)[0]['inputs'].shape) == (3, size, size)


# ------------------------------------------------------------- determinism
GENERATORS = {
    'cityscapes': (generate_cityscapes, CS_SIZE),
    'ade20k': (generate_ade20k, ADE_SIZE),
    'coco': (generate_coco_keypoints, COCO_SIZE),
    'imagenet': (generate_imagenet, IN_SIZE),
}


@pytest.mark.parametrize('name', list(GENERATORS))
def test_deterministic(name, tmp_path):
    generate, size = GENERATORS[name]
    for folder, seed in (('a', 3), ('b', 3), ('c', 4)):
        generate(str(tmp_path / folder), 2, 1, size, seed=seed)
    a, b, c = (tree_digest(tmp_path / f) for f in 'abc')
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if not k.endswith(('.txt', '.json'))]
    assert all(a[k] != c[k] for k in images)


# --------------------------------------------------------------------- CLI
def _load_cli():
    path = osp.join(REPO, 'tools', 'dataset_converters', 'generate_data.py')
    spec = importlib.util.spec_from_file_location('generate_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_skip_force_and_atomic(tmp_path, capsys, monkeypatch):
    cli = _load_cli()
    out = str(tmp_path / 'demo')
    args = [
        'imagenet', '--out', out, '--num-train', '1', '--num-val', '1',
        '--size', '16', '16'
    ]
    assert cli.main(args) == 0
    target = osp.join(out, 'imagenet')
    record = json.load(open(osp.join(target, cli.MARKER)))
    assert record['counts'] == dict(train=10, val=10)
    assert sorted(os.listdir(out)) == ['imagenet']
    # Same mode as a folder made the ordinary way, not mkdtemp's 0700.
    os.makedirs(osp.join(str(tmp_path), 'plain'))
    assert os.stat(target).st_mode == os.stat(
        osp.join(str(tmp_path), 'plain')).st_mode
    digest = tree_digest(target)

    assert cli.main(args) == 0
    assert 'skipped' in capsys.readouterr().out
    assert cli.main(args + ['--seed', '1', '--force']) == 0
    assert tree_digest(target) != digest
    assert sorted(os.listdir(out)) == ['imagenet']

    # An interrupted run leaves neither a dataset nor a temporary folder.
    def interrupted(root, **kwargs):
        os.makedirs(osp.join(root, 'train'))
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.DATASETS, 'ade20k',
                        (interrupted, ) + cli.DATASETS['ade20k'][1:])
    with pytest.raises(KeyboardInterrupt):
        cli.main(['ade20k', '--out', out])
    assert os.listdir(osp.join(out, 'ade')) == []

    # A folder without the completion record is never overwritten silently.
    os.makedirs(osp.join(out, 'coco', 'annotations'))
    assert cli.main(['coco', '--out', out]) == 1
    assert os.listdir(osp.join(out, 'coco')) == ['annotations']
