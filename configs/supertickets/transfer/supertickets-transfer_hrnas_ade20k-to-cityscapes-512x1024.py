# An ADE20K SuperTicket fine-tuned on Cityscapes: whole network kept, only
# the classifier (19 classes) is new; the head keeps ADE20K's last_channel.
_base_ = [
    '../supertickets_hrnas_8xb4-430e_cityscapes-512x1024.py',
    './_transfer_hooks.py'
]

ticket = 'work_dirs/supertickets_hrnas_8xb8-200e_ade20k-512x512/iter_63200.pth'
model = dict(decode_head=dict(channels=180))
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=None,
         weights=True),
    dict(type='ProgressivePruningHook', prune_interval=None),
]
