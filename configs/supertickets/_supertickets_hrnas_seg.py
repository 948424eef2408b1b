# What the Cityscapes and ADE20K SuperTickets configs share: the HR-NAS
# supernet (_supertickets_hrnas.py) with its segmentation head, the
# optimizer and the runtime. Each dataset's config adds the stock dataset
# file, the head's width and classes, the schedule length and the hooks.
_base_ = [
    'mmseg::_base_/models/fcn_hr18.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    './_supertickets_hrnas.py',
]
custom_imports = dict(imports=['mmsupertickets'], allow_failed_imports=False)

# BN as in HR-NAS (PyTorch momentum convention); plain BN, not SyncBN, as
# the authors (allreduce_bn=False). The slimming scores are these BN γ.
norm_cfg = dict(type='BN', momentum=0.01, eps=1e-3)
model = dict(
    # The stock HRNet-W18 base points at ImageNet weights; the supernet
    # trains from scratch with its own initialisation.
    pretrained=None,
    backbone=dict(_base_.supernet, _delete_=True, norm_cfg=norm_cfg),
    # The dataset's config sets `channels` (HR-NAS last_channel) and
    # `num_classes`.
    decode_head=dict(
        _delete_=True,
        type='HRNASSegHead',
        in_channels=(18, 36, 72, 144),
        in_index=(0, 1, 2, 3),
        input_transform='resize_concat',
        kernel_sizes=(3, 5, 7),
        expand_ratio=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

# The authors' "AdamW" runs with its decoupled decay at 0 and adds
# 1e-5/2 * |w|^2 of every conv/linear weight to the loss, which is Adam's
# coupled weight_decay restricted to conv/linear weights (norm and bias
# multipliers 0). BN γ must not decay: the slimming penalty alone drives it.
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
# schedules the LR only. The dataset's config sets total_steps (max_iters).
param_scheduler = [
    dict(
        type='OneCycleLR',
        eta_max=lr_max,
        pct_start=0.3,
        div_factor=25,
        final_div_factor=1e4,
        by_epoch=False)
]
# Checkpoints are written to a temporary file and renamed into place
# (atomic_local), so a crash mid-write never truncates one; keep >= 2,
# since the hook deletes the oldest before it writes the next.
default_hooks = dict(
    logger=dict(interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        by_epoch=False,
        max_keep_ckpts=3,
        save_last=True,
        backend_args=dict(backend='atomic_local')))

