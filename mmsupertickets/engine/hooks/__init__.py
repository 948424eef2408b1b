from .iterative_reactivation_hook import IterativeReactivationHook
from .progressive_pruning_hook import ProgressivePruningHook, prunable_weights
from .supernet_search_hook import SuperNetSearchHook

__all__ = [
    'SuperNetSearchHook', 'ProgressivePruningHook',
    'IterativeReactivationHook', 'prunable_weights'
]
