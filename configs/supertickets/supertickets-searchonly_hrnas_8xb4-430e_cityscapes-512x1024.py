# Search only: the supernet of supertickets_hrnas_8xb4-430e_cityscapes-512x1024
# trains with network slimming and shrinking but neither pruning nor
# reactivation. Its searched subnet is where the S+P baselines (search, then
# prune one-shot, with or without retraining) start from.
_base_ = ['./supertickets_hrnas_8xb4-430e_cityscapes-512x1024.py']

custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in
    ('ProgressivePruningHook', 'IterativeReactivationHook')
]
