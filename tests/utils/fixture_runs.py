"""What several test modules set up alike: a tiny trained ticket run and a
folder served over loopback http."""
import contextlib
import copy
import functools
import http.server
import threading

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

from mmsupertickets.utils.checkpoint_io import load_checkpoint_file

# A shrink and two prune events in 4 iterations: the checkpoint carries an
# arch and masks.
TICKET_HOOKS = [
    dict(type='SuperNetSearchHook', rho=1e-3, warmup=2, min_macs=0,
         shrink_interval=2, by_epoch=False),
    dict(type='ProgressivePruningHook', target_sparsity=0.5,
         prune_interval=2, step=0.25, by_epoch=False),
]


def tiny_ticket_run(data_root, root, with_test=False):
    """Train 4 iterations under ``root/work``; the config (a dict and a
    file) and the last checkpoint (path and content)."""
    cfg = seg_cfg(data_root, str(root / 'work'), max_iters=4,
                  hooks=copy.deepcopy(TICKET_HOOKS))
    if with_test:
        cfg.update(test_dataloader=cfg['val_dataloader'],
                   test_evaluator=cfg['val_evaluator'],
                   test_cfg=dict(type='TestLoop'))
    Runner.from_cfg(Config(copy.deepcopy(cfg))).train()
    cfg_file = str(root / 'train_cfg.py')
    Config(cfg).dump(cfg_file)
    ckpt = str(root / 'work' / 'iter_4.pth')
    return dict(cfg=cfg, cfg_file=cfg_file, ckpt=ckpt,
                checkpoint=load_checkpoint_file(ckpt))


@contextlib.contextmanager
def served_folder(tmp_path, monkeypatch):
    """Files under tmp_path/www on a loopback port, torch's hub cache in
    tmp_path/hub; yields ``(www, base URL)``."""
    www = tmp_path / 'www'
    www.mkdir()
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(www))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield www, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
