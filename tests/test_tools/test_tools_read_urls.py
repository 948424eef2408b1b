"""export_ticket.py and prune_oneshot.py read an http:// checkpoint through
the same download and safe loader as load_from, instead of turning the URL
into a missing local path (#21.13). Served on 127.0.0.1."""
import functools
import http.server
import json
import os
import os.path as osp
import runpy
import shutil
import subprocess
import sys
import threading

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tiny_configs import seg_cfg

import mmsupertickets  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def served_run(cityscapes_root, tmp_path_factory):
    """A 4-iteration search run; its checkpoint served over http."""
    root = tmp_path_factory.mktemp('url_run')
    cfg = seg_cfg(cityscapes_root, str(root / 'run'), max_iters=4,
                  hooks=[dict(type='SuperNetSearchHook', rho=1e-3, warmup=2,
                              min_macs=0, shrink_interval=2,
                              by_epoch=False)])
    Runner.from_cfg(Config(cfg)).train()
    cfg_file = str(root / 'cfg.py')
    Config(cfg).dump(cfg_file)
    www = root / 'www'
    www.mkdir()
    shutil.copy(root / 'run' / 'iter_4.pth', www / 'search.pth')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(www))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield dict(cfg_file=cfg_file,
               url=f'http://127.0.0.1:{server.server_address[1]}/search.pth')
    server.shutdown()
    server.server_close()


def run_in_process(tool, *args, monkeypatch, hub):
    """The tool's main in this process (imports already done: fast)."""
    monkeypatch.setattr(torch.hub, '_hub_dir', str(hub))
    monkeypatch.setattr(sys, 'argv', [tool, *map(str, args)])
    runpy.run_path(osp.join(REPO, 'tools', tool), run_name='__main__')


def test_export_reads_an_http_checkpoint(served_run, tmp_path, monkeypatch,
                                         capsys):
    out = tmp_path / 'ticket'
    run_in_process('export_ticket.py', served_run['cfg_file'],
                   served_run['url'], '--out', out, '--shape', 32, 64,
                   monkeypatch=monkeypatch, hub=tmp_path / 'hub')
    assert f'Wrote {out}' in capsys.readouterr().out
    with open(out / 'summary.json') as f:
        assert json.load(f)['subnet']['params'] > 0


def test_export_refuses_remote_storage_naming_it(served_run, tmp_path,
                                                 monkeypatch):
    with pytest.raises(SystemExit) as info:
        run_in_process('export_ticket.py', served_run['cfg_file'],
                       's3://bucket/search.pth', '--out',
                       tmp_path / 'ticket', monkeypatch=monkeypatch,
                       hub=tmp_path / 'hub')
    assert 's3://bucket/search.pth' in str(info.value.code)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_prune_oneshot_reads_an_http_checkpoint(served_run, tmp_path):
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'prune_oneshot.py'),
         served_run['cfg_file'], served_run['url'], '--scorers',
         'magnitude', '--ratios', '0.5', '--work-dir',
         str(tmp_path / 'sp')],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1',
                 TORCH_HOME=str(tmp_path / 'hub')))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / 'sp' / 'magnitude_0.5.json') as f:
        assert json.load(f)['sparsity'] == pytest.approx(0.5, abs=0.01)


def test_prune_oneshot_refuses_remote_storage_naming_it(
        served_run, tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as info:
        run_in_process('prune_oneshot.py', served_run['cfg_file'],
                       'petrel://bucket/search.pth', '--work-dir',
                       tmp_path / 'sp', monkeypatch=monkeypatch,
                       hub=tmp_path / 'hub')
    assert 'petrel://bucket/search.pth' in str(info.value.code)
    assert os.listdir(tmp_path) == []
