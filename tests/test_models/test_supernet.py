"""The HR-NAS heads/necks: drop-in use, reference sizes, shrink fidelity."""
import copy
import importlib
import json
import runpy
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from torch.nn.modules.batchnorm import _BatchNorm

import mmsupertickets  # noqa: F401  (registers the modules)
from mmsupertickets.flops import complexity, count_params
from mmsupertickets.models import (
    HRNASClsNeck,
    HRNASFusionNeck,
    HRNASSegHead,
    SuperTicketHRNet,
)
from mmsupertickets.structures.arch import export_arch, prefixed_arch
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    apply_plan,
    plan_channel_removal,
)

SEG_BASE = 'mmseg::hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py'
# mmpose 1.3 ships no HRNet-W18 COCO top-down config; W32 is the closest
# stock one and only its backbone/head channels differ.
POSE_BASE = ('mmpose::body_2d_keypoint/topdown_heatmap/coco/'
             'td-hm_hrnet-w32_8xb64-210e_coco-256x192.py')
CLS_BASE = 'mmpretrain::hrnet/hrnet-w18_4xb32_in1k.py'
REPO = Path(__file__).resolve().parents[2]
CUSTOM_IMPORTS = ("custom_imports = dict(imports=['mmsupertickets'], "
                  'allow_failed_imports=False)\n')


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    # The supernet is ~1000 small convs: on a 2-core machine, intra-op
    # threads cost more than they gain (measured 3-30x slower, worst when
    # the cores are shared), even for the 512x1024 MAC traces.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(scope, model_cfg):
    init_default_scope(scope)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    return registry.build(copy.deepcopy(model_cfg))


def load_config(tmp_path, base, body):
    """A user config inheriting a stock one, as a file (like on disk)."""
    path = tmp_path / 'cfg.py'
    path.write_text(f'_base_ = {base!r}\n' + CUSTOM_IMPORTS +
                    textwrap.dedent(body))
    return Config.fromfile(str(path))


def build_from_config(cfg):
    return build(cfg.default_scope, cfg.model)


def seg_cfg(channels=90, num_classes=19, **head):
    return dict(
        type='EncoderDecoder',
        backbone=dict(type='SuperTicketHRNet'),
        decode_head=dict(type='HRNASSegHead', channels=channels,
                         num_classes=num_classes, **head))


def cls_cfg():
    return dict(
        type='ImageClassifier',
        backbone=dict(type='SuperTicketHRNet'),
        neck=dict(type='HRNASClsNeck'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=1600))


def pose_cfg():
    return dict(
        type='TopdownPoseEstimator',
        backbone=dict(type='SuperTicketHRNet'),
        neck=dict(type='HRNASFusionNeck', out_channels=90),
        head=dict(type='HeatmapHead', in_channels=90, out_channels=17,
                  deconv_out_channels=None, conv_out_channels=None,
                  final_layer=dict(kernel_size=1)))


# --------------------------------------------------------------------------
# Drop-in use in stock configs
# --------------------------------------------------------------------------


def test_seg_drop_in_backbone_only(tmp_path):
    cfg = load_config(tmp_path, SEG_BASE, """\
        model = dict(pretrained=None,
                     backbone=dict(_delete_=True, type='SuperTicketHRNet'))
        """)
    model = build_from_config(cfg)
    assert isinstance(model.backbone, SuperTicketHRNet)
    model.eval()  # the stock FCN head uses SyncBN, CPU-usable in eval only
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 128), mode='tensor')
    assert out.shape == (1, 19, 16, 32)


def test_seg_drop_in_with_hrnas_head_trains(tmp_path):
    cfg = load_config(tmp_path, SEG_BASE, """\
        model = dict(
            pretrained=None,
            data_preprocessor=dict(size=(64, 128)),
            backbone=dict(_delete_=True, type='SuperTicketHRNet'),
            decode_head=dict(_delete_=True, type='HRNASSegHead', channels=90,
                             num_classes=19))
        """)
    model = build_from_config(cfg)
    assert isinstance(model.decode_head, HRNASSegHead)
    model.init_weights()
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 128), mode='tensor')
    assert out.shape == (1, 19, 16, 32)

    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 128),
                                        ori_shape=(64, 128),
                                        pad_shape=(64, 128)))
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 19, (1, 64, 128), dtype=torch.long))
        samples.append(s)
    batch = dict(
        inputs=[torch.randint(0, 256, (3, 64, 128), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=samples)
    model.train()
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    for name in ('backbone.stem.0.conv.weight',
                 'decode_head.block.paths.k7.depthwise.conv.weight',
                 'decode_head.conv_seg.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_fusion_neck_in_mmseg(tmp_path):
    cfg = load_config(tmp_path, SEG_BASE, """\
        model = dict(
            pretrained=None,
            backbone=dict(_delete_=True, type='SuperTicketHRNet'),
            neck=dict(type='HRNASFusionNeck', out_channels=90),
            decode_head=dict(_delete_=True, type='FCNHead', in_channels=90,
                             in_index=0, channels=90, num_convs=0,
                             concat_input=False, num_classes=19))
        """)
    model = build_from_config(cfg)
    assert isinstance(model.neck, HRNASFusionNeck)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 128), mode='tensor')
    assert out.shape == (1, 19, 16, 32)


def test_pose_drop_in_backbone_only(tmp_path):
    cfg = load_config(tmp_path, POSE_BASE, """\
        model = dict(
            backbone=dict(_delete_=True, type='SuperTicketHRNet',
                          out_indices=(0, )),
            head=dict(in_channels=18))
        """)
    model = build_from_config(cfg)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 48), None, mode='tensor')
    assert out.shape == (1, 17, 16, 12)


def test_pose_drop_in_with_fusion_neck(tmp_path):
    cfg = load_config(tmp_path, POSE_BASE, """\
        norm_cfg = dict(type='BN', momentum=0.1, eps=1e-5)
        model = dict(
            backbone=dict(_delete_=True, type='SuperTicketHRNet',
                          norm_cfg=norm_cfg, conv_init_std=0.001),
            neck=dict(type='HRNASFusionNeck', out_channels=90,
                      norm_cfg=norm_cfg, conv_init_std=0.001),
            head=dict(in_channels=90, conv_out_channels=None,
                      final_layer=dict(kernel_size=1)))
        """)
    model = build_from_config(cfg)
    assert isinstance(model.neck, HRNASFusionNeck)
    model.neck.init_weights()
    std = model.neck.block.paths.k3.expand.conv.weight.std().item()
    assert 0.0005 < std < 0.002  # the keypoint init, N(0, 0.001)
    model.eval()
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        feats = model.extract_feat(x)
        out = model(x, None, mode='tensor')
        # The stock head reads feats[-1]: the neck's single output.
        assert len(feats) == 1 and feats[0].shape == (1, 90, 16, 12)
        assert torch.equal(out, model.head.final_layer(feats[0]))
    assert out.shape == (1, 17, 16, 12)


def test_cls_drop_in_backbone_only(tmp_path):
    cfg = load_config(tmp_path, CLS_BASE, """\
        model = dict(backbone=dict(_delete_=True, type='SuperTicketHRNet'))
        """)
    model = build_from_config(cfg)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64), mode='tensor')
    assert out.shape == (1, 1000)


def test_cls_drop_in_with_cls_neck(tmp_path):
    cfg = load_config(tmp_path, CLS_BASE, """\
        model = dict(
            backbone=dict(_delete_=True, type='SuperTicketHRNet'),
            neck=dict(_delete_=True, type='HRNASClsNeck'),
            head=dict(in_channels=1600))
        """)
    model = build_from_config(cfg)
    assert isinstance(model.neck, HRNASClsNeck)
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(2, 3, 64, 64))
        out = model(torch.rand(2, 3, 64, 64), mode='tensor')
    assert len(feats) == 1 and feats[0].shape == (2, 1600)
    assert out.shape == (2, 1000)


# --------------------------------------------------------------------------
# Argument checks and init
# --------------------------------------------------------------------------


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match='multiple_select'):
        HRNASSegHead(num_classes=19, input_transform='multiple_select')
    with pytest.raises(ValueError, match=r'\[36, 72\]'):
        HRNASClsNeck(head_channels=(36, 72))
    with pytest.raises(ValueError, match='1.5'):
        HRNASClsNeck(dropout_ratio=1.5)
    with pytest.raises(ValueError, match='GN'):
        HRNASFusionNeck(norm_cfg=dict(type='GN', num_groups=2))
    neck = HRNASFusionNeck(in_channels=(18, 36))
    with pytest.raises(ValueError, match=r'\(18, 40\)'):
        neck([torch.rand(1, 18, 8, 8), torch.rand(1, 40, 4, 4)])


def test_default_init_is_kaiming_fan_out():
    head = HRNASSegHead(channels=90, num_classes=19)
    head.init_weights()
    dw = head.block.paths.k7.depthwise.conv.weight
    # depthwise fan_out = k², std = sqrt(2) / 7
    assert abs(dw.std().item() - 2**0.5 / 7) < 0.02
    assert torch.all(head.conv_seg.bias == 0)
    assert torch.all(head.block.norm.weight == 1)


def test_init_statistics_per_layer_kind():
    """Every conv of the supernet: std sqrt(2 / fan_out), fan_out = k² for
    depthwise and out_channels·k² otherwise (grouped shortcuts too)."""
    from mmsupertickets.models import SuperTicketHRNet
    torch.manual_seed(0)
    net = SuperTicketHRNet()
    net.init_weights()
    pooled = {}  # kind -> weights / expected std, for the small convs
    for name, m in net.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        k = m.kernel_size[0] * m.kernel_size[1]
        if m.groups > 1 and m.groups == m.in_channels:
            kind, fan_out = 'depthwise', k
        else:
            kind = 'grouped' if m.groups > 1 else f'dense {m.kernel_size}'
            fan_out = m.out_channels * k
        want = (2 / fan_out)**0.5
        pooled.setdefault(kind, []).append(m.weight.detach().flatten() / want)
        if m.weight.numel() >= 2000:  # enough draws for one layer's std
            got = m.weight.std().item()
            assert abs(got / want - 1) < 0.1, (name, kind, got, want)
    for kind, values in pooled.items():
        values = torch.cat(values)
        assert abs(values.std().item() - 1) < 0.1, kind
        assert abs(values.mean().item()) < 0.1, kind
    seen = set(pooled)
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert {'depthwise', 'grouped', 'dense (1, 1)', 'dense (3, 3)'} <= seen


# --------------------------------------------------------------------------
# Reference sizes (DESIGN §2), one MAC trace per variant and session
# --------------------------------------------------------------------------


def within_1pct(measured, reference):
    return abs(measured / reference - 1) <= 0.01


def prunable_weights(model, classifier):
    """Conv and linear weights, the final classifier excluded."""
    return sum(m.weight.numel() for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and n != classifier)


@pytest.fixture(scope='module')
def cityscapes_model():
    return build('mmseg', seg_cfg(90, 19))


@pytest.fixture(scope='module')
def cityscapes_size(cityscapes_model):
    return complexity(cityscapes_model, (512, 1024))


@pytest.fixture(scope='module')
def ade20k_size():
    return complexity(build('mmseg', seg_cfg(180, 150)), (512, 512))


@pytest.fixture(scope='module')
def coco_size():
    return complexity(build('mmpose', pose_cfg()), (256, 192))


@pytest.fixture(scope='module')
def imagenet_model():
    return build('mmpretrain', cls_cfg())


@pytest.fixture(scope='module')
def imagenet_size(imagenet_model):
    return complexity(imagenet_model, (224, 224))


@pytest.mark.slow
def test_cityscapes_reference_size(cityscapes_model, cityscapes_size):
    assert within_1pct(cityscapes_size['params'], 9.92e6), cityscapes_size
    assert within_1pct(cityscapes_size['macs'], 61.8e9), cityscapes_size
    assert within_1pct(complexity(cityscapes_model, (224, 224))['macs'],
                       5.92e9)
    # The backbone alone (Appendix A), exactly.
    assert count_params(cityscapes_model.backbone) == 8_665_020


@pytest.mark.slow
def test_ade20k_reference_size(ade20k_size):
    assert within_1pct(ade20k_size['params'], 10.24e6), ade20k_size
    assert within_1pct(ade20k_size['macs'], 36.1e9), ade20k_size


def test_coco_reference_size(coco_size):
    assert within_1pct(coco_size['macs'], 5.80e9), coco_size


@pytest.mark.slow
def test_imagenet_reference_size(imagenet_size):
    assert within_1pct(imagenet_size['params'], 13.04e6), imagenet_size
    assert within_1pct(imagenet_size['macs'], 2.42e9), imagenet_size


def test_searchable_channels_and_prunable_weights(cityscapes_model,
                                                  imagenet_model):
    seg_units = find_searchable_units(cityscapes_model)
    assert len(seg_units) == 183
    assert sum(u.channels for u in seg_units) == 44_928
    assert within_1pct(
        prunable_weights(cityscapes_model, 'decode_head.conv_seg'), 9.92e6)
    cls_units = find_searchable_units(imagenet_model)
    assert len(cls_units) == 201
    assert sum(u.channels for u in cls_units) == 47_952
    assert within_1pct(prunable_weights(imagenet_model, 'head.fc'), 11.44e6)
    # The head's units are named after the module paths.
    names = {u.name for u in seg_units + cls_units}
    assert {'decode_head.block.paths.k3', 'neck.incre0.paths.k5',
            'neck.down2.paths.k7'} <= names


@pytest.mark.slow
def test_get_flops_tool(tmp_path, monkeypatch, capsys):
    config = tmp_path / 'cfg.py'
    config.write_text(
        f'_base_ = {CLS_BASE!r}\n' + CUSTOM_IMPORTS + textwrap.dedent("""\
        model = dict(
            backbone=dict(_delete_=True, type='SuperTicketHRNet'),
            neck=dict(_delete_=True, type='HRNASClsNeck'),
            head=dict(in_channels=1600))
        """))
    monkeypatch.setattr(sys, 'argv', [
        'get_flops.py', str(config), '--shape', '64', '64', '--cfg-options',
        'model.head.num_classes=10'
    ])
    runpy.run_path(str(REPO / 'tools/analysis/get_flops.py'),
                   run_name='__main__')
    out = capsys.readouterr().out
    assert 'Input: 1x3x64x64' in out and 'Conv2d and Linear only' in out
    assert 'backbone alone' in out and 'neck + head' in out
    assert '(8,665,020)' in out  # the backbone's params
    # 10 classes: the whole model is the ImageNet one minus 990 classes.
    assert f'({13_039_360 - 990 * 1601:,})' in out


# --------------------------------------------------------------------------
# Shrinking zeroed channels preserves the output
# --------------------------------------------------------------------------


def calibrated_state(scope, model_cfg, shape=(64, 64), seed=0):
    """State dict with real BN statistics and random γ/β (float32).

    Real statistics keep activations O(1), so an absolute tolerance means
    something, and random γ/β make every BN matter.
    """
    gen = torch.Generator().manual_seed(seed)
    model = build(scope, model_cfg)
    model.init_weights()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for m in bns:
        m.momentum = 1.0  # running stats = this batch's stats
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, *shape, generator=gen), None, mode='tensor')
    for m in bns:
        m.weight.data.uniform_(0.5, 1.5, generator=gen)
        m.bias.data.normal_(0, 0.1, generator=gen)
    # Features reach O(100) through the residual sums; scale the classifier
    # so that outputs are O(1) and 1e-5 is a meaningful absolute tolerance
    # in float32 (a few ulps of the output, far below any real mismatch).
    model.eval()
    with torch.no_grad():
        scale = model(torch.rand(1, 3, *shape, generator=gen), None,
                      mode='tensor').abs().max()
        head = getattr(model, 'decode_head', None) or model.head
        classifier = getattr(head, 'conv_seg', None) or head.fc
        classifier.weight /= scale
        classifier.bias /= scale
    return model.state_dict()


@pytest.fixture(scope='module')
def seg_supernet_state():
    return calibrated_state('mmseg', seg_cfg(90, 19))


@pytest.fixture(scope='module')
def cls_supernet_state():
    return calibrated_state('mmpretrain', cls_cfg())


def zero_channels(model, blocks, gen):
    """Set γ = β = 0 on depthwise-BN channels; return the kept indices.

    ``blocks`` is ``[(block name, whole_block)]``. A block gets a random
    half of path k3 and all of path k5 zeroed (k7 stays whole), or, with
    ``whole_block``, every path, plus its output norm's β and running mean
    so that the empty block adds exactly its shortcut.
    """
    modules = dict(model.named_modules())
    keep = {}
    for block_name, whole_block in blocks:
        block = modules[block_name]
        for key, path in block.paths.items():
            bn = path.searchable_norm
            n = bn.num_features
            if whole_block or key == 'k5':
                dead = torch.ones(n, dtype=torch.bool)
            elif key == 'k3':
                dead = torch.rand(n, generator=gen) < 0.5
            else:
                continue
            with torch.no_grad():
                bn.weight[dead] = 0
                bn.bias[dead] = 0
            keep[f'{block_name}.paths.{key}'] = torch.nonzero(~dead)[:, 0]
        if whole_block:
            with torch.no_grad():
                block.norm.bias.zero_()
                block.norm.running_mean.zero_()
    return keep


# kind: (model, [(block, whole_block), ...])
SHRINK_CASES = {
    'identity_shortcut': ('seg', [('backbone.stage2.branch1.block1', False),
                                  ('backbone.stage4.branch3.block3', True)]),
    'grouped_shortcut': ('seg',
                         [('backbone.stage1.fuse.blocks.out0_in0', False),
                          ('backbone.stage4.fuse.blocks.out2_in3', True)]),
    'stride2': ('seg', [('backbone.stage3.fuse.blocks.new3', False),
                        ('backbone.stage4.fuse.blocks.out1_in0', True)]),
    'fuse_module': ('seg', [('backbone.stage4.fuse.blocks.out1_in0', False),
                            ('backbone.stage4.fuse.blocks.out1_in1', True),
                            ('backbone.stage4.fuse.blocks.out1_in2', False)]),
    'seg_head_paths': ('seg', [('decode_head.block', False)]),
    'seg_head_whole_block': ('seg', [('decode_head.block', True)]),
    'cls_neck': ('cls', [('neck.incre0', False), ('neck.down1', True),
                         ('neck.incre3', False)]),
}


@pytest.mark.parametrize('kind', list(SHRINK_CASES))
def test_shrink_preserves_output_and_rebuilds(kind, tmp_path,
                                              seg_supernet_state,
                                              cls_supernet_state):
    which, blocks = SHRINK_CASES[kind]
    if which == 'seg':
        scope, cfg, parts = 'mmseg', seg_cfg(90, 19), ('backbone',
                                                       'decode_head')
        state = seg_supernet_state
    else:
        scope, cfg, parts = 'mmpretrain', cls_cfg(), ('backbone', 'neck')
        state = cls_supernet_state
    model = build(scope, cfg)
    model.load_state_dict(state)
    model.eval()
    gen = torch.Generator().manual_seed(list(SHRINK_CASES).index(kind))
    x = torch.rand(1, 3, 64, 64, generator=gen)
    supernet_units = [u.name for u in find_searchable_units(model)]

    keep = zero_channels(model, blocks, gen)
    with torch.no_grad():
        before = model(x, None, mode='tensor')
    params_before = count_params(model)
    apply_plan(model, plan_channel_removal(model, keep))
    with torch.no_grad():
        after = model(x, None, mode='tensor')
    assert 0.1 < before.abs().max().item() < 100  # tolerance is meaningful
    assert (after - before).abs().max().item() <= 1e-5
    assert count_params(model) < params_before
    modules = dict(model.named_modules())
    for block, whole_block in blocks:
        paths = modules[block].paths
        if whole_block:
            assert len(paths) == 0 and modules[block].norm is None
        else:
            assert list(paths) == ['k3', 'k7']
            assert paths['k3'].channels == len(keep[f'{block}.paths.k3'])

    # Architecture spec → JSON → a fresh model from config alone.
    arch = export_arch(model, supernet_units)
    for part in parts:
        path = tmp_path / f'{part}_arch.json'
        path.write_text(json.dumps(prefixed_arch(arch, part)))
        cfg[part]['arch'] = str(path)
    fresh = build(scope, cfg)
    assert export_arch(fresh, supernet_units) == arch
    assert count_params(fresh) == count_params(model)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x, None, mode='tensor'), after)


def test_head_arch_accepts_a_dict():
    head = HRNASSegHead(channels=90, num_classes=19,
                        arch={'block.paths.k3': 100, 'block.paths.k5': 0,
                              'block.paths.k7': 1080})
    assert set(head.block.paths) == {'k3', 'k7'}
    assert head.block.paths.k3.channels == 100
    feats = [torch.rand(1, c, 8 // 2**i, 8 // 2**i)
             for i, c in enumerate((18, 36, 72, 144))]
    assert head(feats).shape == (1, 19, 8, 8)
