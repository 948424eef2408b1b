# CPU demo of the COCO keypoint SuperTicket run: the paper-scale config
# with only its size, schedule and data changed (synthetic stick figures
# from tools/dataset_converters/generate_data.py coco). Run it through
# tools/run_demo.py --task pose.
_base_ = ['../supertickets_td-hm_hrnas_8xb48-210e_coco-256x192.py']

data_root = 'data/demo/coco/'
samples_per_gpu = 16
# About 400 training figures / 16 = 25 iterations per epoch.
max_epochs = 16

# Half the paper's input (and heatmap) size; the Gaussian shrinks with it.
codec = dict(
    type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=1)

# Narrowed search space (see the Cityscapes demo); the keypoint variant's
# BN (momentum 0.1) and N(0, 0.001) conv init are kept.
widths = (8, 16, 32, 64)
model = dict(
    backbone=dict(
        stem_channels=16,
        stage_channels=((16, ), widths[:2], widths[:3], widths),
        stage_blocks=((1, ), (1, 1), (1, 1, 1), (1, 1, 1, 1)),
        expand_ratio=2),
    neck=dict(in_channels=widths, out_channels=32, expand_ratio=2),
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

# Events scaled to the 16-epoch run: ρ ramps in over 2 epochs, a shrink
# every 2 epochs, a prune every 2 epochs from 0.15 in steps of 0.15,
# reaching 0.9 at the 6th event (epoch 12); later events and the last step
# re-prune at the target. Search settings follow the short time scale as in
# the Cityscapes demo: ρ is larger than the paper's (in the same proportion
# to the paper's keypoint ρ as the Cityscapes demo's to its own), a channel
# is dead below |γ| = 0.05 and a shrink removes at least about 1 % of the
# supernet's MACs.
# Within these 400 steps no channel reaches the threshold, so this demo
# shows pruning and reactivation on the full supernet while the search
# only scores channels: at the paper's Adam LR (1e-3) a penalised γ moves
# by about 1e-3 per step and cannot travel from 1 to 0.05. A faster search
# collapses instead: at LR 5e-3 with ρ 5e-5 or 5e-4 the first shrink left
# 101 of 3600 channels and AP 0 (the heatmap loss gives γ tiny task
# gradients before the network has learnt anything).
# A keypoint demo that also shrinks needs a longer run, or ρ switched on
# only once the heatmaps are learnt (HR-NAS's epoch_free, which
# SuperNetSearchHook does not offer).
target_sparsity = 0.9
custom_hooks = [
    dict(type='SyncBuffersHook'),
    dict(
        type='SuperNetSearchHook',
        rho=4e-5,
        warmup=2,
        shrink_interval=2,
        threshold=0.05,
        min_macs=1.5e6,
        input_shape=(128, 96),
        by_epoch=True),
    dict(
        type='ProgressivePruningHook',
        target_sparsity=target_sparsity,
        prune_interval=2,
        schedule='step',
        step=0.15,
        by_epoch=True,
        # The stock classifiers as by default, and the stem (see the
        # Cityscapes demo: global ranking would nearly empty a narrow stem).
        exclude=(r'(^|\.)conv_seg\.', r'^head\.final_layer\.',
                 r'^head\.fc\.', r'^auxiliary_head\.',
                 r'^backbone\.stem\.')),
    dict(type='IterativeReactivationHook'),
    # BN statistics re-estimated on 128 training samples before each
    # validation and checkpoint (see the Cityscapes demo).
    dict(
        type='mmpretrain.PreciseBNHook',
        num_samples=128,
        interval=2,
        priority='BELOW_NORMAL'),
]
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
