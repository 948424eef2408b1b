# CPU demo of the ADE20K SuperTicket run: the paper-scale config with only
# its size, schedule and data changed (synthetic ADE20K from
# tools/dataset_converters/generate_data.py ade20k; twelve of the 150
# classes occur). Run it through tools/run_demo.py --task ade20k.
_base_ = [
    '../supertickets_hrnas_8xb8-200e_ade20k-512x512.py',
    './_supertickets_demo.py'
]

data_root = 'data/demo/ade/ADEChallengeData2016'
# The synthetic frames are 128x128: train on crops of rescaled frames.
img_scale = (128, 128)
crop_size = (128, 128)
samples_per_gpu = 8
# 200 training frames / 8 = 25 iterations per epoch.
iters_per_epoch = 25
max_epochs = 10
max_iters = max_epochs * iters_per_epoch  # 250

# Fast BN statistics for a run of a few hundred steps (see the Cityscapes
# demo).
norm_cfg = dict(type='BN', momentum=0.1, eps=1e-3)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # The narrowed search space (_supertickets_demo.py); the head keeps the
    # paper's ADE20K proportion (twice the Cityscapes last_channel).
    backbone=dict(_base_.demo_supernet, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=_base_.demo_widths,
        channels=64,
        expand_ratio=2,
        norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(1.0, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
# DefaultSampler instead of the stock InfiniteSampler: PreciseBNHook (below)
# iterates the training loader once more, and InfiniteSampler hands every
# iterator the same index generator, which that extra iterator closes when
# it is dropped: the training loop then stops with StopIteration.
train_dataloader = dict(
    batch_size=samples_per_gpu,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# OneCycle squeezed into the short run with a floor (see the Cityscapes
# demo): up to lr_max over 15 %, a cosine down to 1e-3 at 60 %, then flat.
warmup_iters = int(0.15 * max_iters)
floor_iters = int(0.6 * max_iters)
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        eta_min={{_base_.lr_max}},
        T_max=warmup_iters,
        begin=0,
        end=warmup_iters,
        by_epoch=False),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-3,
        T_max=floor_iters - warmup_iters,
        begin=warmup_iters,
        end=floor_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=2 * iters_per_epoch)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=2 * iters_per_epoch, max_keep_ckpts=2))

# The paper's ratio of intervals (prune every 15, shrink every 25 epochs)
# scaled to the 10-epoch run: a prune every 1.2 epochs (30 steps), reaching
# 0.9 at the 6th event (step 180), and a shrink every 2 epochs; ρ ramps in
# over 2 epochs. Search settings follow the short time scale as in the
# Cityscapes demo (larger ρ, a shrink removes at least 1 % of the
# supernet's MACs). BN is re-estimated on 96 training images every 2
# epochs.
custom_hooks = [
    dict(hook, **{
        'SuperNetSearchHook':
        dict(rho=5e-3, warmup=2, shrink_interval=2, min_macs=2e6,
             input_shape=crop_size),
        'ProgressivePruningHook':
        dict(prune_interval=1.2),
        'mmpretrain.PreciseBNHook':
        dict(num_samples=96, interval=2 * iters_per_epoch),
    }.get(hook.type, {})) for hook in _base_.demo_hooks
]
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
