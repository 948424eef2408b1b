# supertickets_hrnas_4xb64-350e_in1k drawing a
# 98 % sparse ticket instead of 90 %: only the pruning hook's
# target changes. The +10 % steps reach it at the 10th prune event
# (instead of the 9th); later events re-prune at the target.
_base_ = ['./supertickets_hrnas_4xb64-350e_in1k.py']

target_sparsity = 0.98
custom_hooks = [
    dict(hook, target_sparsity=target_sparsity)
    if hook.type == 'ProgressivePruningHook' else hook
    for hook in _base_.custom_hooks
]
