# Search only: the supernet of supertickets_td-hm_hrnas_8xb48-210e_coco-256x192
# trains with network slimming and shrinking but neither pruning nor
# reactivation. Its searched subnet is where the S+P baselines (search, then
# prune one-shot, with or without retraining) start from.
_base_ = ['./supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py']

custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in
    ('ProgressivePruningHook', 'IterativeReactivationHook')
]
