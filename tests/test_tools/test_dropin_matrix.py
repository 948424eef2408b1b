"""A sample of the drop-in matrix (tools/analysis/dropin_matrix.py): one
stock config per family, 2 iterations at a small input, export, reload
through the stock inference API. The full matrix is a measurement
(docs/en/user_guides/dropin_configs.md), not a test."""
import pytest

from mmsupertickets.testing.dropin import format_table, run_config
from mmsupertickets.testing.dropin_cell import same_failure

FAST = [
    ('mmpose', 'body_2d_keypoint/rtmpose/coco/'
     'rtmpose-t_8xb256-420e_coco-256x192.py', 'a'),
    ('mmpretrain', 'resnet/resnet18_8xb32_in1k.py', 'a'),
    # Bottom-up: the deterministic BottomupRandomAffine, several people
    # per image.
    ('mmpose', 'body_2d_keypoint/cid/coco/'
     'cid_hrnet-w32_8xb20-140e_coco-512x512.py', 'a'),
]
SLOW = [
    ('mmseg', 'hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py', 'a'),
    ('mmseg', 'hrnet/fcn_hr18_4xb2-80k_cityscapes-512x1024.py', 'b'),
    ('mmseg', 'ocrnet/ocrnet_hr18_4xb2-80k_cityscapes-512x1024.py', 'a'),
    ('mmseg', 'ocrnet/ocrnet_hr18_4xb2-80k_cityscapes-512x1024.py', 'b'),
    ('mmseg', 'pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py', 'a'),
    ('mmpose', 'body_2d_keypoint/topdown_heatmap/coco/'
     'td-hm_hrnet-w32_8xb64-210e_coco-256x192.py', 'b'),
]


def check_cell(cell, tmp_path):
    row = run_config(*cell, str(tmp_path))
    assert row['result'] == 'pass', format_table([row]) + row.get(
        'trace', '')
    # Pruned to the hook's target; the ticket's exact MACs below the
    # dense subnet's; the stock API returned a prediction.
    assert row['sparsity'] == pytest.approx(0.5, abs=0.01)
    assert 0 < row['ticket_macs'] < row['macs']
    assert all(n > 0 for n in row['output'])
    return row


@pytest.mark.parametrize('cell', FAST,
                         ids=lambda c: f'{c[1].split("/")[-1]}-{c[2]}')
def test_dropin_sample(cell, tmp_path):
    row = check_cell(cell, tmp_path)
    # Models that run at the small input keep it.
    assert 'input_size' not in row


@pytest.mark.slow
@pytest.mark.parametrize('cell', SLOW,
                         ids=lambda c: f'{c[1].split("/")[-1]}-{c[2]}')
def test_dropin_sample_slow(cell, tmp_path):
    check_cell(cell, tmp_path)


def skip_reason(cell, tmp_path):
    row = run_config(*cell, str(tmp_path))
    assert row['result'] == 'skip', format_table([row]) + row.get(
        'trace', '')
    return row


@pytest.mark.parametrize('cell, reason', [
    # mmpose ships AE for inference only.
    (('mmpose', 'body_2d_keypoint/associative_embedding/coco/'
      'ae_hrnet-w32_8xb24-300e_coco-512x512.py', 'a'),
     'the stock config has no training'),
    # A linear probe: the backbone is frozen, only the excluded head trains.
    (('mmpretrain', 'barlowtwins/benchmarks/resnet50_8xb32'
      '-linear-coslr-100e_in1k.py', 'a'), 'nothing to prune'),
    # Its read_base imports mmpose.configs._base_, not in the package.
    (('mmpose', 'body_2d_keypoint/edpose/coco/'
      'edpose_res50_8xb2-50e_coco-800x1333.py', 'a'),
     'the stock config does not load'),
], ids=['no-train-pipeline', 'frozen-backbone', 'unloadable'])
def test_cells_that_cannot_run_are_skips(cell, reason, tmp_path):
    row = skip_reason(cell, tmp_path)
    assert row['error'].startswith(reason), row


def test_stock_failure_is_a_skip(tmp_path):
    # class_weight[255] in mmseg's cross_entropy: stock mmseg fails on any
    # ignored pixel, with or without the plugin.
    row = skip_reason(('mmseg', 'cgnet/cgnet_fcn_4xb4-60k_cityscapes-'
                       '680x680.py', 'a'), tmp_path)
    assert row['error'].startswith('fails without the plugin too: '
                                   'IndexError')
    assert row['plugin_error'] == row['error'].split(': ', 1)[1]


def test_same_failure():
    nan = 'RuntimeError: the model built from the exported config ' \
        'differs from the ticket by nan (max abs): export aborted'
    stock_nan = 'RuntimeError: the stock model\'s eval-mode outputs are ' \
        'not finite (NaN or inf)'
    assert same_failure(nan, stock_nan)
    assert same_failure('KeyError: 1', 'KeyError: 1')
    assert not same_failure('KeyError: 1', 'KeyError: 2')
    assert not same_failure(nan, None)
    assert not same_failure(nan, 'KeyError: 1')


def test_input_size_fits_the_stock_model(tmp_path):
    # DaViT's attention window does not fit 64x64: the config's own
    # image size.
    row = check_cell(('mmpretrain', 'davit/davit-tiny_4xb256_in1k.py',
                      'a'), tmp_path)
    assert row['input_size'] == 224


def test_summary_counts_the_results_file(tmp_path, capsys):
    import importlib.util
    import json
    import os.path as osp
    tool = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools', 'analysis', 'dropin_matrix.py')
    spec = importlib.util.spec_from_file_location('dropin_tool', tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = dict(codebase='mmseg', config='x.py', variant='a', error='')
    rows = [dict(row, result='pass'),
            dict(row, config='y.py', result='fail', error='KeyError: 1'),
            dict(row, config='z.py', result='skip', error='reason'),
            dict(row, config='z.py', variant='b', result='skip',
                 error='no HRNet backbone')]
    out = tmp_path / 'matrix.json'
    out.write_text(json.dumps(dict(results=rows)))
    assert module.main(['--out', str(out), '--summary']) == 0
    text = capsys.readouterr().out
    # The (b) row without an HRNet backbone is not a cell of the table.
    assert '| mmseg (a) | 1 | 1 | 1 | 50.0 % |' in text
    assert 'mmseg (b)' not in text
    assert '- fail mmseg/y.py (a): KeyError: 1' in text


def test_udp_combined_target_counts_keypoints_not_channels():
    # out_channels=3*17: a heatmap and x/y offsets per COCO keypoint.
    from mmengine.config import Config

    from mmsupertickets.testing.dropin_config import (
        _num_keypoints,
        config_root,
    )
    folder = config_root('mmpose') + '/body_2d_keypoint/topdown_heatmap/'
    udp = Config.fromfile(folder + 'coco/td-hm_hrnet-w32_udp-regress-'
                          '8xb64-210e_coco-256x192.py')
    mpii = Config.fromfile(folder + 'mpii/td-hm_hrnet-w32_8xb64-210e_'
                           'mpii-256x256.py')
    assert _num_keypoints(udp.model) == 17
    assert _num_keypoints(mpii.model) == 16
