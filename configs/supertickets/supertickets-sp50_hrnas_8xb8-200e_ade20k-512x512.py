# supertickets_hrnas_8xb8-200e_ade20k-512x512 drawing a
# 50 % sparse ticket instead of 90 %: only the pruning hook's
# target changes. The +10 % steps reach it at the 5th prune event
# (instead of the 9th); later events re-prune at the target.
_base_ = ['./supertickets_hrnas_8xb8-200e_ade20k-512x512.py']

target_sparsity = 0.5
custom_hooks = [
    dict(hook, target_sparsity=target_sparsity)
    if hook.type == 'ProgressivePruningHook' else hook
    for hook in _base_.custom_hooks
]
