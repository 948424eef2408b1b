# An ImageNet SuperTicket's backbone (architecture, masks and weights) under
# a new keypoint neck and head on COCO. The neck and head keep their own
# searchable supernet architecture, unpruned.
_base_ = [
    '../supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py',
    './_transfer_hooks.py'
]

ticket = 'work_dirs/supertickets_hrnas_4xb64-350e_in1k/epoch_350.pth'
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=('backbone', ),
         weights=True),
    dict(type='ProgressivePruningHook', prune_interval=None),
]
