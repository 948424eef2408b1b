"""Export, tools/test.py and the one-shot API refuse what would end with
exit 0 and a wrong result (issue 21, probes 2, 5, 10, 12)."""
import copy
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from fixture_runs import tiny_ticket_run
from mmengine.registry import MODELS, init_default_scope

import mmsupertickets  # noqa: F401
from mmsupertickets.apis.export import export_ticket
from mmsupertickets.apis.export.ticket_export import _max_abs_diff
from mmsupertickets.apis.oneshot import prune_oneshot
from mmsupertickets.structures.arch import apply_arch, export_arch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def run(cityscapes_root, tmp_path_factory):
    """A tiny ticket run (a shrink, prune events: its checkpoint carries
    masks), its config file and its last checkpoint."""
    return tiny_ticket_run(cityscapes_root,
                           tmp_path_factory.mktemp('refusals'),
                           with_test=True)


def crafted(run, tmp_path, edit):
    ckpt = copy.deepcopy(run['checkpoint'])
    edit(ckpt)
    path = str(tmp_path / 'crafted.pth')
    torch.save(ckpt, path)
    return path


def _nan_weight(ckpt):
    name = next(k for k, v in ckpt['state_dict'].items()
                if v.is_floating_point() and v.dim() == 4)
    ckpt['state_dict'][name].view(-1)[0] = float('nan')
    ckpt['nan_name'] = name


def _meta(section, key, value):
    def edit(ckpt):
        ckpt['supertickets'][section][key] = value
    return edit


def _masks(change):
    def edit(ckpt):
        masks = ckpt['supertickets']['pruning']['masks']
        for name in masks:
            masks[name] = change(masks[name])
    return edit


def test_export_refuses_a_non_finite_weight_naming_it(run, tmp_path):
    path = crafted(run, tmp_path, _nan_weight)
    name = torch.load(path, weights_only=False)['nan_name']
    out = tmp_path / 'ticket'
    with pytest.raises(ValueError, match=f"tensor '{name}' holds NaN"):
        export_ticket(run['cfg_file'], path, str(out))
    assert not out.exists()


@pytest.mark.parametrize('edit,named', [
    (_meta('search', 'supernet_cost', dict(params=10, macs=float('nan'))),
     'search.supernet_cost.macs=nan'),
    (_meta('search', 'input_shape', [60000, 60000]),
     r'search.input_shape=\[60000, 60000\] must be \(H, W\)'),
    (_masks(torch.zeros_like), r'keep none of their \d+ weights'),
    (_masks(lambda m: m.float()), 'must be a bool tensor, got dtype'),
    (_masks(lambda m: m.reshape(-1)), r'has shape \(\d+,\) but the weight'),
])
def test_export_refuses_bad_ticket_state_naming_the_field(
        run, tmp_path, edit, named):
    path = crafted(run, tmp_path, edit)
    out = tmp_path / 'ticket'
    with pytest.raises(ValueError, match=named) as info:
        export_ticket(run['cfg_file'], path, str(out))
    assert 'crafted.pth' in str(info.value)
    assert not out.exists()


@pytest.mark.parametrize('shape', [[0, 64], [64, 60000]])
def test_a_bad_shape_argument_is_refused(run, tmp_path, shape):
    out = tmp_path / 't'
    with pytest.raises(ValueError, match=rf'shape=\[{shape[0]}, {shape[1]}\]'):
        export_ticket(run['cfg_file'], run['ckpt'], str(out), shape=shape)
    assert not out.exists()


def test_the_rebuild_check_fails_on_nan():
    """``max`` over Python floats drops a NaN that is not first; the
    check's difference keeps it, so ``not diff <= tol`` refuses it."""
    ref = (torch.zeros(2), torch.zeros(2))
    got = (torch.zeros(2), torch.tensor([0., float('nan')]))
    diff = _max_abs_diff(ref, got)
    assert diff != diff  # NaN
    assert not diff <= 1e-4


def test_summary_has_no_nan_and_arch_json_duplicates_are_refused(
        run, tmp_path):
    out = tmp_path / 'ticket'
    summary = export_ticket(run['cfg_file'], run['ckpt'], str(out))
    assert 0 <= summary['rebuilt_from_config_max_abs_diff'] <= 1e-4
    text = (out / 'summary.json').read_text()
    assert 'NaN' not in text and json.loads(text)['ticket']['sparsity'] < 1
    # arch.json with one unit twice: which width is meant cannot be told.
    arch = json.loads((out / 'arch.json').read_text())
    unit, width = next(iter(arch.items()))
    lines = (out / 'arch.json').read_text().rstrip().rstrip('}')
    doubled = tmp_path / 'arch.json'
    doubled.write_text(lines + f',\n "{unit}": {width}\n}}\n')
    init_default_scope('mmseg')
    model = MODELS.build(copy.deepcopy(run['cfg']['model']))
    supernet = export_arch(model)
    with pytest.raises(ValueError, match=f"key '{unit}' appears twice"):
        apply_arch(model, str(doubled))
    assert export_arch(model) == supernet  # nothing was applied
    apply_arch(model, str(out / 'arch.json'))
    assert export_arch(model) == {k: v for k, v in arch.items() if v}


@pytest.mark.slow
def test_tools_test_refuses_non_finite_weights(run, tmp_path):
    path = crafted(run, tmp_path, _nan_weight)
    name = torch.load(path, weights_only=False)['nan_name']
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'),
         run['cfg_file'], path, '--work-dir', str(tmp_path / 'test')],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert f"tensor '{name}' holds NaN or inf" in out, out[-2000:]
    assert 'mIoU' not in out


@pytest.mark.slow
def test_oneshot_on_a_checkpoint_with_masks_warns_and_prunes(
        run, tmp_path, caplog):
    """The common case: one-shot pruning a checkpoint of a full
    SuperTickets run, which carries masks (they are dropped, with a
    warning)."""
    saved = run['checkpoint']['supertickets']['pruning']['masks']
    assert saved
    result = prune_oneshot(run['cfg_file'], run['ckpt'], 'magnitude', 0.3,
                           str(tmp_path / 'sp'))
    assert result['sparsity'] == pytest.approx(0.3, abs=1e-3)
    assert osp.isfile(tmp_path / 'sp' / 'magnitude_0.3.json')
    logs = open(next((tmp_path / 'sp' / 'magnitude_0.3' / 'oneshot').rglob(
        '*.log'))).read()
    assert f'the checkpoint carries {len(saved)} masks; they are dropped' \
        in logs
    assert 'WARNING' in logs.split('they are dropped')[0].splitlines()[-1]
