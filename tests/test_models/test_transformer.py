"""The optional token transformer: searchable tokens, rebuild from arch."""
import torch
from tiny_configs import TINY_BACKBONE

import mmsupertickets  # noqa: F401
from mmsupertickets.models import SuperTicketHRNet
from mmsupertickets.pruning.prunable import prunable_weights
from mmsupertickets.structures.arch import export_arch
from mmsupertickets.structures.masks import WeightMasks
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    apply_plan,
    plan_channel_removal,
)

KW = dict({k: v for k, v in TINY_BACKBONE.items() if k != 'type'},
          transformer=dict(num_tokens=16))


def test_tokens_are_searchable_units_and_rebuild_from_arch():
    torch.manual_seed(0)
    net = SuperTicketHRNet(**KW)
    net.init_weights()
    net.eval()
    supernet_units = [u.name for u in find_searchable_units(net)]
    tokens = [u for u in find_searchable_units(net)
              if u.name.endswith('transformer')]
    # One transformer per branch of every stage: 1 + 2 + 3 + 4 + 4.
    assert len(tokens) == 14 and tokens[0].channels == 16
    assert len(SuperTicketHRNet(**dict(KW, transformer=None)).state_dict()) \
        < len(net.state_dict())
    keep = {tokens[0].name: torch.tensor([1, 3, 5]),
            tokens[1].name: torch.tensor([], dtype=torch.long)}
    apply_plan(net, plan_channel_removal(net, keep))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y = net(x)
    assert [t.shape[1] for t in y] == [8, 16, 24, 32]
    arch = export_arch(net, supernet_units)
    assert arch[tokens[0].name] == 3 and arch[tokens[1].name] == 0
    rebuilt = SuperTicketHRNet(arch=arch, **KW)
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    rebuilt.eval()
    with torch.no_grad():
        for a, b in zip(rebuilt(x), y):
            assert torch.equal(a, b)


def test_token_mixer_weights_are_masked_in_forward():
    torch.manual_seed(0)
    net = SuperTicketHRNet(**KW).eval()
    name = 'stage2.branch1.transformer.encoder.fc1.weight'
    assert name in prunable_weights(net)
    x = torch.rand(1, 3, 64, 64)
    masks = WeightMasks()
    masks.set(net, name, torch.zeros_like(net.get_parameter(name),
                                          dtype=torch.bool))
    with torch.no_grad():
        y_masked = net(x)
        masks.clear()
        net.get_parameter(name).zero_()
        y_zero = net(x)
    for a, b in zip(y_masked, y_zero):
        assert torch.allclose(a, b, atol=1e-6)
