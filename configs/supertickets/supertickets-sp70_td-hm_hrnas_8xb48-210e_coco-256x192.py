# supertickets_td-hm_hrnas_8xb48-210e_coco-256x192 drawing a
# 70 % sparse ticket instead of 90 %: only the pruning hook's
# target changes. The +10 % steps reach it at the 7th prune event
# (instead of the 9th); later events re-prune at the target.
_base_ = ['./supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py']

target_sparsity = 0.7
custom_hooks = [
    dict(hook, target_sparsity=target_sparsity)
    if hook.type == 'ProgressivePruningHook' else hook
    for hook in _base_.custom_hooks
]
