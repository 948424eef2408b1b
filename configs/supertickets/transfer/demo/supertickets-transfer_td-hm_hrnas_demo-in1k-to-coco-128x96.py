# Demo-size transfer: the backbone of the classification demo's ticket
# (`make demo TASK=cls`, work_dirs/demo-cls) under the fusion neck of the
# keypoint demo's ticket (`make demo TASK=pose`, work_dirs/demo-pose) and a
# new keypoint head.
_base_ = [
    '../../demo/supertickets_td-hm_hrnas_1xb16-demo_coco-128x96.py',
    '../_transfer_hooks.py'
]

ticket = 'work_dirs/demo-cls/train/epoch_12.pth'
coco_ticket = 'work_dirs/demo-pose/train/epoch_16.pth'
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=('backbone', ),
         weights=True, graft=dict(neck=coco_ticket)),
    dict(type='ProgressivePruningHook', prune_interval=None),
]
