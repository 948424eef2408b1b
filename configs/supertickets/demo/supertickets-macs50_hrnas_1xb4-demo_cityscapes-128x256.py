# The CPU demo of ./supertickets_hrnas_1xb4-demo_cityscapes-128x256.py with a MACs budget instead of a
# hand-tuned rho: the search steers rho so that the searched subnet ends at
# (or just under) half of the supernet's MACs at the profiling input.
_base_ = ['./supertickets_hrnas_1xb4-demo_cityscapes-128x256.py']

custom_hooks = [
    dict(hook, target_macs=0.5) if hook.type == 'SuperNetSearchHook' else hook
    for hook in _base_.custom_hooks
]
