"""Exporting a SuperTicket: rebuilt from its config alone, baked masks,
sparse storage, ONNX, and refusal of bad input without side effects."""
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401
from mmsupertickets.apis.export import (
    export_ticket,
    format_summary,
    load_sparse_state_dict,
    select_weights,
)
from mmsupertickets.engine.hooks import (
    IterativeReactivationHook,
    ProgressivePruningHook,
    SuperNetSearchHook,
)
from mmsupertickets.engine.ticket_meta import TICKET_HOOK_TYPES
from mmsupertickets.structures.arch import prefixed_arch
from mmsupertickets.utils.checkpoint_io import (
    CorruptCheckpointError,
    load_checkpoint_file,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TARGET = 0.5
SHAPE = (32, 64)


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def ticket_hooks():
    return [
        # Forces dead channels so that the shrink has something to remove.
        dict(type='KillChannelsHook', at_iters=(4, )),
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=4, by_epoch=False),
        dict(type='ProgressivePruningHook', target_sparsity=TARGET,
             prune_interval=3, step=0.2, by_epoch=False),
        dict(type='IterativeReactivationHook'),
    ]


@pytest.fixture(scope='module')
def trained(cityscapes_root, tmp_path_factory):
    """A tiny seg ticket drawn through the stock Runner."""
    import probe_hooks  # noqa: F401  (registers KillChannelsHook)
    work_dir = str(tmp_path_factory.mktemp('ticket_run'))
    cfg = seg_cfg(cityscapes_root, work_dir, max_iters=8,
                  hooks=ticket_hooks())
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    ckpt = osp.join(work_dir, 'iter_8.pth')
    return dict(cfg=cfg, runner=runner, ckpt=ckpt, ckpt_sha=sha256(ckpt),
                checkpoint=load_checkpoint_file(ckpt))


@pytest.fixture(scope='module')
def exported(trained, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('export') / 'ticket')
    summary = export_ticket(Config(trained['cfg']), trained['ckpt'], out,
                            onnx=True)
    print('\n' + format_summary(summary))
    return out, summary


def ticket_meta(trained):
    return trained['checkpoint']['supertickets']


def test_files_are_plain_and_checkpoint_untouched(trained, exported):
    out, summary = exported
    assert sorted(os.listdir(out)) == sorted([
        'arch.json', 'ticket.pth', 'ticket_sparse.pth', 'config.py',
        'ticket.onnx', 'summary.json'
    ])
    assert sha256(trained['ckpt']) == trained['ckpt_sha']
    ticket = torch.load(osp.join(out, 'ticket.pth'), weights_only=True)
    assert set(ticket) == {'state_dict', 'meta'}  # a stock checkpoint
    assert ticket['meta'] == {
        'dataset_meta': trained['checkpoint']['meta']['dataset_meta']}
    state = ticket['state_dict']
    assert state and all(torch.is_tensor(v) for v in state.values())
    with open(osp.join(out, 'arch.json')) as f:
        arch = json.load(f)
    meta = ticket_meta(trained)
    assert arch == meta['arch']
    # The search really shrank the supernet: some units lost channels or
    # disappeared.
    assert 0 in arch.values()
    with open(osp.join(out, 'summary.json')) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    assert summary['weights']['origin'] == 'model'  # no EMAHook in the run


def test_exported_config_builds_the_ticket_without_search_hooks(
        trained, exported, tmp_path):
    out, _ = exported
    cfg = Config.fromfile(osp.join(out, 'config.py'))
    hook_types = [h['type'] for h in cfg.custom_hooks]
    assert not set(hook_types) & set(TICKET_HOOK_TYPES)
    assert hook_types == ['KillChannelsHook']  # not ours: kept
    assert cfg.custom_imports.imports == ['mmsupertickets']
    assert cfg.load_from == osp.join(out, 'ticket.pth')
    arch = ticket_meta(trained)['arch']
    assert cfg.model.backbone.arch == prefixed_arch(arch, 'backbone')
    assert cfg.model.decode_head.arch == prefixed_arch(arch, 'decode_head')
    assert set(prefixed_arch(arch, 'backbone')) | {
        f'decode_head.{k}' for k in prefixed_arch(arch, 'decode_head')
    } >= {k for k in arch if not k.startswith('backbone.')}

    # Through the codebase's own registry, strict loading.
    from mmseg.registry import MODELS
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.load_state_dict(
        torch.load(cfg.load_from, weights_only=True)['state_dict'],
        strict=True)
    model.eval()
    train_model = trained['runner'].model.eval()  # masks still hooked in
    x = torch.rand(2, 3, *SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y_ticket = model(x, mode='tensor')
        y_train = train_model(x, mode='tensor')
    assert y_ticket.shape == y_train.shape
    assert (y_ticket - y_train).abs().max() <= 1e-4

    # And as a whole stock config: the Runner loads load_from and tests.
    cfg.work_dir = str(tmp_path)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.test_cfg = dict(type='TestLoop')
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 'mIoU' in metrics
    assert not [h for h in runner.hooks if isinstance(
        h, (SuperNetSearchHook, ProgressivePruningHook,
            IterativeReactivationHook))]
    with torch.no_grad():
        y_runner = runner.model.eval()(x, mode='tensor')
    assert torch.equal(y_runner, y_ticket)


def test_zeros_exactly_where_masks_are_zero(trained, exported):
    out, summary = exported
    meta = ticket_meta(trained)
    masks = meta['pruning']['masks']
    saved = trained['checkpoint']['state_dict']
    state = torch.load(osp.join(out, 'ticket.pth'),
                       weights_only=True)['state_dict']
    assert set(state) == set(saved)
    assert masks and set(masks) <= set(state)
    for name, tensor in state.items():
        mask = masks.get(name)
        if mask is None:
            assert torch.equal(tensor, saved[name]), name
            continue
        assert torch.equal(tensor == 0, ~mask), name
        assert torch.equal(tensor[mask], saved[name][mask]), name
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert summary['ticket']['sparsity'] == pytest.approx(1 - kept / total)
    assert abs(summary['ticket']['sparsity'] - TARGET) < 0.005


def test_costs_supernet_subnet_ticket(exported):
    _, summary = exported
    supernet, subnet, ticket = (summary['supernet'], summary['subnet'],
                                summary['ticket'])
    assert summary['input_shape'] == list(SHAPE)
    assert supernet['source'].startswith('checkpoint supertickets')
    assert subnet['macs'] < supernet['macs']
    assert subnet['params'] < supernet['params']
    assert ticket['macs'] < subnet['macs']
    assert ticket['params'] < subnet['params']
    density = 1 - ticket['sparsity']
    assert ticket['macs_x_global_density'] == pytest.approx(
        subnet['macs'] * density, rel=1e-6, abs=1)
    assert summary['rebuilt_from_config_max_abs_diff'] <= 1e-4


def test_sparse_storage_round_trip(trained, exported):
    out, summary = exported
    dense = torch.load(osp.join(out, 'ticket.pth'),
                       weights_only=True)['state_dict']
    restored = load_sparse_state_dict(osp.join(out, 'ticket_sparse.pth'))
    assert list(restored) == list(dense)
    for name in dense:
        assert restored[name].dtype == dense[name].dtype, name
        assert torch.equal(restored[name], dense[name]), name
    raw = torch.load(osp.join(out, 'ticket_sparse.pth'), weights_only=True)
    masks = ticket_meta(trained)['pruning']['masks']
    assert set(raw['sparse']) == set(masks)
    assert all(e['indices'].dtype == torch.int32
               for e in raw['sparse'].values())
    files = summary['files']
    for name in ('ticket.pth', 'ticket_sparse.pth'):
        assert files[name] == osp.getsize(osp.join(out, name))
    assert files['ticket.pth'] < files['checkpoint']
    print(f'\nsizes: checkpoint {files["checkpoint"]:,} B, ticket.pth '
          f'{files["ticket.pth"]:,} B, ticket_sparse.pth '
          f'{files["ticket_sparse.pth"]:,} B at sparsity '
          f'{summary["ticket"]["sparsity"]:.3f}')


def test_onnx_matches_pytorch(exported):
    import onnxruntime
    out, summary = exported
    onnx = summary['onnx']
    assert onnx['exporter'].startswith('torch.onnx.export(dynamo=False)')
    # float32 rounding scales with the outputs (this barely trained net
    # has logits in the hundreds): compare relative to their magnitude.
    assert onnx['max_rel_diff'] <= 1e-4
    cfg = Config.fromfile(osp.join(out, 'config.py'))
    from mmseg.registry import MODELS
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.load_state_dict(
        torch.load(cfg.load_from, weights_only=True)['state_dict'])
    model.eval()
    x = torch.randn(3, 3, *SHAPE, generator=torch.Generator().manual_seed(2))
    session = onnxruntime.InferenceSession(
        osp.join(out, 'ticket.onnx'), providers=['CPUExecutionProvider'])
    got = torch.from_numpy(session.run(None, {'input': x.numpy()})[0])
    with torch.no_grad():
        ref = model(x, mode='tensor')
    assert got.shape == ref.shape  # batch size is dynamic
    diff = float((got - ref).abs().max())
    print(f'\nonnxruntime vs PyTorch: max abs diff {diff:.3g}, outputs up to '
          f'{float(ref.abs().max()):.3g}')
    assert diff <= 1e-4 * max(1.0, float(ref.abs().max()))


def test_cli_refuses_checkpoint_of_other_architecture(trained, tmp_path):
    cfg = Config(trained['cfg'])
    # One more block in the last branch: a different supernet.
    cfg.model.backbone.stage_blocks = ((1, ), (1, 1), (1, 1, 1),
                                       (1, 1, 1, 1), (1, 1, 1, 2))
    cfg_file = str(tmp_path / 'other_arch.py')
    cfg.dump(cfg_file)
    out = tmp_path / 'exports' / 'ticket'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'export_ticket.py'),
         cfg_file, trained['ckpt'], '--out', str(out), '--onnx'],
        capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0
    assert 'does not fit' in proc.stderr
    assert 'stage4.branch3.block1' in proc.stderr  # the unit that differs
    assert 'Traceback' not in proc.stderr
    assert sha256(trained['ckpt']) == trained['ckpt_sha']
    assert not (tmp_path / 'exports').exists()


def test_corrupted_checkpoint_fails_and_writes_nothing(trained, tmp_path):
    broken = tmp_path / 'broken.pth'
    with open(trained['ckpt'], 'rb') as f:
        broken.write_bytes(f.read()[:4096])
    out = tmp_path / 'ticket'
    with pytest.raises(CorruptCheckpointError, match='truncated'):
        export_ticket(Config(trained['cfg']), str(broken), str(out))
    assert sorted(os.listdir(tmp_path)) == ['broken.pth']


def test_output_folder_rules(trained, exported, tmp_path):
    out = tmp_path / 'ticket'
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='--force'):
        export_ticket(Config(trained['cfg']), trained['ckpt'], str(out))
    assert os.listdir(out) == ['keep.txt']
    # --force never deletes the inputs it reads.
    with pytest.raises(ValueError, match='contains'):
        export_ticket(Config(trained['cfg']), trained['ckpt'],
                      osp.dirname(trained['ckpt']), force=True)
    assert sha256(trained['ckpt']) == trained['ckpt_sha']
    # --force replaces an earlier export, never files it did not write.
    with pytest.raises(FileExistsError, match="'keep.txt'"):
        export_ticket(Config(trained['cfg']), trained['ckpt'], str(out),
                      force=True)
    assert os.listdir(out) == ['keep.txt']
    (out / 'keep.txt').unlink()
    shutil.copytree(exported[0], out, dirs_exist_ok=True)
    (out / 'ticket.pth').write_bytes(b'stale')
    export_ticket(Config(trained['cfg']), trained['ckpt'], str(out),
                  force=True)
    assert torch.equal(
        torch.load(out / 'ticket.pth', weights_only=True)['state_dict'][
            'decode_head.conv_seg.weight'],
        torch.load(osp.join(exported[0], 'ticket.pth'),
                   weights_only=True)['state_dict'][
            'decode_head.conv_seg.weight'])
    assert sorted(os.listdir(tmp_path)) == ['ticket']  # no temp folders


def test_ema_runs_export_the_saved_ema_weights_by_default():
    live, ema = torch.ones(2), torch.full((2, ), 0.5)
    # What EMAHook leaves in a checkpoint after its swap.
    ckpt = dict(state_dict={'w': ema}, ema_state_dict={'steps': 3,
                                                       'module.w': live})
    state, origin = select_weights(ckpt)
    assert origin == 'ema' and torch.equal(state['w'], ema)
    state, origin = select_weights(ckpt, 'live')
    assert origin == 'live' and torch.equal(state['w'], live)
    state, origin = select_weights(dict(state_dict={'w': live}))
    assert origin == 'model'
    with pytest.raises(ValueError, match='EMAHook'):
        select_weights(dict(state_dict={'w': live}), 'live')


# -- tools/analysis/get_flops.py on the export -----------------------------
def get_flops(*args):
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'analysis', 'get_flops.py'),
         *map(str, args), '--json'],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-4000:]
    # The JSON dump closes the output.
    return proc.stdout, json.loads(proc.stdout[proc.stdout.index('\n{'):])


def test_get_flops_on_a_ticket_folder_matches_the_summary(exported):
    out, summary = exported
    assert summary['subnet']['macs'] < summary['supernet']['macs']
    assert summary['ticket']['macs'] < summary['subnet']['macs']
    text, counts = get_flops(out)  # --shape from summary.json
    h, w = summary['input_shape']
    assert f'Input: 1x3x{h}x{w}' in text
    assert counts['whole model'] == dict(
        params=summary['subnet']['params'], macs=summary['subnet']['macs'])
    assert counts['sparse whole model'] == dict(
        params=summary['ticket']['params'], macs=summary['ticket']['macs'])


def test_get_flops_on_the_ticket_config_counts_the_dense_subnet(exported):
    out, summary = exported
    _, counts = get_flops(osp.join(out, 'config.py'), '--shape',
                          *summary['input_shape'])
    assert counts['whole model']['macs'] == summary['subnet']['macs']
    assert 'sparse whole model' not in counts


def test_plain_state_dict_keeps_module_versions(tmp_path):
    # A ticket.pth without them is read as an old-format state_dict by
    # versioned load hooks (mmpose's DEKRHead renames and flips weights).
    from mmsupertickets.apis.export.subnet import plain_state_dict
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1),
                                torch.nn.BatchNorm2d(2))
    path = str(tmp_path / 'state.pth')
    torch.save(dict(state_dict=plain_state_dict(model)), path)
    saved = load_checkpoint_file(path)['state_dict']
    assert saved._metadata == model.state_dict()._metadata
    assert saved._metadata['1']['version'] == 2
