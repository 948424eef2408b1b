"""MACs through each codebase's own tensor forward, SuperTicketHRNet's
output widths, and the head-width check before training (issue 22)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from tiny_configs import TINY_BACKBONE

import mmsupertickets  # noqa: F401
from mmsupertickets.flops import ResourceEstimator
from mmsupertickets.head_widths import check_input_widths
from mmsupertickets.testing.dropin import config_root


def stock_model(codebase, config, backbone=None):
    """A stock config's model, without weights from the internet, on CPU."""
    import importlib
    importlib.import_module(f'{codebase}.utils').register_all_modules(False)
    init_default_scope(codebase)
    cfg = Config.fromfile(osp.join(config_root(codebase), config)).model
    cfg.pop('pretrained', None)
    cfg.backbone.pop('init_cfg', None)
    if backbone is not None:
        cfg.backbone = backbone
    from mmengine.registry import MODELS
    return MODELS.build(cfg)


def test_cascade_segmentor_counts_both_heads():
    """OCRNet's decode_head is a ModuleList (CascadeEncoderDecoder): the
    count runs the segmentor's own cascade, so both stages count and the
    total is backbone + decode heads (the auxiliary head is train-only)."""
    model = stock_model(
        'mmseg', 'ocrnet/ocrnet_hr18_4xb2-80k_cityscapes-512x1024.py')
    counts = ResourceEstimator((64, 64)).module_macs(model)
    assert counts['decode_head.0'] > 0 and counts['decode_head.1'] > 0
    assert counts[''] == counts['backbone'] + counts['decode_head']


def test_simcc_head_and_classifier_neck_count():
    """RTMPose's SimCC head returns two tensors; the classifier runs its
    neck: every layer of both heads is counted."""
    pose = stock_model('mmpose', 'body_2d_keypoint/rtmpose/coco/'
                       'rtmpose-t_8xb256-420e_coco-256x192.py')
    counts = ResourceEstimator((256, 192)).module_macs(pose)
    # cls_x runs once per keypoint.
    cls_x = pose.head.cls_x
    assert counts['head.cls_x'] == \
        pose.head.out_channels * cls_x.in_features * cls_x.out_features
    assert counts[''] == counts['backbone'] + counts['head']

    cls = stock_model('mmpretrain', 'resnet/resnet18_8xb32_in1k.py')
    counts = ResourceEstimator((64, 64)).module_macs(cls)
    fc = cls.head.fc
    assert counts['head.fc'] == fc.in_features * fc.out_features
    assert counts[''] == counts['backbone'] + counts['head']


@pytest.mark.parametrize('preset, widths', [('w32', [32, 64, 128, 256]),
                                             ((48, ), [48])])
def test_out_channels_project_to_stock_widths(preset, widths):
    from mmsupertickets.models.backbones.supertickets_hrnet import (
        SuperTicketHRNet,
    )
    indices = (0, 1, 2, 3) if len(widths) == 4 else (0, )
    net = SuperTicketHRNet(**{k: v for k, v in TINY_BACKBONE.items()
                              if k != 'type'}, out_indices=indices,
                           out_channels=preset)
    assert net.out_channels == widths
    outs = net.eval()(torch.rand(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == widths
    with pytest.raises(ValueError, match="out_channels='w33'.*w18"):
        SuperTicketHRNet(out_channels='w33')
    with pytest.raises(ValueError, match='one width per branch'):
        SuperTicketHRNet(out_channels=(32, 64))


def test_wrong_head_width_names_key_and_value():
    """fcn_hr48's head on the W18-wide supernet is refused naming
    model.decode_head.in_channels and the widths; with out_channels='w48'
    the same head is accepted."""
    hr48 = 'hrnet/fcn_hr48_4xb2-80k_cityscapes-512x1024.py'
    model = stock_model('mmseg', hr48,
                        backbone=dict(type='SuperTicketHRNet'))
    with pytest.raises(ValueError) as e:
        check_input_widths(model)
    assert 'model.decode_head.in_channels must be [18, 36, 72, 144]' in \
        str(e.value)
    assert "model.backbone.out_channels='w48'" in str(e.value)
    model = stock_model('mmseg', hr48, backbone=dict(
        type='SuperTicketHRNet', out_channels='w48'))
    check_input_widths(model)

    pose = stock_model('mmpose', 'body_2d_keypoint/topdown_heatmap/coco/'
                       'td-hm_hrnet-w32_8xb64-210e_coco-256x192.py',
                       backbone=dict(type='SuperTicketHRNet'))
    with pytest.raises(ValueError, match=(
            r'model.head.in_channels must be 144.*out_indices=\(0, \) and '
            r'model.backbone.out_channels=\(32, \)')):
        check_input_widths(pose)


def test_width_check_fires_before_the_first_iteration(cityscapes_root,
                                                      tmp_path):
    """Through the stock runner: the run stops in before_train with the
    message, no iteration runs."""
    from mmengine.runner import Runner
    from tiny_configs import seg_cfg
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=2, hooks=[
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=1, by_epoch=False)])
    cfg['model']['decode_head']['in_channels'] = [8, 16, 24, 40]
    runner = Runner.from_cfg(Config(copy.deepcopy(cfg)))
    with pytest.raises(ValueError, match=r'model.decode_head.in_channels '
                       r'must be \[8, 16, 24, 32\]'):
        runner.train()
    assert runner.iter == 0
