from .iterative_reactivation_hook import IterativeReactivationHook
from .progressive_pruning_hook import ProgressivePruningHook, prunable_weights
from .supernet_search_hook import SuperNetSearchHook
from .ticket_transfer_hook import TicketTransferHook

__all__ = [
    'SuperNetSearchHook', 'ProgressivePruningHook',
    'IterativeReactivationHook', 'TicketTransferHook', 'prunable_weights'
]
