"""The configs in configs/ and the demo report writer.

- Every config loads, imports mmsupertickets by itself and builds its model
  through the registries of its codebase; the paper-scale ones carry the
  paper's settings, and a few give the expected outputs on a tiny input.
- Every demo config trains for a few iterations through the stock Runner
  on tiny generated data with its hooks active, shrinks, prunes and reaches
  its target sparsity.
- tools/run_demo.py's report writer states the numbers of a fixture run.
"""
import copy
import glob
import json
import os.path as osp
import re

import pytest
import torch
from demo_runs import demo_runner
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmsupertickets  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs')
# Files starting with '_' are fragments that other configs inherit.
ALL_CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if not osp.basename(p).startswith('_'))
TRANSFER_CONFIGS = [p for p in ALL_CONFIGS if '/transfer/' in p]
DEMO_CONFIGS = [p for p in ALL_CONFIGS
                if '/demo/' in p and p not in TRANSFER_CONFIGS]
PAPER_CONFIGS = [p for p in ALL_CONFIGS
                 if p not in DEMO_CONFIGS and p not in TRANSFER_CONFIGS]
HOOK_TYPES = ('SuperNetSearchHook', 'ProgressivePruningHook',
              'IterativeReactivationHook')


def load(path):
    return Config.fromfile(osp.join(REPO, path))


def hooks_by_type(cfg):
    return {h['type']: h for h in cfg.get('custom_hooks', [])}


def build_model(cfg):
    init_default_scope(cfg.default_scope)
    return MODELS.build(copy.deepcopy(cfg.model))


def test_configs_exist():
    assert len(PAPER_CONFIGS) >= 4 + 4 and len(DEMO_CONFIGS) == 4 + 4
    # Each task's demo also comes with a MACs budget; the paper's configs
    # keep the fixed ρ.
    budgets = [p for p in DEMO_CONFIGS if 'macs50' in p]
    assert len(budgets) == 4
    for path in budgets:
        assert hooks_by_type(load(path))['SuperNetSearchHook'][
            'target_macs'] == 0.5
    for path in PAPER_CONFIGS:
        search = hooks_by_type(load(path)).get('SuperNetSearchHook', {})
        assert search.get('target_macs') is None, path
    assert len(TRANSFER_CONFIGS) >= 4


@pytest.mark.parametrize('path', ALL_CONFIGS)
def test_config_builds_its_model(path):
    with open(osp.join(REPO, path)) as f:
        text = f.read()
    cfg = load(path)
    # Every config imports the package itself (directly or via its base).
    assert cfg.custom_imports == dict(
        imports=['mmsupertickets'], allow_failed_imports=False)
    if '::' in text:
        # Those built on a package's config state it themselves.
        assert re.search(
            r"^custom_imports = dict\(imports=\['mmsupertickets'\]", text,
            re.M)
    assert cfg.default_scope in ('mmseg', 'mmpose', 'mmpretrain')
    model = build_model(cfg)
    assert type(model.backbone).__name__ == 'SuperTicketHRNet'
    # No weights from the internet.
    assert not cfg.model.get('pretrained')
    assert 'init_cfg' not in cfg.model.backbone
    hooks = hooks_by_type(cfg)
    name = osp.basename(path)
    if path in TRANSFER_CONFIGS:
        # Fine-tuning with fixed masks: no search, no pruning events.
        assert 'TicketTransferHook' in hooks
        assert hooks['ProgressivePruningHook']['prune_interval'] is None
        assert 'SuperNetSearchHook' not in hooks
        if cfg.default_scope == 'mmseg' and '/demo/' not in path:
            # Seg-to-seg transfer fine-tunes for 30-50 epochs, as the
            # reference, with the LR schedule over that length.
            epochs = cfg.train_cfg.max_iters / cfg.iters_per_epoch
            assert 30 <= epochs <= 50, (path, epochs)
            assert cfg.param_scheduler[0].total_steps == \
                cfg.train_cfg.max_iters
    elif 'searchonly' in name:
        assert 'SuperNetSearchHook' in hooks
        assert 'ProgressivePruningHook' not in hooks
        assert 'IterativeReactivationHook' not in hooks
    else:
        assert set(HOOK_TYPES) <= set(hooks)
        sweep = re.search(r'-sp(\d+)_', name)
        target = int(sweep.group(1)) / 100 if sweep else 0.9
        assert hooks['ProgressivePruningHook']['target_sparsity'] == \
            pytest.approx(target)
    # Checkpoints are renamed into place once complete, and a crash while
    # one is written leaves an older one (the stock hook deletes the
    # oldest before writing).
    checkpoint = cfg.default_hooks.checkpoint
    assert checkpoint.get('backend_args') == dict(backend='atomic_local')
    assert checkpoint.get('max_keep_ckpts', -1) in (-1, 0) or \
        checkpoint.max_keep_ckpts >= 2
    # Data roots follow the standard layout (demo: under data/demo).
    root = cfg.train_dataloader.dataset.data_root
    assert root.startswith('data/demo/' if '/demo/' in path else 'data/')
    assert cfg.val_dataloader.dataset.data_root == root


# The paper's settings (DESIGN §3), per main config.
PAPER = {
    'supertickets_hrnas_8xb4-430e_cityscapes-512x1024.py':
    dict(rho=1.4e-4, warmup=25, shrink=10, prune=25, classes=19, last=90),
    'supertickets_hrnas_8xb8-200e_ade20k-512x512.py':
    dict(rho=1.4e-4, warmup=25, shrink=25, prune=15, classes=150, last=180),
    'supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py':
    dict(rho=1e-6, warmup=25, shrink=10, prune=15, classes=17, last=90),
    'supertickets_hrnas_4xb64-350e_in1k.py':
    dict(rho=1.8e-4, warmup=25, shrink=10, prune=25, classes=1000,
         last=1600),
}


@pytest.mark.parametrize('name', sorted(PAPER))
def test_paper_settings(name):
    cfg = load(f'configs/supertickets/{name}')
    want = PAPER[name]
    hooks = hooks_by_type(cfg)
    search, pruning = hooks['SuperNetSearchHook'], hooks[
        'ProgressivePruningHook']
    assert search['rho'] == want['rho'] and search['warmup'] == 25
    assert search['shrink_interval'] == want['shrink']
    assert search['threshold'] == 1e-3 and search['min_macs'] == 1e6
    # The guard counts at the hook's default 224x224, as the reference.
    assert 'min_macs_shape' not in search
    assert search.get('by_epoch', True) and pruning.get('by_epoch', True)
    assert pruning['prune_interval'] == want['prune']
    assert pruning['step'] == 0.1 and pruning['schedule'] == 'step'
    assert pruning.get('scorer', 'magnitude') == 'magnitude'
    assert pruning.get('scope', 'global') == 'global'
    model = cfg.model
    if cfg.default_scope == 'mmseg':
        assert model.decode_head.num_classes == want['classes']
        assert model.decode_head.channels == want['last']
        assert cfg.optim_wrapper.optimizer.type == 'Adam'
        # OneCycle: max 0.04, div 25, final div 1e4, 30 % rising.
        one_cycle, = cfg.param_scheduler
        assert one_cycle.type == 'OneCycleLR' and one_cycle.eta_max == 0.04
        assert one_cycle.total_steps == cfg.train_cfg.max_iters
        assert (one_cycle.pct_start, one_cycle.div_factor,
                one_cycle.final_div_factor) == (0.3, 25, 1e4)
    elif cfg.default_scope == 'mmpose':
        assert model.head.out_channels == want['classes']
        assert model.neck.out_channels == want['last']
        bn = model.backbone.norm_cfg
        assert (bn.momentum, bn.eps) == (0.1, 1e-5)
        assert model.backbone.conv_init_std == 0.001
        assert model.neck.conv_init_std == 0.001
    else:
        assert model.head.num_classes == want['classes']
        assert model.neck.out_channels == want['last']
        assert cfg.optim_wrapper.optimizer.type == 'RMSprop'
    if cfg.default_scope != 'mmpose':
        bn = model.backbone.norm_cfg
        assert (bn.momentum, bn.eps) == (0.01, 1e-3)


@pytest.mark.parametrize('name,shape,out', [
    ('supertickets_hrnas_8xb4-430e_cityscapes-512x1024.py', (64, 128),
     (19, 16, 32)),
    ('supertickets_hrnas_8xb8-200e_ade20k-512x512.py', (64, 64),
     (150, 16, 16)),
    ('supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py', (64, 48),
     (17, 16, 12)),
    ('supertickets_hrnas_4xb64-350e_in1k.py', (64, 64), (1000, )),
])
def test_paper_model_outputs_at_a_tiny_input(name, shape, out):
    cfg = load(f'configs/supertickets/{name}')
    model = build_model(cfg).eval()
    x = torch.rand(1, 3, *shape)
    with torch.no_grad():
        feats = model.backbone(x)
        assert [f.shape[1] for f in feats] == [18, 36, 72, 144]
        y = model(x, None, mode='tensor')
    y = y[-1] if isinstance(y, (tuple, list)) else y
    assert tuple(y.shape[1:]) == out
    # The paper's search space: 9.92 M prunable conv weights for the
    # Cityscapes segmenter (DESIGN §2), within 1 %.
    if 'cityscapes' in name:
        weights = sum(m.weight.numel() for n, m in model.named_modules()
                      if isinstance(m, torch.nn.Conv2d)
                      and 'conv_seg' not in n)
        assert abs(weights / 9.92e6 - 1) < 0.01


# -- demo configs through the stock Runner ----------------------------------
def _check_events(work_dir, cfg):
    with open(osp.join(work_dir, 'supertickets_events.jsonl')) as f:
        events = [json.loads(line) for line in f]
    kinds = [e['event'] for e in events]
    assert kinds[0] == 'supernet'
    assert any(k.endswith('shrink') for k in kinds), kinds
    prunes = [e for e in events if 'sparsity' in e]
    assert prunes, kinds
    target = hooks_by_type(cfg)['ProgressivePruningHook']['target_sparsity']
    assert prunes[-1]['sparsity'] == pytest.approx(target, abs=2e-3)
    shrink = next(e for e in events if e['event'].endswith('shrink'))
    assert shrink['live_channels'] < events[0]['live_channels']
    return events


def _demo_case(path, tmp_path):
    runner, cfg = demo_runner(path, tmp_path)
    runner.train()
    _check_events(cfg.work_dir, cfg)
    # The validation ran on the ticket and logged the headline metric (read
    # from the message hub: the visualizer is a process-wide instance that
    # keeps writing into the first test's work dir).
    logged = set(runner.message_hub.log_scalars)
    assert logged & {'val/mIoU', 'val/coco/AP', 'val/accuracy/top1'}, logged


SEG_DEMO = 'configs/supertickets/demo/' \
    'supertickets_hrnas_1xb4-demo_cityscapes-128x256.py'


def test_demo_seg_runs_and_reaches_target(tmp_path):
    _demo_case(SEG_DEMO, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize('path', [p for p in DEMO_CONFIGS if p != SEG_DEMO])
def test_demo_runs_and_reaches_target(path, tmp_path):
    _demo_case(path, tmp_path)


# -- the report writer ------------------------------------------------------
def _run_demo_module():
    """The pieces of mmsupertickets.demo that the report tests use."""
    import types

    from mmsupertickets.demo import architecture, chance, report, run_files
    return types.SimpleNamespace(**{
        name: getattr(module, name)
        for module, names in (
            (run_files, ('last_checkpoint', 'read_jsonl', 'read_scalars',
                         'read_ticket_meta', 'val_series')),
            (report, ('fmt_count', 'write_report')),
            (architecture, ('stage_of', )), (chance, ('seg_chance', )))
        for name in names})


FIXTURE_EVENTS = [
    dict(event='supernet', iter=1, epoch=0, live_channels=3600,
         kernel_paths=81, live_blocks=27, params=371731, macs=185413632),
    dict(event='prune 1', iter=30, epoch=0, live_channels=3600,
         kernel_paths=81, live_blocks=27, sparsity=0.45, target_sparsity=0.45,
         prunable_weights=371104, params=371731, macs=185413632,
         sparse_params=216000, sparse_macs=100000000,
         macs_x_global_density=101977498),
    dict(event='shrink', iter=50, epoch=0, live_channels=3123,
         kernel_paths=77, live_blocks=27, params=350001, macs=160000000,
         rho=0.01, removed_channels=477),
    dict(event='final prune', iter=60, epoch=0, live_channels=3123,
         kernel_paths=77, live_blocks=27, sparsity=0.9001,
         target_sparsity=0.9, prunable_weights=349000, params=350001,
         macs=160000000, sparse_params=36000, sparse_macs=21234567,
         macs_x_global_density=15984000,
         **{'sparsity/backbone.stage1': 0.87}),
]


def test_report_states_the_fixture_numbers(tmp_path):
    run_demo = _run_demo_module()
    train = tmp_path / 'train'
    (train / '20260101_000000' / 'vis_data').mkdir(parents=True)
    with open(train / 'supertickets_events.jsonl', 'w') as f:
        for e in FIXTURE_EVENTS:
            f.write(json.dumps(e) + '\n')
    scalars = [
        dict(loss=2.0, lr=0.01, iter=10, step=10),
        dict(aAcc=60.0, mIoU=20.5, mAcc=30.0, step=30),
        dict(loss=1.0, lr=0.01, iter=50, step=50),
        dict(aAcc=80.0, mIoU=41.25, mAcc=50.0, step=60),
    ]
    with open(train / '20260101_000000' / 'vis_data' / 'scalars.json',
              'w') as f:
        for s in scalars:
            f.write(json.dumps(s) + '\n')
    arch = {
        'backbone.stage1.branch0.block0.paths.k3': 10,
        'backbone.stage1.branch0.block0.paths.k5': 0,
        'backbone.stage1.fuse.blocks.out0_in0.paths.k7': 12,
        'decode_head.block.paths.k3': 40,
    }
    torch.save(dict(meta=dict(supertickets=dict(
        arch=arch, search=dict(input_shape=[128, 128])))),
        str(train / 'iter_60.pth'))
    (train / 'last_checkpoint').write_text(str(train / 'iter_60.pth'))

    ckpt = run_demo.last_checkpoint(str(train))
    meta = run_demo.read_ticket_meta(ckpt)
    assert meta['arch'] == arch
    info = dict(
        task='seg', config='configs/x.py', metric='mIoU',
        metric_label='mIoU (%)',
        events=run_demo.read_jsonl(
            str(train / 'supertickets_events.jsonl')),
        scalars=run_demo.read_scalars(str(train)),
        test_metrics=dict(mIoU=41.25, aAcc=80.0),
        chance=dict(value=5.5, how='fixture chance'),
        arch=meta['arch'],
        supernet_arch={k: 16 for k in arch},
        input_shape=meta['search']['input_shape'],
        timings=dict(training=300.0, total=321.0),
        checkpoint='work_dirs/x/iter_60.pth')
    out = tmp_path / 'report'
    path = run_demo.write_report(str(out), info)
    text = open(path).read()
    for png in ('metric_and_macs.png', 'sparsity_and_channels.png',
                'architecture.png'):
        assert (out / png).stat().st_size > 1000
        assert f']({png})' in text
    # Metric vs chance, sparsity vs target.
    assert '| mIoU (%) of the ticket (tools/test.py) | 41.25 |' in text
    assert '| chance level | 5.50 |' in text
    assert '0.9001 / 0.9000' in text
    assert '7.5x' in text
    # Supernet, shrunk subnet and sparse ticket, both sparse figures.
    assert '| supernet (dense) | 371.731 K | 185.414 M |' in text
    assert '| shrunk subnet (dense, physically smaller) | 350.001 K | ' \
        '160.000 M |' in text
    assert "each layer's MACs x its density) | 36.000 K | 21.235 M |" in text
    assert "global density) | | 15.984 M |" in text
    assert 'one 128x128 input' in text
    # Per-event table and the architecture per stage/branch.
    assert '| 50 | shrink |' in text and '| 60 | final prune | 0.900 |' \
        in text
    assert '| stage1.branch0 | 32 | 10 (k3: 10, k5: 0) |' in text
    assert '| decode_head | 16 | 40 (k3: 40) |' in text
    assert 'backbone.stage1 0.870' in text
    assert '| total | 321 |' in text
    assert '## Export' in text


def test_report_helpers():
    run_demo = _run_demo_module()
    assert run_demo.stage_of(
        'backbone.stage3.fuse.blocks.out1_in2.paths.k3') == 'stage3.fuse'
    assert run_demo.stage_of('neck.down0.paths.k7') == 'neck'
    scalars = [dict(loss=1.0, epoch=2, iter=5, step=30),
               dict(loss=1.0, epoch=1, iter=5, step=5),
               {'coco/AP': 0.5, 'step': 2}]
    # Epoch-based runs log validations at epochs: 25 iterations each here.
    assert run_demo.val_series(scalars, 'coco/AP') == [(50, 0.5)]
    assert run_demo.fmt_count(1234567) == '1.235 M'


def test_seg_chance_level(tmp_path):
    import numpy as np
    from PIL import Image
    run_demo = _run_demo_module()
    label = np.zeros((4, 4), np.uint8)
    label[:, :1] = 1  # 75 % class 0, 25 % class 1
    label[0, 0] = 255
    Image.fromarray(label).save(tmp_path / 'a.png')
    chance = run_demo.seg_chance([str(tmp_path / 'a.png')], num_classes=2)
    # Majority: IoU(0) = 12/15, IoU(1) = 0 -> 40 %; random is lower.
    assert chance['value'] == pytest.approx(40.0)
