# SuperTickets on Cityscapes (You et al., ECCV 2022): the HR-NAS supernet
# trains once while network slimming searches its channels, progressive
# magnitude pruning draws the ticket and iterative reactivation lets the
# masks follow every architecture change.
#
# The supernet, optimizer and hooks are in _supertickets_hrnas_seg.py; the
# Cityscapes dataset, 512x1024 crop pipeline and IoUMetric are the stock
# mmseg file's.
_base_ = [
    './_supertickets_hrnas_seg.py',
    'mmseg::_base_/datasets/cityscapes.py',
]
custom_imports = dict(imports=['mmsupertickets'], allow_failed_imports=False)

crop_size = (512, 1024)
# Paper's batch: 8 GPUs x 4 images = 32 (the stock Cityscapes base file
# has 2 per GPU).
samples_per_gpu = 4
# An epoch is one pass over the data on each rank: 2975 training images /
# 32 = 93 iterations at 8x4 (186 at the stock 8x2). The hooks count
# epochs in those iterations (from dataset size, batch size and world
# size), so their intervals follow the batch size; the LR schedule and
# max_iters are written for 8x4.
iters_per_epoch = 93
max_epochs = 430  # the paper's schedule
max_iters = max_epochs * iters_per_epoch  # 39990

model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(channels=90, num_classes=19))  # HR-NAS last_channel 90
train_dataloader = dict(batch_size=samples_per_gpu)

# OneCycle (_supertickets_hrnas_seg.py) over the whole run.
param_scheduler = [dict(_base_.param_scheduler[0], total_steps=max_iters)]
# Validate and save every 10 epochs, as the authors (eval_interval 10).
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=10 * iters_per_epoch)
default_hooks = dict(checkpoint=dict(interval=10 * iters_per_epoch))

# The three hooks (_supertickets_hrnas.py) with ρ = 1.4e-4, a shrink every
# 10 epochs and a prune every 25.
custom_hooks = [
    dict(hook, **dict(
        SuperNetSearchHook=dict(
            rho=1.4e-4, shrink_interval=10, input_shape=crop_size),
        ProgressivePruningHook=dict(prune_interval=25)).get(hook.type, {}))
    for hook in _base_.supertickets_hooks
]
