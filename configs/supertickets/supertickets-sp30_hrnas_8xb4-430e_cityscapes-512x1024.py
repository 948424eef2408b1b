# supertickets_hrnas_8xb4-430e_cityscapes-512x1024 drawing a
# 30 % sparse ticket instead of 90 %: only the pruning hook's
# target changes. The +10 % steps reach it at the 3rd prune event
# (instead of the 9th); later events re-prune at the target.
_base_ = ['./supertickets_hrnas_8xb4-430e_cityscapes-512x1024.py']

target_sparsity = 0.3
custom_hooks = [
    dict(hook, target_sparsity=target_sparsity)
    if hook.type == 'ProgressivePruningHook' else hook
    for hook in _base_.custom_hooks
]
