# Demo-size transfer: the ticket of `make demo` (Cityscapes, work_dirs/demo)
# fine-tuned on the generated ADE20K data with its masks fixed.
_base_ = [
    '../../demo/supertickets_hrnas_1xb8-demo_ade20k-128x128.py',
    '../_transfer_hooks.py'
]

ticket = 'work_dirs/demo/train/iter_400.pth'
model = dict(decode_head=dict(channels=32))  # the Cityscapes demo's head
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=None,
         weights=True),
    dict(type='ProgressivePruningHook', prune_interval=None),
]
