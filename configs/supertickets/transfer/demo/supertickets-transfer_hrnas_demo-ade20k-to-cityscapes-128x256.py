# Demo-size transfer back: the ADE20K demo's ticket (`make demo
# TASK=ade20k`, work_dirs/demo-ade20k) fine-tuned on the generated
# Cityscapes data with its masks fixed; only the classifier is new.
_base_ = [
    '../../demo/supertickets_hrnas_1xb4-demo_cityscapes-128x256.py',
    '../_transfer_hooks.py'
]

ticket = 'work_dirs/demo-ade20k/train/iter_250.pth'
model = dict(decode_head=dict(channels=64))  # the ADE20K demo's head
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=None,
         weights=True),
    dict(type='ProgressivePruningHook', prune_interval=None),
]
