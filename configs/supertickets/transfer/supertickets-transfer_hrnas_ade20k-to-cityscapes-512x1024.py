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

# Fine-tuning, not a new search: 50 Cityscapes epochs (the reference
# fine-tunes seg-to-seg transfers for 30-50), with the OneCycle schedule
# and validation/checkpoints spread over them.
transfer_epochs = 50
max_iters = transfer_epochs * _base_.iters_per_epoch
param_scheduler = [dict(_base_.param_scheduler[0], total_steps=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=5 * _base_.iters_per_epoch)
default_hooks = dict(
    checkpoint=dict(interval=5 * _base_.iters_per_epoch))
