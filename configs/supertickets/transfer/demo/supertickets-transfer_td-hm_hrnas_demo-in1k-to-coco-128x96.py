# Demo-size transfer: the backbone of the classification demo's ticket
# (`make demo TASK=cls`, work_dirs/demo-cls) under a new keypoint head.
_base_ = [
    '../../demo/supertickets_td-hm_hrnas_1xb16-demo_coco-128x96.py',
    '../_transfer_hooks.py'
]

ticket = 'work_dirs/demo-cls/train/epoch_12.pth'
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=('backbone', ),
         weights=True),
    dict(type='ProgressivePruningHook', prune_interval=None),
]
