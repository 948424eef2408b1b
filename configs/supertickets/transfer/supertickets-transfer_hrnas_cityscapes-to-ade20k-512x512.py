# A Cityscapes SuperTicket fine-tuned on ADE20K (the paper's transfer):
# architecture, masks and trained weights of the whole network are kept and
# only the classifier (150 classes instead of 19) is new. The head keeps the
# ticket's architecture, so its last_channel is Cityscapes' 90.
_base_ = [
    '../supertickets_hrnas_8xb8-200e_ade20k-512x512.py', './_transfer_hooks.py'
]

# The final checkpoint of the Cityscapes run (override with --cfg-options
# custom_hooks.<i>.ticket=...).
ticket = ('work_dirs/supertickets_hrnas_8xb4-430e_cityscapes-512x1024/'
          'iter_39990.pth')
model = dict(decode_head=dict(channels=90))
custom_hooks = [
    hook for hook in _base_.custom_hooks if hook.type not in _base_.drawing_hooks
] + [
    dict(type='TicketTransferHook', ticket=ticket, modules=None,
         weights=True),
    dict(type='ProgressivePruningHook', prune_interval=None),
]

# Fine-tuning, not a new search: 50 ADE20K epochs (the reference
# fine-tunes seg-to-seg transfers for 30-50), with the OneCycle schedule
# and validation/checkpoints spread over them.
transfer_epochs = 50
max_iters = transfer_epochs * _base_.iters_per_epoch
param_scheduler = [dict(_base_.param_scheduler[0], total_steps=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=5 * _base_.iters_per_epoch)
default_hooks = dict(
    checkpoint=dict(interval=5 * _base_.iters_per_epoch))
