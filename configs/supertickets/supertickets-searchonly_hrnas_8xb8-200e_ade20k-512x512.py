# Search only: the supernet of supertickets_hrnas_8xb8-200e_ade20k-512x512
# trains with network slimming and shrinking but neither pruning nor
# reactivation. Its searched subnet is where the S+P baselines (search, then
# prune one-shot, with or without retraining) start from.
_base_ = ['./supertickets_hrnas_8xb8-200e_ade20k-512x512.py']

custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in
    ('ProgressivePruningHook', 'IterativeReactivationHook')
]
