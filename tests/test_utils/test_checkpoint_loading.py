"""Importing the plugin changes no loading; its own loading reads NumPy-1
and NumPy-2 checkpoints on every supported torch."""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mmsupertickets.utils.checkpoint_io import (
    CheckpointLoadError,
    UnsafeCheckpointError,
    load_checkpoint_file,
    safe_checkpoint_loading,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def numpy1_checkpoint(path):
    """A checkpoint pickled as NumPy 1.x writes it (``numpy.core...``)."""
    ckpt = dict(state_dict={'w': torch.ones(2)},
                meta=dict(sigmas=np.arange(3, dtype=np.float32),
                          scale=np.float64(0.5)))
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    with open(path, 'rb') as f:
        data = f.read()
    # Protocol 2 writes globals as text lines: rename NumPy 2's module.
    data = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'numpy.core.multiarray' in data
    with open(path, 'wb') as f:
        f.write(data)


def test_the_project_loader_reads_numpy1_checkpoints(tmp_path):
    path = str(tmp_path / 'numpy1.pth')
    numpy1_checkpoint(path)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['sigmas'].tolist() == [0.0, 1.0, 2.0]
    assert float(ckpt['meta']['scale']) == 0.5


MMENGINE_LOAD = textwrap.dedent('''
    import json, sys
    # What the plugin's modules import from the OpenMMLab packages (torch
    # registers safe globals of its own when some of its parts load).
    import mmcv.cnn  # noqa: F401
    import mmseg.models.decode_heads.decode_head  # noqa: F401
    if sys.argv[2] == 'plugin':
        import mmsupertickets  # noqa: F401
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
    out = dict(loader=CheckpointLoader._schemes[''].__name__)
    if hasattr(torch.serialization, 'get_safe_globals'):
        out['safe_globals'] = sorted(
            f'{getattr(g, "__module__", "")}.{getattr(g, "__qualname__", g)}'
            for g in torch.serialization.get_safe_globals())
    try:
        ckpt = _load_checkpoint(sys.argv[1], map_location='cpu')
        out['loaded'] = sorted(ckpt)
    except Exception as err:
        out['error'] = type(err).__name__
    print(json.dumps(out))
''')


def _mmengine_load(path, plugin):
    proc = subprocess.run(
        [sys.executable, '-c', MMENGINE_LOAD, path, plugin],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_leaves_mmengine_loading_as_it_was(tmp_path):
    path = str(tmp_path / 'numpy1.pth')
    numpy1_checkpoint(path)
    stock = _mmengine_load(path, 'stock')
    with_plugin = _mmengine_load(path, 'plugin')
    # Same loader, same torch allow-list, same outcome (on torch 2.1 the
    # file loads; on torch >= 2.6 stock mmengine refuses it either way).
    assert with_plugin == stock
    assert stock['loader'] == 'load_from_local'


def test_safe_loading_is_scoped_and_restored():
    import mmengine.runner.checkpoint as mm_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader
    before = dict(CheckpointLoader._schemes)
    http_before = mm_checkpoint.load_from_http
    with safe_checkpoint_loading():
        with safe_checkpoint_loading():
            inner = dict(CheckpointLoader._schemes)
        assert CheckpointLoader._schemes == inner
        # Only the public scheme table changes, never a module attribute.
        assert mm_checkpoint.load_from_http is http_before
    for scheme in ('', 'http://', 'https://', 'open-mmlab://', 'pavi://',
                   'torchvision://', 'mmcls://'):
        assert inner[scheme] is not before[scheme], scheme
    assert CheckpointLoader._schemes == before
    with safe_checkpoint_loading(enabled=False):
        assert CheckpointLoader._schemes == before


LOADERS_SEEN = []


def _note_loaders(stage):
    import mmengine.runner.checkpoint as mm_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader
    LOADERS_SEEN.append((stage, dict(CheckpointLoader._schemes),
                         mm_checkpoint.load_from_http))


def _loader_probe_hook():
    """A hook noting which loaders mmengine would use inside the run."""
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS
    if 'LoaderProbeHook' not in HOOKS.module_dict:

        @HOOKS.register_module()
        class LoaderProbeHook(Hook):

            def before_train(self, runner):
                _note_loaders('before_train')

            def after_train_iter(self, runner, *args, **kwargs):
                _note_loaders('after_train_iter')

    return dict(type='LoaderProbeHook')


@pytest.mark.parametrize(
    'enabled', [True, pytest.param(False, marks=pytest.mark.slow)])
def test_run_with_every_hook_leaves_mmengine_as_it_was(
        cityscapes_root, tmp_path, enabled):
    import mmengine.runner.checkpoint as mm_checkpoint
    from mmengine import Config
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import CheckpointLoader
    from tiny_configs import seg_cfg
    before = dict(CheckpointLoader._schemes)
    http_before = mm_checkpoint.load_from_http
    hooks = [
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=1, min_macs=0,
             shrink_interval=2, by_epoch=False),
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=2, step=0.25, by_epoch=False),
        dict(type='IterativeReactivationHook'),
        _loader_probe_hook(),
    ]
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=4, hooks=hooks)
    cfg['safe_checkpoint_loading'] = enabled
    LOADERS_SEEN.clear()
    Runner.from_cfg(Config(cfg)).train()
    seen = {name: (schemes, http) for name, schemes, http in LOADERS_SEEN}
    for stage in ('before_train', 'after_train_iter'):
        schemes, http = seen[stage]
        assert http is http_before
        assert (schemes[''] is before['']) is not enabled
        assert (schemes['https://'] is before['https://']) is not enabled
    # after_run: every loader is mmengine's own again.
    assert CheckpointLoader._schemes == before
    assert mm_checkpoint.load_from_http is http_before


def test_a_run_that_raises_ends_its_scope_when_freed(cityscapes_root,
                                                     tmp_path):
    """mmengine skips after_run when training raises: the loaders and the
    work-dir lock are given back once the runner is freed."""
    import gc

    from mmengine import Config
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import CheckpointLoader
    from tiny_configs import seg_cfg
    before = dict(CheckpointLoader._schemes)
    hooks = [dict(type='ProgressivePruningHook', target_sparsity=0.5,
                  prune_interval=2, step=0.25, by_epoch=False),
             dict(type='LoaderProbeHook')]
    _loader_probe_hook()
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=4, hooks=hooks)
    LOADERS_SEEN.clear()
    runner = Runner.from_cfg(Config(cfg))

    def fail(*args, **kwargs):
        raise RuntimeError('boom')

    runner.model.forward = fail
    with pytest.raises(RuntimeError, match='boom'):
        runner.train()
    assert CheckpointLoader._schemes != before  # still inside its scope
    del runner, fail
    gc.collect()
    assert CheckpointLoader._schemes == before
    # The work dir is free again: a new run there starts.
    cfg['train_cfg']['max_iters'] = 1
    Runner.from_cfg(Config(cfg)).train()


def test_bad_safe_loading_key_is_named(cityscapes_root, tmp_path):
    from mmengine import Config
    from mmengine.runner import Runner
    from tiny_configs import seg_cfg
    cfg = seg_cfg(cityscapes_root, str(tmp_path), max_iters=1, hooks=[
        dict(type='ProgressivePruningHook', target_sparsity=0.5,
             prune_interval=1, by_epoch=False)])
    cfg['safe_checkpoint_loading'] = 'no'
    with pytest.raises(TypeError, match="safe_checkpoint_loading.*'no'"):
        Runner.from_cfg(Config(cfg)).train()


class Payload:
    """Unpickling it runs a command (what a hostile checkpoint does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    from fixture_runs import served_folder
    with served_folder(tmp_path, monkeypatch) as www_and_url:
        yield www_and_url


def test_remote_checkpoints_go_through_the_allow_list(http_root, tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    www, url = http_root
    torch.save({'state_dict': {'w': torch.arange(3.)}}, www / 'good.pth')
    marker = tmp_path / 'MARKER'
    torch.save({'state_dict': {'w': Payload(marker)}}, www / 'evil.pth')
    with safe_checkpoint_loading():
        good = CheckpointLoader.load_checkpoint(f'{url}/good.pth')
        assert good['state_dict']['w'].tolist() == [0., 1., 2.]
        with pytest.raises(UnsafeCheckpointError, match='system'):
            CheckpointLoader.load_checkpoint(f'{url}/evil.pth')
        with pytest.raises(CheckpointLoadError, match='copy the file'):
            CheckpointLoader.load_checkpoint('s3://bucket/x.pth')
    assert not marker.exists()
