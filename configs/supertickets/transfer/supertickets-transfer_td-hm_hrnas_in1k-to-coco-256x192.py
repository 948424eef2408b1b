# An ImageNet SuperTicket's backbone (architecture, masks and weights) under
# the searched and pruned fusion neck of a COCO SuperTicket (grafted, as the
# reference does, so the transferred MACs are comparable) and a new 1x1
# keypoint head.
_base_ = [
    '../supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py',
    './_transfer_hooks.py'
]

ticket = 'work_dirs/supertickets_hrnas_4xb64-350e_in1k/epoch_350.pth'
# The final checkpoint of the COCO run (override with --cfg-options
# custom_hooks.<i>.graft.neck=...).
coco_ticket = ('work_dirs/supertickets_td-hm_hrnas_8xb48-210e_coco-256x192/'
               'epoch_210.pth')
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=('backbone', ),
         weights=True, graft=dict(neck=coco_ticket)),
    dict(type='ProgressivePruningHook', prune_interval=None),
]
