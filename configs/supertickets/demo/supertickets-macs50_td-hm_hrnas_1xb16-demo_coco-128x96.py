# The CPU demo of ./supertickets_td-hm_hrnas_1xb16-demo_coco-128x96.py with a MACs budget instead of a
# hand-tuned rho: the search steers rho so that the searched subnet ends at
# (or just under) half of the supernet's MACs at the profiling input.
_base_ = ['./supertickets_td-hm_hrnas_1xb16-demo_coco-128x96.py']

custom_hooks = [
    dict(hook, target_macs=0.5) if hook.type == 'SuperNetSearchHook' else hook
    for hook in _base_.custom_hooks
]
