"""The pure structures: masks following a shrink, the MAC estimator."""
import torch
import torch.nn as nn

from mmsupertickets.flops import ResourceEstimator, analyze_macs
from mmsupertickets.models import SuperTicketHRNet
from mmsupertickets.structures.masks import WeightMasks
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    ShrinkPlan,
    apply_plan,
    plan_channel_removal,
)


def test_masks_are_sliced_like_their_weights_and_removed_ones_dropped():
    model = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False),
                          nn.Conv2d(4, 2, 1, bias=False))
    masks = WeightMasks()
    first = torch.tensor([True, False, True, False]).view(4, 1, 1, 1)
    masks.set(model, '0.weight', first)
    masks.set(model, '1.weight', torch.ones(2, 4, 1, 1, dtype=torch.bool))
    plan = ShrinkPlan(slices={'0.weight': (0, torch.tensor([0, 1]))},
                      removed_tensors=['1.weight'])
    masks.follow_plan(plan)
    assert masks.get('0.weight').flatten().tolist() == [True, False]
    assert masks.names() == ['0.weight'] and len(masks) == 1


def test_masked_forward_leaves_stored_values_and_state_dict_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(3.0)
    masks = WeightMasks()
    masks.set(model, '0.weight',
              torch.tensor([False, True]).view(2, 1, 1, 1))
    out = model(torch.ones(1, 1, 1, 1)).flatten().tolist()
    assert out == [0.0, 3.0]
    assert list(model.state_dict()) == ['0.weight']
    assert model[0].weight.flatten().tolist() == [3.0, 3.0]
    assert masks.reset(['0.weight']) == 1
    assert model(torch.ones(1, 1, 1, 1)).flatten().tolist() == [3.0, 3.0]


def _narrow_backbone():
    return SuperTicketHRNet(
        stem_channels=8, stage_channels=((8, ), (8, 16)),
        stage_blocks=((1, ), (1, 1)), out_indices=(0, 1))


def test_estimator_derives_shrunk_macs_equal_to_a_new_trace():
    torch.manual_seed(0)
    model = _narrow_backbone().eval()
    estimator = ResourceEstimator((32, 32))
    before = estimator.complexity(model)
    units = find_searchable_units(model)
    keep = {u.name: torch.arange(max(1, u.channels // 3))
            for u in units[::2]}
    keep[units[1].name] = torch.tensor([], dtype=torch.long)  # a path goes
    apply_plan(model, plan_channel_removal(model, keep))
    derived = estimator.layer_macs(model)
    traced = analyze_macs(model, (32, 32)).by_module()
    traced = {k[len('model.'):]: v for k, v in traced.items()
              if k.startswith('model.')}
    assert derived == {name: traced.get(name, 0) for name in derived}
    after = estimator.complexity(model)
    assert after['macs'] == sum(derived.values()) < before['macs']
