# SuperTickets on Cityscapes (You et al., ECCV 2022): the HR-NAS supernet
# trains once while network slimming searches its channels, progressive
# magnitude pruning draws the ticket and iterative reactivation lets the
# masks follow every architecture change.
#
# Everything but the model, optimizer, schedule and hooks comes from the
# stock mmseg files: the Cityscapes dataset, 512x1024 crop pipeline and
# IoUMetric, the runtime and the hook defaults.
_base_ = [
    'mmseg::_base_/models/fcn_hr18.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmsupertickets'], allow_failed_imports=False)

crop_size = (512, 1024)
# Paper's batch: 8 GPUs x 4 images = 32 (the stock Cityscapes base file
# has 2 per GPU).
samples_per_gpu = 4
# An epoch is one pass over the data on each rank: 2975 training images /
# 32 = 93 iterations at 8x4 (186 at the stock 8x2). The hooks below count
# epochs in those iterations (from dataset size, batch size and world
# size), so their intervals follow the batch size; the LR schedule and
# max_iters are written for 8x4.
iters_per_epoch = 93
max_epochs = 430  # the paper's schedule
max_iters = max_epochs * iters_per_epoch  # 39990

# BN as in HR-NAS (PyTorch momentum convention); plain BN, not SyncBN, as
# the authors (allreduce_bn=False). The slimming scores are these BN γ.
norm_cfg = dict(type='BN', momentum=0.01, eps=1e-3)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # The stock HRNet-W18 base points at ImageNet weights; the supernet
    # trains from scratch with its own initialisation.
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='SuperTicketHRNet',
        # Paper's search space (DESIGN §2); outputs 18/36/72/144 channels at
        # strides 4/8/16/32 like HRNet-W18.
        stem_channels=24,
        stage_channels=((24, ), (18, 36), (18, 36, 72), (18, 36, 72, 144),
                        (18, 36, 72, 144)),
        stage_blocks=((1, ), (2, 2), (2, 2, 3), (2, 2, 3, 4), (2, 2, 3, 4)),
        kernel_sizes=(3, 5, 7),
        expand_ratio=4,
        norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True,
        type='HRNASSegHead',
        in_channels=(18, 36, 72, 144),
        in_index=(0, 1, 2, 3),
        input_transform='resize_concat',
        channels=90,  # HR-NAS last_channel for Cityscapes
        kernel_sizes=(3, 5, 7),
        expand_ratio=4,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

train_dataloader = dict(batch_size=samples_per_gpu)

# The authors' "AdamW" runs with its decoupled decay at 0 and adds
# 1e-5/2 * |w|^2 of every conv/linear weight to the loss, which is Adam's
# coupled weight_decay restricted to conv/linear weights (norm and bias
# multipliers 0). BN γ must not decay: the slimming penalty alone drives it.
# OneCycle (below) sets the LR at every step.
lr_max = 0.04
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='Adam',
        lr=lr_max / 25,
        betas=(0.9, 0.999),
        eps=1e-3,
        weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=None)
# OneCycle over the whole run, stepped per iteration, as HR-NAS: from
# lr_max / 25 up to lr_max along a cosine over the first 30 %, then down to
# lr_max / 25 / 1e4. torch's OneCycleLR also cycles Adam's beta1; this
# schedules the LR only.
param_scheduler = [
    dict(
        type='OneCycleLR',
        eta_max=lr_max,
        total_steps=max_iters,
        pct_start=0.3,
        div_factor=25,
        final_div_factor=1e4,
        by_epoch=False)
]
# Validate every 10 epochs, as the authors (eval_interval 10).
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=10 * iters_per_epoch)
# Checkpoints are written to a temporary file and renamed into place
# (atomic_local), so a crash mid-write never truncates one; keep >= 2,
# since the hook deletes the oldest before it writes the next.
default_hooks = dict(
    logger=dict(interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        by_epoch=False,
        interval=10 * iters_per_epoch,
        max_keep_ckpts=3,
        save_last=True,
        backend_args=dict(backend='atomic_local')))

# Intervals in epochs (by_epoch=True): the hooks convert them to
# iterations, also inside this iteration-based loop.
target_sparsity = 0.9
custom_hooks = [
    # Network slimming: ρ = 1.4e-4 ramped in over 25 epochs, shrink every
    # 10 epochs (|γ| <= 1e-3 dead, at least 1 MMACs removed).
    dict(
        type='SuperNetSearchHook',
        rho=1.4e-4,
        warmup=25,
        shrink_interval=10,
        threshold=1e-3,
        min_macs=1e6,
        input_shape=crop_size,
        by_epoch=True),
    # Global magnitude pruning every 25 epochs, +10 % per event up to the
    # target (0.1, 0.2, ... then the target at every later event).
    dict(
        type='ProgressivePruningHook',
        target_sparsity=target_sparsity,
        prune_interval=25,
        schedule='step',
        step=0.1,
        scorer='magnitude',
        scope='global',
        by_epoch=True),
    # Iterative reactivation: layers rebuilt by a shrink start dense again.
    dict(type='IterativeReactivationHook'),
]
