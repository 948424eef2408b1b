# SuperTickets for top-down COCO keypoints (You et al., ECCV 2022): search,
# progressive pruning and iterative reactivation in one training run of the
# HR-NAS supernet, with the HR-NAS keypoint head (fusion neck + a 1x1 stock
# HeatmapHead).
#
# Everything but the model, optimizer and hooks comes from the stock mmpose
# HRNet-W32 256x192 config: COCO dataset, pipelines, MSRA heatmap codec,
# CocoMetric, the 210-epoch step schedule and runtime.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_hrnet-w32_8xb64-210e_coco-256x192.py',
    './_supertickets_hrnas.py',
]
custom_imports = dict(imports=['mmsupertickets'], allow_failed_imports=False)

# Paper's batch: 8 GPUs x 48 = 384 (the stock config has 8 x 64).
samples_per_gpu = 48
input_size = (192, 256)  # (w, h), the codec's convention

# The keypoint variant of HR-NAS uses PyTorch's default BN (momentum 0.1,
# eps 1e-5) and draws every conv from N(0, 0.001).
norm_cfg = dict(type='BN', momentum=0.1, eps=1e-5)
conv_init_std = 0.001
model = dict(
    backbone=dict(
        _base_.supernet,
        _delete_=True,
        norm_cfg=norm_cfg,
        conv_init_std=conv_init_std),
    # Resize the four branches to 1/4, concatenate (270 channels) and one
    # searchable IR block to last_channel 90 ...
    neck=dict(
        type='HRNASFusionNeck',
        in_channels=(18, 36, 72, 144),
        out_channels=90,
        kernel_sizes=(3, 5, 7),
        expand_ratio=4,
        norm_cfg=norm_cfg,
        conv_init_std=conv_init_std),
    # ... then a 1x1 conv to the 17 heatmaps: the stock head without its
    # deconvolutions and convs. Its 1x1 classifier is not pruned (the
    # pruning hook excludes head.final_layer by default).
    head=dict(
        in_channels=90,
        out_channels=17,
        deconv_out_channels=None,
        conv_out_channels=None,
        final_layer=dict(kernel_size=1)))

train_dataloader = dict(batch_size=samples_per_gpu)

# The authors' "adam" (their AdamW class with decoupled decay 0) adds
# 1e-8/2 |w|^2 of conv/linear weights to the loss: Adam's coupled
# weight_decay on conv/linear weights only; BN γ does not decay. LR 1e-3,
# eps 1e-8, steps x0.1 at epochs 170 and 200 (the stock schedule's), no
# warm-up (the stock config's 500-step linear warm-up is dropped).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=1e-8),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=210,
        milestones=[170, 200],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=8 * samples_per_gpu)
# The stock checkpoint settings (every 10 epochs, the best by AP), written
# to a temporary file and renamed into place so that a crash mid-write
# never truncates one.
default_hooks = dict(
    checkpoint=dict(backend_args=dict(backend='atomic_local')))

# The stock config's SyncBuffersHook (BN statistics agree across GPUs
# before validation), then the three hooks (_supertickets_hrnas.py) with
# ρ = 1e-6 (keypoint heatmap losses are small), a shrink every 10 epochs
# and a prune every 15.
custom_hooks = [dict(type='SyncBuffersHook')] + [
    dict(hook, **dict(
        SuperNetSearchHook=dict(
            rho=1e-6,
            shrink_interval=10,
            input_shape=(input_size[1], input_size[0])),
        ProgressivePruningHook=dict(prune_interval=15)).get(hook.type, {}))
    for hook in _base_.supertickets_hooks
]
