"""model-index.yml and configs/supertickets/metafile.yml (what `mim search
mmsupertickets` lists) describe every runnable config, and what they say
about it is what the config builds (issue #22.8)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from modelindex import load
from wheel_builds import ROOT

import mmsupertickets  # noqa: F401  (registers the `mmsupertickets::` scope)

DATA = {'CityscapesDataset': 'Cityscapes', 'ADE20KDataset': 'ADE20K',
        'CocoDataset': 'COCO', 'ImageNet': 'ImageNet-1k'}
TASK = {'mmseg': 'Semantic Segmentation', 'mmpose': 'Pose Estimation',
        'mmpretrain': 'Image Classification'}


def runnable_configs():
    """Config files that are not fragments (``_*.py``)."""
    return sorted(
        osp.relpath(path, ROOT) for path in glob.glob(
            osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
        if not osp.basename(path).startswith('_'))


def index_models():
    return {model.name: model for model in
            load(osp.join(ROOT, 'model-index.yml')).models}


def test_index_lists_every_runnable_config_once():
    models = index_models()
    configs = runnable_configs()
    assert sorted(model.config for model in models.values()) == configs
    for name, model in models.items():
        assert osp.basename(model.config) == name + '.py'
        assert model.in_collection == 'SuperTickets'


@pytest.mark.parametrize('config', [
    'configs/supertickets/supertickets-sp95_hrnas_8xb4-430e_cityscapes'
    '-512x1024.py',
    'configs/supertickets/demo/supertickets-macs50_td-hm_hrnas_1xb16-demo'
    '_coco-128x96.py',
    'configs/supertickets/supertickets-searchonly_hrnas_4xb64-350e_in1k.py',
])
def test_index_metadata_is_what_the_config_says(config):
    meta = {model.config: model.metadata.data
            for model in index_models().values()}[config]
    cfg = Config.fromfile(osp.join(ROOT, config))
    hooks = {hook['type']: hook for hook in cfg.custom_hooks}
    assert meta['Task'] == TASK[cfg.default_scope]
    dataset = cfg.train_dataloader.dataset
    assert meta['Training Data'] == DATA[dataset.type]
    assert meta['Architecture'][0] == cfg.model.backbone.type
    assert set(meta['Hooks']) <= set(hooks)
    assert meta.get('Target Sparsity') == hooks.get(
        'ProgressivePruningHook', {}).get('target_sparsity')
    assert meta.get('Target MACs') == hooks.get(
        'SuperNetSearchHook', {}).get('target_macs')
    train = cfg.train_cfg
    assert meta.get('Epochs', meta.get('Iterations')) == train.get(
        'max_epochs', train.get('max_iters'))
