# CPU demo of the ImageNet SuperTicket run: the paper-scale config with
# only its size, schedule and data changed (ten synthetic classes from
# tools/dataset_converters/generate_data.py imagenet). Run it through
# tools/run_demo.py --task cls.
_base_ = [
    '../supertickets_hrnas_4xb64-350e_in1k.py', './_supertickets_demo.py'
]

data_root = 'data/demo/imagenet'
samples_per_gpu = 32
num_classes = 10
# 1000 training images / 32 = 32 iterations per epoch.
max_epochs = 12

norm_cfg = dict(type='BN', momentum=0.1, eps=1e-3)
data_preprocessor = dict(num_classes=num_classes)
model = dict(
    # The narrowed search space (_supertickets_demo.py), with the head's
    # widths scaled down alike.
    backbone=dict(_base_.demo_supernet, norm_cfg=norm_cfg),
    neck=dict(
        in_channels=_base_.demo_widths,
        head_channels=(16, 32, 64, 128),
        out_channels=256,
        expand_ratio=2,
        norm_cfg=norm_cfg),
    head=dict(in_channels=256, num_classes=num_classes))

# The synthetic images are 64x64.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=64, edge='short'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=samples_per_gpu,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=samples_per_gpu,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# The paper's slow exponential decay hardly moves in 12 epochs: a cosine
# down to a tenth of the LR by epoch 8, then flat, so that the ticket
# recovers from the last shrink and prune events (see the Cityscapes demo).
param_scheduler = dict(
    _delete_=True,
    type='CosineAnnealingLR',
    T_max=8,
    end=8,
    eta_min_ratio=0.1,
    by_epoch=True,
    convert_to_iter_based=True)
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=2, max_keep_ckpts=2))

# Events scaled to the 12-epoch run: ρ ramps in over 2 epochs, a shrink
# every 2 epochs, a prune every 1.5 epochs (48 steps), reaching 0.9 at the
# 6th event (epoch 9); later events and the last step re-prune at the
# target. Search settings follow the short time scale as in the Cityscapes
# demo (larger ρ, a shrink removes at least about 1 % of the supernet's
# MACs). BN is re-estimated on 256 training images every 2 epochs.
custom_hooks = [
    dict(hook, **{
        'SuperNetSearchHook':
        dict(rho=6e-3, warmup=2, shrink_interval=2, min_macs=5e5,
             input_shape=(64, 64)),
        'ProgressivePruningHook':
        dict(prune_interval=1.5),
        'mmpretrain.PreciseBNHook':
        dict(num_samples=256, interval=2),
    }.get(hook.type, {})) for hook in _base_.demo_hooks
]
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
