"""Tiny but complete configs for runner-level tests.

They use the stock dataset classes on generated data in the real on-disk
formats, and a narrow SuperTicketHRNet so a CPU runs an iteration in well
under a second.
"""
import copy

TINY_BACKBONE = dict(
    type='SuperTicketHRNet',
    stem_channels=8,
    stage_channels=((8, ), (8, 16), (8, 16, 24), (8, 16, 24, 32),
                    (8, 16, 24, 32)),
    stage_blocks=((1, ), (1, 1), (1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)),
    expand_ratio=2)


def seg_cfg(data_root, work_dir, max_iters=12, hooks=(), **train):
    """mmseg, iteration-based: Cityscapes format, HRNASSegHead."""
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='Resize', scale=(64, 32), keep_ratio=False),
        dict(type='PackSegInputs')
    ]
    loader = lambda split, shuffle: dict(  # noqa: E731
        batch_size=2, num_workers=0,
        sampler=dict(type='InfiniteSampler' if shuffle else
                     'DefaultSampler', shuffle=shuffle),
        dataset=dict(type='CityscapesDataset', data_root=data_root,
                     data_prefix=dict(img_path=f'leftImg8bit/{split}',
                                      seg_map_path=f'gtFine/{split}'),
                     pipeline=pipeline))
    cfg = dict(
        custom_imports=dict(imports=['mmsupertickets'],
                            allow_failed_imports=False),
        default_scope='mmseg',
        work_dir=work_dir,
        model=dict(
            type='EncoderDecoder',
            data_preprocessor=dict(
                type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                pad_val=0, seg_pad_val=255, size=(32, 64)),
            backbone=copy.deepcopy(TINY_BACKBONE),
            decode_head=dict(
                type='HRNASSegHead', in_channels=[8, 16, 24, 32],
                in_index=[0, 1, 2, 3], channels=16, num_classes=19,
                input_transform='resize_concat', expand_ratio=2,
                loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
            test_cfg=dict(mode='whole')),
        train_dataloader=loader('train', True),
        val_dataloader=loader('val', False),
        val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=10**6, **train),
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(
            type='AdamW', lr=1e-3, weight_decay=1e-4)),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=50),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=4),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=list(hooks),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
        randomness=dict(seed=0))
    return cfg


def cls_cfg(data_root, work_dir, max_epochs=4, hooks=(), **train):
    """mmpretrain, epoch-based: ImageNet format, no random transforms (so
    a resumed run sees the same batches)."""
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=32), dict(type='PackInputs')]
    loader = lambda split, shuffle: dict(  # noqa: E731
        batch_size=8, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(type='ImageNet', data_root=data_root,
                     ann_file=f'meta/{split}.txt', data_prefix=split,
                     pipeline=pipeline))
    return dict(
        custom_imports=dict(imports=['mmsupertickets'],
                            allow_failed_imports=False),
        default_scope='mmpretrain',
        work_dir=work_dir,
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(num_classes=10, mean=[123.675, 116.28,
                                                         103.53],
                                   std=[58.395, 57.12, 57.375], to_rgb=True),
            backbone=copy.deepcopy(TINY_BACKBONE),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=32,
                      loss=dict(type='CrossEntropyLoss'))),
        train_dataloader=loader('train', True),
        val_dataloader=loader('val', False),
        val_evaluator=dict(type='Accuracy', topk=(1, )),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs,
                       val_interval=10**6, **train),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3,
                                          weight_decay=1e-4)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=50),
            checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=list(hooks),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
        randomness=dict(seed=0, deterministic=False))


def ticket_run_cfg(data_root, max_iters, target=0.5, extra_hooks=(),
                   **pruning):
    """:func:`seg_cfg` with the three hooks drawing a ticket: channels are
    killed and shrunk at step 4, weights pruned every 3 steps by 0.2 up to
    ``target``; the run's ticket is dumped to ``<work_dir>/rank<r>.pth``
    (``DumpTicketHook``). For runs in a subprocess (``work_dir`` is given on
    the command line)."""
    hooks = [
        dict(type='KillChannelsHook', at_iters=(4, )),
        dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
             shrink_interval=4, by_epoch=False),
        dict(type='ProgressivePruningHook', target_sparsity=target,
             prune_interval=3, step=0.2, by_epoch=False, **pruning),
        dict(type='IterativeReactivationHook'),
        dict(type='DumpTicketHook'),
        *extra_hooks,
    ]
    cfg = seg_cfg(data_root, None, max_iters=max_iters, hooks=hooks)
    cfg['custom_imports']['imports'].append('probe_hooks')
    return cfg
