"""The paper's comparison as a capability: a sweep of SuperTickets and S+P
arms over ratios, seeds and retraining (:mod:`.sweep`), their curves
compared at matched MACs (:mod:`.curves`), figures (:mod:`.figures`) and
the report (:mod:`.report`). Used by ``tools/analysis/claims.py``."""
from .curves import (
                     compare_at_matched_macs,
                     curve_area,
                     interp_log,
                     matched_points,
                     verdict,
)
from .report import write_report
from .sweep import RunStore, derive_arms, plan_tasks, run_key, run_sweep

__all__ = [
    'compare_at_matched_macs', 'curve_area', 'interp_log', 'matched_points',
    'verdict', 'write_report', 'RunStore', 'derive_arms', 'plan_tasks',
    'run_key', 'run_sweep'
]
