# CPU demo of the COCO keypoint SuperTicket run: the paper-scale config
# with only its size, schedule and data changed (synthetic stick figures
# from tools/dataset_converters/generate_data.py coco). Run it through
# tools/run_demo.py --task pose.
_base_ = [
    '../supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py',
    './_supertickets_demo.py'
]

data_root = 'data/demo/coco/'
samples_per_gpu = 16
# About 400 training figures / 16 = 25 iterations per epoch.
max_epochs = 16

# Half the paper's input (and heatmap) size; the Gaussian shrinks with it.
codec = dict(
    type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=1)

# The narrowed search space (_supertickets_demo.py); the keypoint variant's
# BN (momentum 0.1) and N(0, 0.001) conv init are kept.
model = dict(
    backbone=dict(_base_.demo_supernet),
    neck=dict(in_channels=_base_.demo_widths, out_channels=32,
              expand_ratio=2),
    head=dict(in_channels=32, decoder=codec))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]
train_dataloader = dict(
    batch_size=samples_per_gpu,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
# The detection file path is relative to the working directory, not to
# data_root, so it moves with the data root explicitly.
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        bbox_file=data_root + 'person_detection_results/'
        'COCO_val2017_detections_AP_H_56_person.json',
        pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/person_keypoints_val2017.json')
test_evaluator = val_evaluator

# The base Adam (LR 1e-3), but the searchable γ (the depthwise BN weights
# of every kernel path) learn 20x faster: Adam moves a penalised γ by about
# its LR per step, and at 1e-3 none travels from 1 to the dead threshold
# 0.05 in 400 steps; at 2e-2 it can in about 50. No decay on γ, as in base.
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'depthwise.bn.weight': dict(lr_mult=20.0, decay_mult=0.0)
        }))

# The paper's step schedule scaled to 16 epochs (x0.1 at 13 and 15).
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        milestones=[13, 15],
        gamma=0.1,
        by_epoch=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=2, max_keep_ckpts=2, save_best=None))

# Events scaled to the 16-epoch run: ρ ramps in over 4 epochs, a shrink
# every 2 epochs, a prune every 2 epochs, reaching 0.9 at the 6th event
# (epoch 12); later events and the last step re-prune at the target.
# Search: with Adam, ρ does not set how fast γ falls (the LR does) but
# which channels the task gradient defends. The heatmap loss gives these γ
# task gradients of ~1e-7 before the heatmaps are learnt and ~1e-6 after,
# so ρ = 2e-7 (a fifth of the paper's keypoint ρ), ramped in over 4 epochs
# so that it does not outweigh the early gradients: the shrinks at epochs
# 4-12 remove about 3/4 of the MACs and the ticket still learns. A larger ρ
# shrinks too far for a 90 % sparse ticket to recover (4e-7: 22 MMACs,
# AP 0.21; 1e-6: 12 MMACs, AP 0.01; 4e-5: nearly every channel, AP 0).
# A shrink must remove at least 3 MMACs (about 2 % of the supernet), so
# the small shrinks after the LR drop, each followed by reactivation and
# re-pruning, are skipped. The stock config's SyncBuffersHook stays; BN is
# re-estimated on 128 training samples every 2 epochs.
custom_hooks = [dict(type='SyncBuffersHook')] + [
    dict(hook, **{
        'SuperNetSearchHook':
        dict(rho=2e-7, warmup=4, shrink_interval=2, min_macs=3e6,
             input_shape=(128, 96)),
        'ProgressivePruningHook':
        dict(prune_interval=2),
        'mmpretrain.PreciseBNHook':
        dict(num_samples=128, interval=2),
    }.get(hook.type, {})) for hook in _base_.demo_hooks
]
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
