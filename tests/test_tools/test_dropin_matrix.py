"""A sample of the drop-in matrix (tools/analysis/dropin_matrix.py): one
stock config per family, 2 iterations at a small input, export, reload
through the stock inference API. The full matrix is a measurement
(docs/en/user_guides/dropin_configs.md), not a test."""
import pytest

from mmsupertickets.testing.dropin import format_table, run_config

FAST = [
    ('mmpose', 'body_2d_keypoint/rtmpose/coco/'
     'rtmpose-t_8xb256-420e_coco-256x192.py', 'a'),
    ('mmpretrain', 'resnet/resnet18_8xb32_in1k.py', 'a'),
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


@pytest.mark.parametrize('cell', FAST, ids=lambda c: f'{c[0]}-{c[2]}')
def test_dropin_sample(cell, tmp_path):
    check_cell(cell, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize('cell', SLOW,
                         ids=lambda c: f'{c[1].split("/")[-1]}-{c[2]}')
def test_dropin_sample_slow(cell, tmp_path):
    check_cell(cell, tmp_path)
