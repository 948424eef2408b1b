# SuperTickets on ImageNet-1k (You et al., ECCV 2022): search, progressive
# pruning and iterative reactivation in one training run of the HR-NAS
# supernet with its classification head (HR-NAS merge-and-pool neck + a
# stock LinearClsHead).
#
# Dataset, bicubic 224 pipelines, Accuracy and runtime are the stock
# mmpretrain files.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_bicubic.py',
    'mmpretrain::_base_/default_runtime.py',
    './_supertickets_hrnas.py',
]
custom_imports = dict(imports=['mmsupertickets'], allow_failed_imports=False)

# Paper's batch: 4 GPUs x 64 = 256.
samples_per_gpu = 64
num_gpus = 4
# 1,281,167 images / 256 = 5005 iterations per epoch.
iters_per_epoch = 5005
max_epochs = 350  # the paper's schedule

norm_cfg = dict(type='BN', momentum=0.01, eps=1e-3)
model = dict(
    type='ImageClassifier',
    backbone=dict(_base_.supernet, norm_cfg=norm_cfg),
    # IR blocks per branch to 36/72/144/320 channels, stride-2 IR blocks
    # merging from high to low resolution, 1x1 conv to 1600, global average
    # pooling and dropout 0.2.
    neck=dict(
        type='HRNASClsNeck',
        in_channels=(18, 36, 72, 144),
        head_channels=(36, 72, 144, 320),
        out_channels=1600,
        dropout_ratio=0.2,
        kernel_sizes=(3, 5, 7),
        expand_ratio=4,
        norm_cfg=norm_cfg),
    # The final classifier is not pruned (the hook excludes head.fc).
    head=dict(
        type='LinearClsHead',
        in_channels=1600,
        num_classes=1000,
        # HR-NAS: cross-entropy against (1 - 0.1) one-hot + 0.1 / classes.
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))

train_dataloader = dict(batch_size=samples_per_gpu)
val_dataloader = dict(batch_size=samples_per_gpu)
test_dataloader = val_dataloader

# TF-style RMSprop as HR-NAS: its epsilon 1e-3 sits inside the square
# root, which is torch's eps = sqrt(1e-3) = 0.0316 outside it. The weight
# decay 1e-5 is an L2 term on conv/linear weights in the authors' loss:
# torch's coupled weight_decay with norm and bias multipliers 0 (BN γ must
# not decay, the slimming penalty alone drives it).
optim_wrapper = dict(
    optimizer=dict(
        type='RMSprop',
        lr=0.016,
        alpha=0.9,
        momentum=0.9,
        eps=0.0316,
        weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
# LR x0.97 every 2.4 epochs (staircase), counted in iterations.
param_scheduler = dict(
    type='StepLR',
    by_epoch=True,
    step_size=2.4,
    gamma=0.97,
    convert_to_iter_based=True)
# Validate every 10 epochs, as the authors.
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
# Checkpoints are written to a temporary file and renamed into place
# (atomic_local), so a crash mid-write never truncates one; keep >= 2,
# since the hook deletes the oldest before it writes the next.
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        interval=10,
        max_keep_ckpts=3,
        backend_args=dict(backend='atomic_local')))
auto_scale_lr = dict(base_batch_size=num_gpus * samples_per_gpu)

# The three hooks (_supertickets_hrnas.py) with ρ = 1.8e-4, a shrink every
# 10 epochs and a prune every 25.
custom_hooks = [
    dict(hook, **dict(
        SuperNetSearchHook=dict(
            rho=1.8e-4, shrink_interval=10, input_shape=(224, 224)),
        ProgressivePruningHook=dict(prune_interval=25)).get(hook.type, {}))
    for hook in _base_.supertickets_hooks
]
