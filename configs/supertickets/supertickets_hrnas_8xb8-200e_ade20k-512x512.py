# SuperTickets on ADE20K (You et al., ECCV 2022): search, progressive
# pruning and iterative reactivation in one training run of the HR-NAS
# supernet. The ADE20K variant has a wider head (last_channel 180) and 150
# classes; the architecture shrinks every 25 epochs and the weights are
# pruned every 15.
#
# Dataset, 512x512 crop pipeline, IoUMetric and runtime are the stock mmseg
# files.
_base_ = [
    'mmseg::_base_/models/fcn_hr18.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmsupertickets'], allow_failed_imports=False)

crop_size = (512, 512)
# Paper's batch: 8 GPUs x 8 images = 64 (the stock ADE20K base file has 4
# per GPU).
samples_per_gpu = 8
# An epoch is one pass over the data on each rank: 20210 training images /
# 64 = 316 iterations at 8x8 (632 at the stock 8x4). The hooks count epochs
# in those iterations (from dataset size, batch size and world size), so
# their intervals follow the batch size; the LR schedule and max_iters are
# written for 8x8.
iters_per_epoch = 316
max_epochs = 200  # the paper's schedule
max_iters = max_epochs * iters_per_epoch  # 63200

# BN as in HR-NAS (PyTorch momentum convention); plain BN as the authors.
norm_cfg = dict(type='BN', momentum=0.01, eps=1e-3)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # The stock HRNet-W18 base points at ImageNet weights; the supernet
    # trains from scratch with its own initialisation.
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='SuperTicketHRNet',
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
        channels=180,  # HR-NAS last_channel for ADE20K
        kernel_sizes=(3, 5, 7),
        expand_ratio=4,
        num_classes=150,
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
# Validate every 25 epochs, as the authors.
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=25 * iters_per_epoch)
# Checkpoints are written to a temporary file and renamed into place
# (atomic_local), so a crash mid-write never truncates one; keep >= 2,
# since the hook deletes the oldest before it writes the next.
default_hooks = dict(
    logger=dict(interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        by_epoch=False,
        interval=25 * iters_per_epoch,
        max_keep_ckpts=3,
        save_last=True,
        backend_args=dict(backend='atomic_local')))

# Intervals in epochs (by_epoch=True), converted by the hooks to
# iterations.
target_sparsity = 0.9
custom_hooks = [
    # ρ = 1.4e-4 ramped in over 25 epochs; shrink every 25 epochs.
    dict(
        type='SuperNetSearchHook',
        rho=1.4e-4,
        warmup=25,
        shrink_interval=25,
        threshold=1e-3,
        min_macs=1e6,
        input_shape=crop_size,
        by_epoch=True),
    # Global magnitude pruning every 15 epochs, +10 % per event.
    dict(
        type='ProgressivePruningHook',
        target_sparsity=target_sparsity,
        prune_interval=15,
        schedule='step',
        step=0.1,
        scorer='magnitude',
        scope='global',
        by_epoch=True),
    dict(type='IterativeReactivationHook'),
]
