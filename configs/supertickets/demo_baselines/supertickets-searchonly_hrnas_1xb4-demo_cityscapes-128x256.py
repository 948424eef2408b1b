# Search only, at demo size: the segmentation demo without pruning and
# reactivation. Its searched subnet is where the demo's S+P baselines
# (tools/prune_oneshot.py) start from.
_base_ = ['../demo/supertickets_hrnas_1xb4-demo_cityscapes-128x256.py']

custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in
    ('ProgressivePruningHook', 'IterativeReactivationHook')
]
