# CPU demo of the Cityscapes SuperTicket run: the paper-scale config with
# only its size, schedule and data changed, so that two CPU cores draw a
# 90 % sparse ticket from a small supernet on the synthetic Cityscapes set
# (tools/dataset_converters/generate_data.py cityscapes) in minutes.
# Run it through tools/run_demo.py --task seg, which also evaluates the
# ticket and writes a report.
_base_ = [
    '../supertickets_hrnas_8xb4-430e_cityscapes-512x1024.py',
    './_supertickets_demo.py'
]

data_root = 'data/demo/cityscapes/'
# The synthetic frames are 128x256; train on random 128x128 crops of frames
# enlarged 1-2x (never smaller than a crop, as in the stock pipeline, so
# that all crops of a batch have the same size), test on whole frames.
img_scale = (256, 128)
crop_size = (128, 128)
samples_per_gpu = 4
# 200 training frames / 4 = 50 iterations per epoch.
iters_per_epoch = 50
max_epochs = 8
max_iters = max_epochs * iters_per_epoch  # 400

# BN running statistics average over ~10 steps instead of ~100: the paper's
# momentum 0.01 is too slow for a run of a few hundred steps, validation
# would see statistics lagging far behind the weights.
norm_cfg = dict(type='BN', momentum=0.1, eps=1e-3)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # The narrowed search space (_supertickets_demo.py).
    backbone=dict(_base_.demo_supernet, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=_base_.demo_widths,
        channels=32,
        expand_ratio=2,
        norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(1.0, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# Worker processes would only compete with the model for two cores.
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

# Same optimizer and OneCycle shape squeezed into the short run, with a
# floor: the LR rises to lr_max over the first 15 %, falls along a cosine
# to 1e-3 at 60 % and stays there, so that the ticket recovers from the
# last shrink and prune events before it is evaluated.
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
train_cfg = dict(max_iters=max_iters, val_interval=iters_per_epoch)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=iters_per_epoch, max_keep_ckpts=2))

# Events scaled to the 8-epoch run (intervals may be fractions of an
# epoch): ρ ramps in over 1 epoch, a shrink every epoch, a prune every 0.9
# epoch (45 steps), reaching 0.9 at the 6th event (step 270); the events at
# steps 315 and 360 and the last step re-prune at the target. ρ is larger
# than the paper's (the run is short), and a shrink must remove at least 2
# MMACs (about 1 % of this supernet) so that every shrink, which
# reactivates the layers it rebuilds, is worth the disturbance. BN is
# re-estimated on 100 training images every epoch.
custom_hooks = [
    dict(hook, **{
        'SuperNetSearchHook':
        dict(rho=5e-3, warmup=1, shrink_interval=1, min_macs=2e6,
             input_shape=crop_size),
        'ProgressivePruningHook':
        dict(prune_interval=0.9),
        'mmpretrain.PreciseBNHook':
        dict(num_samples=100, interval=iters_per_epoch),
    }.get(hook.type, {})) for hook in _base_.demo_hooks
]
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
