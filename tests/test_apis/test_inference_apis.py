"""Exported tickets through the stock inference APIs of each codebase.

For each task a demo config trains a few iterations (with a shrink and
prunes), the ticket is exported, and the public API of mmseg, mmpose or
mmpretrain loads ``config.py`` + ``ticket.pth`` and predicts. The
predictions must equal those of the training checkpoint loaded the way
``tools/test.py`` loads it (the Runner with the SuperTickets hooks). A
training checkpoint given to the same API must be refused with the export
route named, never half-loaded.
"""
import glob
import os.path as osp

import pytest
import torch
from demo_runs import demo_runner
from mmengine.config import Config
from mmengine.runner import Runner

import mmsupertickets  # noqa: F401
from mmsupertickets.apis.export import export_onnx, export_ticket
from mmsupertickets.structures.state_checks import TicketStateError
from mmsupertickets.utils.checkpoint_io import safe_checkpoint_loading

DEMOS = {
    'seg': 'configs/supertickets/demo/'
    'supertickets_hrnas_1xb4-demo_cityscapes-128x256.py',
    'pose': 'configs/supertickets/demo/'
    'supertickets_td-hm_hrnas_1xb16-demo_coco-128x96.py',
    'cls': 'configs/supertickets/demo/'
    'supertickets_hrnas_1xb32-demo_in1k-64px.py',
}
VAL_IMAGES = {
    'seg': 'cityscapes/leftImg8bit/val/*/*.png',
    'pose': 'coco/val2017/*.jpg',
    'cls': 'imagenet/val/**/*.JPEG',
}


def _ticket(task, tmp_path):
    """Train the demo, export its ticket, and reload the training
    checkpoint as tools/test.py does."""
    runner, cfg = demo_runner(DEMOS[task], tmp_path)
    runner.train()
    with open(osp.join(cfg.work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    out = str(tmp_path / 'ticket')
    export_ticket(cfg, ckpt, out)

    test_cfg = cfg.copy()
    test_cfg.work_dir = str(tmp_path / 'test')
    test_cfg.load_from = ckpt
    tester = Runner.from_cfg(test_cfg)
    tester.call_hook('before_run')
    tester.load_or_resume()  # the hooks rebuild the subnet and its masks
    images = sorted(glob.glob(
        str(tmp_path / 'data' / VAL_IMAGES[task]), recursive=True))
    assert images, VAL_IMAGES[task]
    return dict(cfg=cfg, ckpt=ckpt, out=out, model=tester.model.eval(),
                image=images[0])


def _refused_or_exact(init, *args):
    """A training checkpoint through a stock loader: refused, naming the
    export route, and never a half-loaded model."""
    # Stock torch>=2.6 loading stops at the pickle; the plugin's opt-in
    # loader reads it, and then the model refuses the weights.
    with pytest.raises(Exception):
        init(*args)
    with safe_checkpoint_loading():
        with pytest.raises(TicketStateError, match='export_ticket'):
            init(*args)


@pytest.mark.slow
def test_mmseg_init_model_and_inference_model(tmp_path):
    from mmseg.apis import inference_model, init_model
    t = _ticket('seg', tmp_path)
    model = init_model(osp.join(t['out'], 'config.py'),
                       osp.join(t['out'], 'ticket.pth'), device='cpu')
    assert model.dataset_meta['classes'][0] == 'road'
    got = inference_model(model, t['image'])
    reference = t['model']
    reference.cfg = model.cfg  # the same test pipeline
    want = inference_model(reference, t['image'])
    assert got.seg_logits.data.shape[0] == 19
    torch.testing.assert_close(got.seg_logits.data, want.seg_logits.data,
                               rtol=1e-4, atol=1e-5)
    assert torch.equal(got.pred_sem_seg.data, want.pred_sem_seg.data)
    _refused_or_exact(init_model, t['cfg'], t['ckpt'], 'cpu')

    # mmdeploy's route: the model init_model builds, through the
    # TorchScript-based torch.onnx.export at its default opset 11.
    result = export_onnx(model, (64, 128), str(tmp_path / 'seg.onnx'),
                         opset=11)
    assert result['opset'] == 11
    assert result['max_rel_diff'] < 1e-4


@pytest.mark.slow
def test_mmpose_init_model_and_inference_topdown(tmp_path):
    from mmpose.apis import inference_topdown, init_model
    t = _ticket('pose', tmp_path)
    model = init_model(osp.join(t['out'], 'config.py'),
                       osp.join(t['out'], 'ticket.pth'), device='cpu')
    assert model.dataset_meta['num_keypoints'] == 17
    got = inference_topdown(model, t['image'])[0].pred_instances
    reference = t['model']
    reference.cfg = model.cfg
    reference.dataset_meta = model.dataset_meta
    want = inference_topdown(reference, t['image'])[0].pred_instances
    assert got.keypoints.shape == (1, 17, 2)
    torch.testing.assert_close(
        torch.as_tensor(got.keypoints), torch.as_tensor(want.keypoints),
        rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        torch.as_tensor(got.keypoint_scores),
        torch.as_tensor(want.keypoint_scores), rtol=1e-4, atol=1e-5)
    _refused_or_exact(init_model, t['cfg'], t['ckpt'], 'cpu')


@pytest.mark.slow
def test_mmpretrain_get_model_and_inferencer(tmp_path):
    from mmpretrain.apis import ImageClassificationInferencer, get_model
    t = _ticket('cls', tmp_path)
    config = osp.join(t['out'], 'config.py')
    ticket = osp.join(t['out'], 'ticket.pth')
    model = get_model(config, pretrained=ticket, device='cpu')
    inferencer = ImageClassificationInferencer(config, pretrained=ticket,
                                               device='cpu')
    got = inferencer(t['image'])[0]
    reference = t['model']
    reference._config = Config.fromfile(config)
    want = ImageClassificationInferencer(reference, device='cpu')(
        t['image'])[0]
    assert got['pred_scores'].shape == want['pred_scores'].shape
    assert got['pred_label'] == want['pred_label']
    torch.testing.assert_close(
        torch.as_tensor(got['pred_scores']),
        torch.as_tensor(want['pred_scores']), rtol=1e-4, atol=1e-6)
    # get_model's model is the inferencer's.
    for a, b in zip(model.state_dict().values(),
                    inferencer.model.state_dict().values()):
        assert torch.equal(a, b)
    _refused_or_exact(lambda c, p: get_model(c, pretrained=p, device='cpu'),
                      t['cfg'], t['ckpt'])
