"""The pure pruning pieces: schedules, selection with ties, the prunable
set."""
import pytest
import torch
import torch.nn as nn

from mmsupertickets.pruning.prunable import prunable_weights
from mmsupertickets.pruning.schedules import (
    CubicSchedule,
    StepSchedule,
    build_schedule,
)
from mmsupertickets.pruning.selection import select_global, select_per_layer


def test_step_schedule_climbs_by_step_and_stops_at_target():
    schedule = StepSchedule(0.45, step=0.1)
    ratios = [schedule(k, 8) for k in range(1, 9)]
    assert ratios[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert ratios[4:] == [0.45] * 4


def test_cubic_schedule_is_monotone_and_hits_the_target_at_the_end():
    schedule = CubicSchedule(0.9)
    ratios = [schedule(k, 5) for k in range(0, 7)]
    assert ratios[0] == 0.0
    assert all(a < b for a, b in zip(ratios[:5], ratios[1:6]))
    assert ratios[5] == pytest.approx(0.9) and ratios[6] == pytest.approx(0.9)
    # Zhu & Gupta: most of the pruning happens early.
    assert ratios[1] > 0.9 * (1 - (4 / 5) ** 3) - 1e-9


@pytest.mark.parametrize('bad', [-0.1, 1.0, 1.5])
def test_schedules_refuse_sparsities_outside_0_1(bad):
    with pytest.raises(ValueError, match='out of range'):
        build_schedule('step', bad)


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="'linear'"):
        build_schedule('linear', 0.5)


def test_global_selection_keeps_exactly_the_count_with_ties():
    # Ten equal scores: 30 % sparsity must keep exactly 7, the first ones.
    scores = {'a': torch.ones(4), 'b': torch.ones(6)}
    masks = select_global(scores, 0.3)
    kept = torch.cat([masks['a'], masks['b']])
    assert int(kept.sum()) == 7
    assert kept.tolist() == [True] * 7 + [False] * 3


def test_global_selection_ranks_over_all_layers_together():
    scores = {'small': torch.tensor([0.1, 0.2]),
              'large': torch.tensor([5.0, 6.0, 7.0, 8.0])}
    masks = select_global(scores, 0.5)
    assert masks['small'].tolist() == [False, False]
    assert masks['large'].tolist() == [False, True, True, True]


def test_per_layer_selection_keeps_the_fraction_of_each_layer():
    scores = {'small': torch.tensor([0.1, 0.2]),
              'large': torch.tensor([5.0, 6.0, 7.0, 8.0])}
    masks = select_per_layer(scores, 0.5)
    assert masks['small'].tolist() == [False, True]
    assert masks['large'].tolist() == [False, False, True, True]


@pytest.mark.parametrize('sparsity, kept', [(0.0, 6), (0.99, 0)])
def test_selection_at_the_ends(sparsity, kept):
    masks = select_global({'w': torch.arange(6.0)}, sparsity)
    assert int(masks['w'].sum()) == kept


def test_prunable_set_skips_biases_norms_attention_and_excluded():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 4),
        nn.MultiheadAttention(4, 2), nn.Linear(4, 2))
    names = set(prunable_weights(model, exclude=(r'^4\.', )))
    assert names == {'0.weight', '2.weight'}
