# The classic lottery-ticket test of the same transfer: the Cityscapes
# ticket's architecture and masks on a fresh initialisation.
_base_ = ['./supertickets-transfer_hrnas_cityscapes-to-ade20k-512x512.py']

custom_hooks = [
    dict(hook, weights=False) if hook.type == 'TicketTransferHook' else hook
    for hook in _base_.custom_hooks
]
