"""Installing the built sdist and wheel into fresh venvs, then what a wheel
user runs: `mim run` (generate_data, export_ticket, get_flops), `mim train`,
`mim test`, `mim search` and configs inheriting `mmsupertickets::...`.

The fresh venvs see the stack under test (torch, mmcv, mm* packages) through
a path file, so nothing is downloaded; mmsupertickets itself comes only
from the built archive.
"""
import glob
import json
import os
import os.path as osp

import pytest
from wheel_builds import fresh_venv, run

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


@pytest.fixture(scope='module')
def wheel_venv(dist_dir, tmp_path_factory):
    """A fresh venv with the wheel installed; PATH for `mim`'s own calls."""
    wheel, = glob.glob(str(dist_dir / 'mmsupertickets-*.whl'))
    venv = tmp_path_factory.mktemp('wheel') / 'venv'
    python = fresh_venv(venv)
    run([python, '-m', 'pip', 'install', '-q', '--no-deps', wheel], venv)
    env = dict(os.environ, PATH=f'{venv / "bin"}:' + os.environ['PATH'])
    return python, env


def write_child_config(folder):
    """A user's config inheriting the package's demo config by name."""
    path = folder / 'child.py'
    path.write_text(
        f"_base_ = 'mmsupertickets::supertickets/demo/{SEG_DEMO}'\n"
        "train_cfg = dict(max_iters=2, val_interval=2)\n"
        "default_hooks = dict(checkpoint=dict(interval=2))\n"
        "train_dataloader = dict(batch_size=2)\n"
        "val_dataloader = dict(batch_size=1)\n")
    return path


@pytest.mark.slow  # ~15 s unloaded, a minute on a busy machine
def test_wheel_configs_inherit_by_package_name(wheel_venv, tmp_path):
    """`_base_ = 'mmsupertickets::...'` resolves to the installed wheel's
    .mim/configs (#22.8)."""
    python, env = wheel_venv
    child = write_child_config(tmp_path)
    out = run([python, '-c', f"""
import mmsupertickets
from mmengine.config import Config
cfg = Config.fromfile({str(child)!r})
print(cfg.train_cfg.max_iters, cfg.model.backbone.type)
print([line for line in cfg.text.splitlines() if line.endswith({SEG_DEMO!r})])
"""], tmp_path, env=env)
    built, files = out.strip().splitlines()[-2:]
    assert built.split() == ['2', 'SuperTicketHRNet']
    pkg = installed_files(python, tmp_path.parent)
    assert osp.join(pkg, '.mim', 'configs', 'supertickets', 'demo',
                    SEG_DEMO) in files


def test_mim_search_lists_the_configs(wheel_venv, tmp_path):
    python, env = wheel_venv
    out = run([python, '-m', 'mim', 'search', 'mmsupertickets',
               '--valid-config'], tmp_path, env=env)
    from modelindex import load
    from wheel_builds import ROOT
    names = [m.name for m in load(osp.join(ROOT, 'model-index.yml')).models]
    assert names and all(f"'{name}'" in out for name in names)
    out = run([python, '-m', 'mim', 'search', 'mmsupertickets', '--config',
               SEG_DEMO[:-3]], tmp_path, env=env)
    assert 'cityscapes' in out and 'supertickethrnet' in out


@pytest.mark.slow
def test_wheel_user_commands(wheel_venv, tmp_path):
    """docs/en/get_started.md's column for a wheel user, run from the
    installed wheel in a folder outside the source tree: generate data,
    train a config that inherits the package's, export, count, test
    (#22.7)."""
    python, env = wheel_venv
    mim = [python, '-m', 'mim']
    run(mim + ['run', 'mmsupertickets', 'generate_data', 'cityscapes',
               '--out', 'data/demo', '--num-train', '4', '--num-val', '2',
               '--size', '32', '64'], tmp_path, env=env)
    assert (tmp_path / 'data' / 'demo' / 'cityscapes' /
            '.generated.json').is_file()
    child = write_child_config(tmp_path)
    run(mim + ['train', 'mmsupertickets', str(child), '--work-dir', 'work'],
        tmp_path, timeout=900, env=env)
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    assert ckpt.is_file()
    from mmsupertickets.engine.ticket_meta import read_arch, read_masks
    from mmsupertickets.utils.checkpoint_io import load_checkpoint_file
    saved = load_checkpoint_file(str(ckpt))
    assert read_arch(saved) and read_masks(saved)

    run(mim + ['run', 'mmsupertickets', 'export_ticket',
               str(tmp_path / 'work' / 'child.py'), str(ckpt),
               '--out', 'ticket'], tmp_path, env=env)
    ticket = tmp_path / 'ticket'
    assert (ticket / 'config.py').is_file()
    out = run(mim + ['run', 'mmsupertickets', 'get_flops', str(ticket),
                     '--json'], tmp_path, env=env)
    counts = json.loads(out[out.index('{'):out.rindex('}') + 1])
    summary = json.loads((ticket / 'summary.json').read_text())
    assert counts['whole model']['macs'] == summary['subnet']['macs']
    out = run(mim + ['test', 'mmsupertickets', str(ticket / 'config.py'),
                     '--checkpoint', str(ticket / 'ticket.pth'),
                     '--work-dir', 'test'], tmp_path, timeout=900, env=env)
    assert 'mIoU' in out
