"""Installing the built sdist and wheel into fresh venvs, then `mim train`,
`mim run ... export_ticket` and `mim test`.

The fresh venvs see the stack under test (torch, mmcv, mm* packages) through
a path file, so nothing is downloaded; mmsupertickets itself comes only
from the built archive.
"""
import glob
import os
import os.path as osp

import pytest
from wheel_builds import fresh_venv, run

from mmsupertickets.testing.cityscapes import generate_cityscapes

SEG_DEMO = 'supertickets_hrnas_1xb4-demo_cityscapes-128x256.py'


def installed_files(python, tmp_path):
    out = run([python, '-c', 'import mmsupertickets, os; print('
               'os.path.dirname(mmsupertickets.__file__))'], tmp_path)
    pkg = out.strip().splitlines()[-1]
    assert pkg.startswith(str(tmp_path)), pkg  # not the editable checkout
    return pkg


@pytest.mark.parametrize('kind', ['tar.gz', 'whl'])
def test_archive_installs_with_configs_and_tools(dist_dir, tmp_path, kind):
    archive, = glob.glob(str(dist_dir / f'mmsupertickets-*.{kind}'))
    python = fresh_venv(tmp_path / 'venv')
    run([python, '-m', 'pip', 'install', '-q', '--no-deps',
         '--no-build-isolation', archive], tmp_path)
    pkg = installed_files(python, tmp_path)
    mim = osp.join(pkg, '.mim')
    for name in ('tools/train.py', 'tools/test.py', 'tools/export_ticket.py',
                 f'configs/supertickets/demo/{SEG_DEMO}'):
        assert osp.isfile(osp.join(mim, name)), name
    assert not osp.exists(osp.join(pkg, '..', 'tests'))


def test_mim_trains_a_demo_config_from_the_wheel(dist_dir, tmp_path):
    wheel, = glob.glob(str(dist_dir / 'mmsupertickets-*.whl'))
    python = fresh_venv(tmp_path / 'venv')
    run([python, '-m', 'pip', 'install', '-q', '--no-deps', wheel], tmp_path)
    generate_cityscapes(str(tmp_path / 'data' / 'demo' / 'cityscapes'),
                        num_train=4, num_val=2, image_size=(32, 64), seed=0)
    env = dict(os.environ, PATH=f'{tmp_path / "venv" / "bin"}:'
               + os.environ['PATH'])
    run([python, '-m', 'mim', 'train', 'mmsupertickets',
         SEG_DEMO, '--work-dir', 'work', '--cfg-options',
         'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
         'default_hooks.checkpoint.interval=2',
         'train_dataloader.batch_size=2', 'val_dataloader.batch_size=1'],
        tmp_path, timeout=900, env=env)
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    assert ckpt.is_file()
    from mmsupertickets.engine.ticket_meta import read_arch, read_masks
    from mmsupertickets.utils.checkpoint_io import load_checkpoint_file
    saved = load_checkpoint_file(str(ckpt))
    assert read_arch(saved) and read_masks(saved)

    # The export and the test tool from the wheel, the mim way.
    dumped = tmp_path / 'work' / SEG_DEMO
    run([python, '-m', 'mim', 'run', 'mmsupertickets', 'export_ticket',
         str(dumped), str(ckpt), '--out', 'ticket'], tmp_path, env=env)
    ticket = tmp_path / 'ticket'
    assert (ticket / 'config.py').is_file()
    out = run([python, '-m', 'mim', 'test', 'mmsupertickets',
               str(ticket / 'config.py'), '--checkpoint',
               str(ticket / 'ticket.pth'), '--work-dir', 'test'],
              tmp_path, timeout=900, env=env)
    assert 'mIoU' in out
