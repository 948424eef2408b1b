"""A subnet fitted to a latency budget exports to ONNX that matches torch."""
import pytest
import torch

from mmsupertickets.apis.export.onnx_check import export_onnx
from mmsupertickets.latency import LatencyCost, unit_widths
from mmsupertickets.latency.build import table_from_function
from mmsupertickets.structures.macs_budget import fit_cost
from mmsupertickets.structures.searchable import find_searchable_units
from mmsupertickets.structures.shrink_plan import (
    apply_plan,
    plan_channel_removal,
)


def _seg_model():
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    from tiny_configs import seg_cfg

    import mmsupertickets  # noqa: F401
    register_all_modules(init_default_scope=True)
    torch.manual_seed(0)
    model = MODELS.build(seg_cfg('unused', 'unused')['model'])
    model.init_weights()
    return model.eval()


# ONNX export and an onnxruntime session: over 20 s on a loaded 2-core box.
@pytest.mark.slow
def test_latency_fitted_ticket_onnx_equals_pytorch(tmp_path):
    pytest.importorskip('onnxruntime')
    model = _seg_model()
    shape = (32, 64)
    table = table_from_function(
        model, shape, lambda n, u, w: 0.01 + 1e-6 * w * u['macs_per_channel'],
        fixed_ms=1.0, divisors=(8, ))
    cost = LatencyCost(table, 8)
    units = find_searchable_units(model)
    g = torch.Generator().manual_seed(0)
    magnitude = {u.name: torch.rand(u.channels, generator=g) for u in units}
    live = {u.name: torch.ones(u.channels, dtype=torch.bool) for u in units}
    budget = 0.6 * cost.total(unit_widths(model))
    live = fit_cost(live, magnitude, cost, budget, 8, trim=True)
    apply_plan(model, plan_channel_removal(model, {
        n: m.nonzero().flatten() for n, m in live.items()
        if int(m.sum()) < m.numel()}))
    assert cost.total(unit_widths(model)) <= budget
    assert all(c % 8 == 0 for c in unit_widths(model).values())
    result = export_onnx(model, shape, str(tmp_path / 'ticket.onnx'))
    assert result['max_rel_diff'] <= 1e-4
