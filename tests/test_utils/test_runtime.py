"""Runtime plumbing: resume under ``weights_only=True``, safe and atomic
checkpoint files, CPU distributed training through tools/train.py with
``torchrun``, re-wrapping DDP after a shape change, and tools/test.py.

This module is also imported by the ``torchrun``/tools subprocesses (their
configs list it in ``custom_imports``) for the toy model, dataset, metric
and probe hook below.
"""
import os
import os.path as osp
import pickle
import subprocess
import sys
from datetime import timedelta

import pytest
import torch
import torch.distributed as torch_dist
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_file_backend
from mmengine.hooks import Hook
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.registry import DATASETS, METRICS
from mmengine.runner import Runner
from torch.utils.data import Dataset
from train_runs import free_port

import mmsupertickets.models.wrappers  # noqa: F401  (registers the wrapper)
from mmsupertickets.engine.ddp_rebuild import rewrap_ddp
from mmsupertickets.models.wrappers import DeviceAgnosticDDP
from mmsupertickets.registry import HOOKS, MODEL_WRAPPERS, MODELS
from mmsupertickets.utils.atomic_write import (
    AtomicLocalBackend,
    save_checkpoint_atomically,
)
from mmsupertickets.utils.broadcast import broadcast_object, broadcast_tensor_
from mmsupertickets.utils.checkpoint_io import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    load_checkpoint_file,
    safe_checkpoint_loading,
)
from mmsupertickets.utils.dist_launch import init_dist_for_device
from mmsupertickets.utils.safe_globals import weights_only_load

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TESTS = osp.dirname(osp.abspath(__file__))
HELPERS = osp.join(REPO, 'tests', 'utils')


@MODELS.register_module(force=True)
class RuntimeTestNet(BaseModel):
    """Conv-BN-ReLU, global pooling and a linear classifier."""

    def __init__(self, channels=8, num_classes=2):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, inputs, labels=None, mode='tensor'):
        feats = F.relu(self.bn(self.conv(inputs)))
        logits = self.fc(F.adaptive_avg_pool2d(feats, 1).flatten(1))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            return [
                dict(pred=int(p), label=int(t))
                for p, t in zip(logits.argmax(1), labels)
            ]
        return logits


@DATASETS.register_module(force=True)
class RuntimeTestData(Dataset):
    """Random images whose class is the sign of their mean red value."""

    def __init__(self, num_samples=32):
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randn(num_samples, 3, 8, 8, generator=gen)
        self.labels = (self.images[:, 0].mean((1, 2)) > 0).long()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return dict(inputs=self.images[idx], labels=self.labels[idx])


@METRICS.register_module(force=True)
class RuntimeTestAccuracy(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(s['pred'] == s['label'] for s in data_samples)

    def compute_metrics(self, results):
        return dict(accuracy=sum(results) / len(results))


def _slice_param_(param, keep, dim, optimizer):
    """Keep ``keep`` along ``dim`` in place (same Parameter object) and
    slice the optimizer's momentum the same way."""
    param.data = param.data.index_select(dim, keep).clone()
    state = optimizer.state.get(param, {})
    if state.get('momentum_buffer') is not None:
        state['momentum_buffer'] = state['momentum_buffer'].index_select(
            dim, keep).clone()


@HOOKS.register_module(force=True)
class RuntimeTestProbe(Hook):
    """Test hook for the distributed run.

    before_train: exercises broadcast_tensor_/broadcast_object. Before
    iteration ``shrink_at_iter`` (0-based): drops the last two conv channels
    in place and re-wraps DDP. after_run: dumps this rank's parameters and
    findings to ``work_dir/probe_rank{rank}.pth``.
    """

    def __init__(self, shrink_at_iter=3):
        self.shrink_at_iter = shrink_at_iter
        self.report = dict(rewrapped=False)

    def before_train(self, runner):
        tensor = torch.full((3, ), float(runner.rank))
        self.report['broadcast_tensor'] = broadcast_tensor_(tensor).tolist()
        self.report['broadcast_object'] = broadcast_object(
            dict(rank=runner.rank))
        self.report['wrapper'] = type(runner.model).__name__

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        # Not after_train_iter: there the loop still holds the last loss,
        # whose graph pins the old gradient shapes (see rewrap_ddp).
        if runner.iter != self.shrink_at_iter:
            return
        model = runner.model.module
        optimizer = runner.optim_wrapper.optimizer
        keep = torch.arange(model.conv.out_channels - 2)
        for param in (model.conv.weight, model.conv.bias, model.bn.weight,
                      model.bn.bias):
            _slice_param_(param, keep, 0, optimizer)
        model.bn.running_mean.data = model.bn.running_mean[keep].clone()
        model.bn.running_var.data = model.bn.running_var[keep].clone()
        _slice_param_(model.fc.weight, keep, 1, optimizer)
        model.conv.out_channels = model.bn.num_features = len(keep)
        model.fc.in_features = len(keep)
        old_wrapper = runner.model
        self.report['rewrapped'] = rewrap_ddp(runner)
        self.report['new_wrapper_object'] = runner.model is not old_wrapper
        self.report['after_shrink'] = {
            k: v.detach().clone()
            for k, v in model.named_parameters()
        }

    def after_run(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self.report['params'] = {
            k: v.detach().clone()
            for k, v in model.named_parameters()
        }
        self.report['final_wrapper'] = type(runner.model).__name__
        torch.save(self.report,
                   osp.join(runner.work_dir, f'probe_rank{runner.rank}.pth'))


class StartProbe(Hook):
    """Records the iteration and weights the loop starts from."""

    def before_train(self, runner):
        self.start_iter = runner.iter
        self.start_state = {
            k: v.detach().clone()
            for k, v in runner.model.state_dict().items()
        }


def toy_runner(work_dir, max_iters, name, **kwargs):
    kwargs.setdefault('param_scheduler', dict(
        type='MultiStepLR', milestones=[3], by_epoch=False))
    return Runner(
        model=dict(type='RuntimeTestNet'),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='RuntimeTestData')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        randomness=dict(seed=0),
        log_level='WARNING',
        **kwargs)


def test_resume_loads_with_weights_only(tmp_path, monkeypatch):
    # Whatever mmengine passes, torch.load must unpickle weights_only (on
    # torch without scoped safe globals the project's restricted unpickler
    # does that job, and torch forbids forcing weights_only beside it).
    if hasattr(torch.serialization, 'safe_globals'):
        monkeypatch.setenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '1')
    toy_runner(tmp_path, max_iters=4, name='first').train()
    saved = load_checkpoint_file(tmp_path / 'iter_4.pth')
    assert saved['meta']['iter'] == 4

    probe = StartProbe()
    resumed = toy_runner(
        tmp_path, max_iters=6, name='resumed', resume=True,
        custom_hooks=[probe])
    with safe_checkpoint_loading():
        resumed.train()

    assert probe.start_iter == 4
    assert probe.start_state.keys() == saved['state_dict'].keys()
    for key, value in saved['state_dict'].items():
        assert torch.equal(probe.start_state[key], value), key
    assert resumed.iter == 6
    # The scheduler went on from the saved state: milestone 3 passed.
    assert resumed.optim_wrapper.get_lr()['lr'] == [pytest.approx(0.01)]


@pytest.mark.parametrize('strategy', ['cos', 'linear'])
def test_resume_with_one_cycle_schedule(tmp_path, strategy):
    # mmengine's OneCycle schedulers keep their annealing function in the
    # checkpoint; resuming must restore it under weights_only.
    one_cycle = dict(type='OneCycleLR', eta_max=0.1, total_steps=6,
                     anneal_strategy=strategy, by_epoch=False)
    toy_runner(tmp_path, max_iters=6, name='uninterrupted',
               param_scheduler=one_cycle).train()
    lr_uninterrupted = load_checkpoint_file(tmp_path / 'iter_6.pth')[
        'param_schedulers'][0]['_last_value']
    resumed = toy_runner(tmp_path / 'resumed', max_iters=6, name='resumed',
                         resume=True, load_from=str(tmp_path / 'iter_4.pth'),
                         param_scheduler=one_cycle)
    with safe_checkpoint_loading():
        resumed.train()
    scheduler = resumed.param_schedulers[0]
    assert scheduler.anneal_func.__name__ == f'_annealing_{strategy}'
    assert scheduler.state_dict()['_last_value'] == pytest.approx(
        lr_uninterrupted)


def test_mmengine_checkpoint_needs_the_allow_list(tmp_path):
    toy_runner(tmp_path, max_iters=2, name='allow_list').train()
    if hasattr(torch.serialization, 'get_safe_globals'):
        # torch's own allow-list is left as it was.
        assert not any('HistoryBuffer' in str(g)
                       for g in torch.serialization.get_safe_globals())
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(tmp_path / 'iter_2.pth', weights_only=True)
    assert 'message_hub' in weights_only_load(tmp_path / 'iter_2.pth')


class ForeignObject:
    """Anything a checkpoint should not be able to make us build."""

    def __init__(self):
        self.note = 'not a tensor'


def _snapshot(path):
    return path.read_bytes(), path.stat().st_mtime_ns


def test_load_refuses_foreign_object(tmp_path):
    path = tmp_path / 'foreign.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2)), extra=ForeignObject()),
               path)
    before = _snapshot(path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    assert info.value.refused == f'{__name__}.ForeignObject'
    assert str(path) in str(info.value)
    assert 'ForeignObject' in str(info.value)
    assert _snapshot(path) == before


def test_load_reports_truncated_and_missing_files(tmp_path):
    path = tmp_path / 'truncated.pth'
    torch.save(dict(state_dict=RuntimeTestNet().state_dict()), path)
    assert load_checkpoint_file(path)['state_dict'].keys()
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    before = _snapshot(path)
    with pytest.raises(CorruptCheckpointError, match='truncated') as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value)
    assert _snapshot(path) == before

    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint\n' * 20)
    with pytest.raises(CorruptCheckpointError, match='garbage.pth'):
        load_checkpoint_file(garbage)

    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_checkpoint_file(tmp_path / 'missing.pth')


class FailsToPickle:

    def __reduce__(self):
        raise RuntimeError('simulated crash while writing')


def test_atomic_save_keeps_last_good_file(tmp_path):
    path = tmp_path / 'latest.pth'
    good = dict(state_dict=dict(w=torch.arange(1000.)))
    save_checkpoint_atomically(good, path)
    before = path.read_bytes()

    bad = dict(state_dict=dict(w=torch.zeros(1000)), extra=FailsToPickle())
    with pytest.raises(RuntimeError, match='simulated crash'):
        save_checkpoint_atomically(bad, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['latest.pth']  # no temporary left over
    assert torch.equal(
        load_checkpoint_file(path)['state_dict']['w'], good['state_dict']['w'])


def test_atomic_local_backend(tmp_path, monkeypatch):
    path = str(tmp_path / 'ckpt' / 'iter_1.pth')
    backend = get_file_backend(path, backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'old', path)  # creates the folder like LocalBackend

    def crash(fd):
        raise OSError('simulated crash before the data reached the disk')

    with monkeypatch.context() as patch:
        patch.setattr(os, 'fsync', crash)
        with pytest.raises(OSError, match='simulated crash'):
            backend.put(b'new content', path)
    assert backend.get(path) == b'old'
    assert os.listdir(tmp_path / 'ckpt') == ['iter_1.pth']
    backend.put_text('new', path)
    assert backend.get_text(path) == 'new'


@pytest.mark.parametrize('scope', ['mmseg', 'mmpose', 'mmpretrain'])
def test_wrapper_visible_from_downstream_scopes(scope):
    registry = MODEL_WRAPPERS.switch_scope_and_registry(scope)
    with registry as scoped:
        assert scoped.scope == scope
        assert scoped.get('DeviceAgnosticDDP') is DeviceAgnosticDDP


def test_dist_helpers_without_a_group():
    tensor = torch.arange(3.)
    assert broadcast_tensor_(tensor) is tensor
    assert tensor.tolist() == [0., 1., 2.]
    assert broadcast_object({'a': 1}) == {'a': 1}
    assert init_dist_for_device('none') is False
    with pytest.raises(ValueError, match="'torchrun'"):
        init_dist_for_device('torchrun')


def _accumulator_shapes_visible() -> bool:
    """Whether this torch shows the shape a gradient accumulator expects
    (a private attribute; torch 2.1 has none, so rewrap_ddp cannot tell a
    live old graph there and the hooks rely on rewrapping before the next
    iteration alone)."""
    p = torch.nn.Parameter(torch.zeros(1))
    accumulator = p.view_as(p).grad_fn.next_functions[0][0]
    return hasattr(accumulator, '_input_metadata')


def test_rewrap_after_shape_change_single_process(tmp_path):
    assert not torch_dist.is_initialized()
    store = torch_dist.FileStore(str(tmp_path / 'store'), 1)
    torch_dist.init_process_group(
        'gloo', store=store, rank=0, world_size=1,
        timeout=timedelta(seconds=60))
    try:
        net = RuntimeTestNet()
        holder = type('Holder', (), {})()
        # The runner passes device_ids=[LOCAL_RANK]; on CPU they must go.
        holder.model = DeviceAgnosticDDP(
            net, device_ids=[0], broadcast_buffers=False)
        assert holder.model.init_kwargs == dict(
            device_ids=[0], broadcast_buffers=False)
        inputs = torch.randn(4, 3, 8, 8)
        labels = torch.tensor([0, 1, 0, 1])
        holder.model(inputs, labels, mode='loss')['loss'].backward()
        # A graph built before the shape change pins the old gradient shapes.
        live_loss = holder.model(inputs, labels, mode='loss')['loss']

        keep = torch.arange(6)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        net.zero_grad(set_to_none=True)
        for param in (net.conv.weight, net.conv.bias, net.bn.weight,
                      net.bn.bias):
            _slice_param_(param, keep, 0, optimizer)
        net.bn.running_mean.data = net.bn.running_mean[keep].clone()
        net.bn.running_var.data = net.bn.running_var[keep].clone()
        _slice_param_(net.fc.weight, keep, 1, optimizer)

        if _accumulator_shapes_visible():
            with pytest.raises(RuntimeError, match="'fc.weight'"):
                rewrap_ddp(holder)
        del live_loss

        old = holder.model
        assert rewrap_ddp(holder) is True
        assert holder.model is not old and holder.model.module is net
        assert type(holder.model) is DeviceAgnosticDDP
        assert holder.model.init_kwargs == old.init_kwargs
        holder.model(inputs, labels, mode='loss')['loss'].backward()
        assert net.conv.weight.grad.shape == (6, 3, 3, 3)
        assert net.fc.weight.grad.shape == (2, 6)

        assert rewrap_ddp(type('Plain', (), {'model': net})()) is False
    finally:
        torch_dist.destroy_process_group()


def _run(cmd, cwd, timeout=300, env=None):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([TESTS, HELPERS, REPO]),
        OMP_NUM_THREADS='1',
        **(env or {}))
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout)
    assert proc.returncode == 0, (
        f'{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-6000:]}')
    return proc


TOY_CONFIG = """
default_scope = 'mmseg'
custom_imports = dict(
    imports=['mmsupertickets', 'test_runtime'], allow_failed_imports=False)
model = dict(type='RuntimeTestNet')
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='RuntimeTestData', num_samples=32))
test_dataloader = dict(
    batch_size=8, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='RuntimeTestData', num_samples=16))
test_evaluator = dict(type='RuntimeTestAccuracy')
test_cfg = dict(type='TestLoop')
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6)
log_processor = dict(by_epoch=False)
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=6,
                    backend_args=dict(backend='atomic_local')))
custom_hooks = [dict(type='RuntimeTestProbe', shrink_at_iter=3)]
# As in the stock configs; a CPU run must not try NCCL.
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
"""


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory):
    """Train the toy config on two gloo processes through
    tools/dist_train.sh (torchrun)."""
    root = tmp_path_factory.mktemp('dist')
    config = root / 'runtime_toy.py'
    config.write_text(TOY_CONFIG)
    work_dir = root / 'work'
    _run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), str(config), '2',
          '--work-dir', str(work_dir)], cwd=root,
         env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    return config, work_dir


def _check_two_rank_run(work_dir):
    reports = [
        torch.load(work_dir / f'probe_rank{rank}.pth', weights_only=True)
        for rank in (0, 1)
    ]
    for report in reports:
        assert report['wrapper'] == 'DeviceAgnosticDDP'
        assert report['broadcast_tensor'] == [0., 0., 0.]
        assert report['broadcast_object'] == dict(rank=0)
        assert report['rewrapped'] and report['new_wrapper_object']
        assert report['final_wrapper'] == 'DeviceAgnosticDDP'
        params = report['params']
        assert params['conv.weight'].shape == (6, 3, 3, 3)
        assert params['fc.weight'].shape == (2, 6)
        # Training went on after the re-wrap.
        assert any(not torch.equal(params[k], v)
                   for k, v in report['after_shrink'].items())

    rank0, rank1 = (r['params'] for r in reports)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key

    # Only rank 0 writes the checkpoint; it holds rank 0's final weights.
    assert sorted(p.name for p in work_dir.iterdir()
                  if p.suffix == '.pth') == [
                      'iter_6.pth', 'probe_rank0.pth', 'probe_rank1.pth'
                  ]
    # The atomic_local backend left no temporary file behind.
    assert not list(work_dir.glob('.*.tmp'))
    ckpt = load_checkpoint_file(work_dir / 'iter_6.pth')
    assert ckpt['meta']['iter'] == 6
    for key, value in rank0.items():
        assert torch.equal(ckpt['state_dict'][key], value), key
    logs = list(work_dir.glob('*/*.log'))
    assert len(logs) == 1
    assert 'Iter(train) [6/6]' in logs[0].read_text()


def test_torchrun_two_cpu_processes(dist_run):
    _check_two_rank_run(dist_run[1])


# Stand-ins for Slurm's srun (starts --ntasks copies of the command with
# the variables Slurm sets) and scontrol (names the allocation's hosts).
FAKE_SRUN = """#!{python}
import os, subprocess, sys
args, ntasks = sys.argv[1:], 1
while args[0].startswith('-'):
    opt = args.pop(0)
    if opt == '-p':
        args.pop(0)
    elif opt.startswith('--ntasks='):
        ntasks = int(opt.split('=')[1])
procs = [subprocess.Popen(args, env=dict(
    os.environ, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
    SLURM_NTASKS=str(ntasks), SLURM_NODELIST='localhost'))
    for rank in range(ntasks)]
sys.exit(max(p.wait() for p in procs))
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
echo localhost
"""


def test_slurm_train_script_two_cpu_tasks(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN.format(python=sys.executable)),
                       ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    config = tmp_path / 'runtime_toy.py'
    config.write_text(TOY_CONFIG)
    work_dir = tmp_path / 'work'
    env = dict(PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
               PYTHON=sys.executable, GPUS='2', GPUS_PER_NODE='2',
               GRES='', MASTER_PORT=str(free_port()))
    _run(['bash', osp.join(REPO, 'tools', 'slurm_train.sh'), 'cpu',
          'toy', str(config), str(work_dir)], cwd=tmp_path, env=env)
    _check_two_rank_run(work_dir)


def test_tools_test_on_another_scope(dist_run, tmp_path):
    config, work_dir = dist_run
    out = tmp_path / 'preds.pkl'
    proc = _run([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'),
        str(config),
        str(work_dir / 'iter_6.pth'), '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(out), '--cfg-options', 'default_scope=mmpretrain',
        'model.channels=6'
    ], cwd=tmp_path)
    assert 'accuracy:' in proc.stdout + proc.stderr
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 16 and set(preds[0]) == {'pred', 'label'}
