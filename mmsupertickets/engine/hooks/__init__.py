from .bn_recalibration_hook import BNRecalibrationHook
from .iterative_reactivation_hook import IterativeReactivationHook
from .oneshot_pruning_hook import OneShotPruningHook
from .progressive_pruning_hook import ProgressivePruningHook
from .supernet_search_hook import SuperNetSearchHook
from .ticket_transfer_hook import TicketTransferHook

__all__ = [
    'SuperNetSearchHook', 'ProgressivePruningHook',
    'IterativeReactivationHook', 'TicketTransferHook', 'OneShotPruningHook',
    'BNRecalibrationHook'
]
