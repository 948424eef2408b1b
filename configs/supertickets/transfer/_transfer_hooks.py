# Shared by the transfer configs: the SuperTickets search and pruning hooks
# are replaced by the transfer hook plus a pruning hook that only holds the
# transferred masks fixed (prune_interval=None); other hooks stay.
drawing_hooks = ('SuperNetSearchHook', 'ProgressivePruningHook',
                 'IterativeReactivationHook')
