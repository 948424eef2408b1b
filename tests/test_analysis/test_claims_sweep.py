"""tools/analysis/claims.py on a tiny SuperTickets config: every arm for
2 ratios and 1 seed, killed after some runs and resumed, then the report
and figures from the stored results alone."""
import importlib.util
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config
from tiny_configs import cls_cfg, seg_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_claims():
    spec = importlib.util.spec_from_file_location(
        'claims_tool', osp.join(ROOT, 'tools', 'analysis', 'claims.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_supertickets_config(data_root, path, by_epoch=False):
    hooks = [
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=0, min_macs=0,
             shrink_interval=2, by_epoch=False),
        dict(type='ProgressivePruningHook', prune_interval=2, step=0.5,
             by_epoch=False),
        dict(type='IterativeReactivationHook'),
    ]
    cfg = cls_cfg(data_root, None, max_epochs=2, hooks=hooks) if by_epoch \
        else seg_cfg(data_root, None, max_iters=2, hooks=hooks)
    Config(cfg).dump(path)
    return path


@pytest.mark.slow
def test_tiny_sweep_resumes_and_reports(cityscapes_root, tmp_path):
    claims = load_claims()
    config = tiny_supertickets_config(cityscapes_root,
                                      str(tmp_path / 'st.py'))
    out = str(tmp_path / 'out')
    argv = [config, '--task', 'seg', '--ratios', '0.5', '0.9', '--seeds',
            '0', '--retrain', '1', '--out', out, '--snip-batches', '1']
    # "Killed" after 3 runs: search, SuperTickets 0.5 and 0.9.
    claims.main(argv + ['--max-runs', '3'])
    runs = osp.join(out, 'runs')
    first = {f: os.stat(osp.join(runs, f)).st_mtime_ns
             for f in os.listdir(runs)}
    assert sorted(first) == ['search-only_r0_s0_rt0.json',
                             'supertickets_r0.5_s0_rt0.json',
                             'supertickets_r0.9_s0_rt0.json']
    data = claims.main(argv)
    # The rerun ran only the rest: the first records are untouched.
    for f, mtime in first.items():
        assert os.stat(osp.join(runs, f)).st_mtime_ns == mtime
    records = [json.load(open(osp.join(runs, f)))
               for f in sorted(os.listdir(runs))]
    keys = {(r['method'], r['ratio'], r['retrain']) for r in records}
    assert keys == {('search-only', 0.0, 0)} | {
        (m, r, rt) for m in ('supertickets', 'sp-random', 'sp-magnitude',
                             'sp-snip')
        for r in (0.5, 0.9) for rt in (0, 1)}
    assert all(r['status'] == 'ok' for r in records), [
        r.get('error') for r in records]
    by = {(r['method'], r['ratio'], r['retrain']): r for r in records}
    for method in ('supertickets', 'sp-magnitude'):
        for ratio in (0.5, 0.9):
            r0, r1 = by[method, ratio, 0], by[method, ratio, 1]
            assert r0['sparsity'] == pytest.approx(ratio, abs=0.01)
            # Retraining adds iterations; masks fixed, costs kept.
            assert r1['iters'] == r0['iters'] + 1
            assert r1['macs'] == r0['macs']
            assert 0 < r0['macs'] < by['search-only', 0.0, 0]['macs']
            assert r0['macs_global'] > 0 and 'mIoU' in r0['metrics']
    # The one-shot S+P arms start from the shared search run.
    assert by['sp-snip', 0.9, 0]['iters'] == \
        by['search-only', 0.0, 0]['iters']
    assert data['metrics'][0] == 'mIoU'
    for axis in ('sparse', 'global'):
        assert osp.getsize(osp.join(out, f'claims_seg_{axis}.png')) > 5000
    text = open(osp.join(out, 'claims.md')).read()
    assert 'Verdict' in text and 'S+P SNIP w/ RT' in text
    assert json.load(open(osp.join(out, 'claims.json')))['verdict'] == \
        data['verdict']
    # Redrawn from the records alone, without the checkpoints.
    os.rename(osp.join(out, 'work'), str(tmp_path / 'gone'))
    again = claims.main(argv + ['--report-only'])
    assert again['verdict'] == data['verdict']
    # A slurm job array running the same store-keyed sweep.
    claims.main(argv + ['--launcher', 'slurm'])
    script = open(osp.join(out, 'sweep_slurm.sh')).read()
    assert 'SLURM_ARRAY_TASK_ID' in script and 'SEEDS=(0)' in script
    assert '--report-only' in script


def test_epoch_based_ticket_retrains(imagenet_root, tmp_path):
    # Retraining N iterations of an epoch-based config saves no checkpoint
    # (its CheckpointHook counts epochs): the w/ RT run must not need one.
    claims = load_claims()
    config = tiny_supertickets_config(imagenet_root, str(tmp_path / 'st.py'),
                                      by_epoch=True)
    out = str(tmp_path / 'out')
    # The first three runs: search, SuperTickets 0.5, and its retraining.
    claims.main([config, '--task', 'cls', '--ratios', '0.5', '--seeds', '0',
                 '--retrain', '1', '--out', out, '--max-runs', '3'])
    runs = osp.join(out, 'runs')
    r0, r1 = (json.load(open(osp.join(runs, f'supertickets_r0.5_s0_rt{rt}'
                                      '.json'))) for rt in (0, 1))
    assert r1['status'] == 'ok', r1.get('error')
    assert r1['iters'] == r0['iters'] + 1
    assert r1['sparsity_after'] == pytest.approx(r0['sparsity'])
    assert 'accuracy/top1' in r1['metrics']


def test_bad_arguments_are_refused():
    claims = load_claims()
    for bad in (['--seeds', '0', '0'], ['--ratios', '1.0'],
                ['--retrain', '-1'], []):
        with pytest.raises(SystemExit):
            claims.parse_args(['--out', 'x'] + (bad or []) +
                              ([] if bad == [] else ['--task', 'seg']))
