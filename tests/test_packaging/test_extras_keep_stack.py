"""No extra and no documented install step moves a user's torch, NumPy or
mmcv (issue #22.6).

The user's environment is simulated by a venv holding only the *metadata*
of the running stack's core (torch, torchvision, numpy, mmcv, mmengine, pip,
setuptools and everything they require): pip resolves against it exactly as
against a real install, while the extras are not installed yet, as in a
fresh OpenMMLab environment. Each case is a real `pip install --dry-run
--report` resolve against the package index (network, ~10 s each).
"""
import glob
import importlib.metadata as md
import json
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from wheel_builds import ROOT, fresh_venv, venv_site

pytestmark = pytest.mark.slow

STACK = ('torch', 'torchvision', 'numpy', 'mmcv')
CORE = STACK + ('mmengine', 'pip', 'setuptools', 'wheel')


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def core_closure():
    """The installed distributions CORE needs, transitively."""
    dists, todo = {}, list(CORE)
    while todo:
        name = canonical(todo.pop())
        if name in dists:
            continue
        try:
            dists[name] = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        for line in dists[name].requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(req.name)
    return dists


@pytest.fixture(scope='module')
def user_env(tmp_path_factory):
    """A venv with the core stack's metadata and nothing else."""
    python = fresh_venv(tmp_path_factory.mktemp('user') / 'venv',
                        see_stack=False)
    site = venv_site(python)
    for dist in core_closure().values():
        info = str(dist._path)
        shutil.copytree(info, osp.join(site, osp.basename(info)))
    return python


def resolve(user_env, tmp_path, *args):
    """What `pip install ARGS` would install into the user's venv."""
    report = tmp_path / 'report.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', '--python', user_env, 'install',
         '--disable-pip-version-check', '-q', '--dry-run', '--report',
         str(report), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (args, proc.stderr[-3000:])
    with open(report) as f:
        return {canonical(item['metadata']['name']):
                item['metadata']['version']
                for item in json.load(f)['install']}


def stack_constraints():
    """The shipped constraints file of the running stack (the one whose
    torch pin is the installed torch)."""
    torch_pin = f'torch=={md.version("torch").split("+")[0]}'
    for path in sorted(glob.glob(osp.join(ROOT, 'requirements',
                                          'constraints*.txt'))):
        with open(path) as f:
            if torch_pin in f.read().split():
                return path
    pytest.fail(f'no requirements/constraints*.txt pins {torch_pin}')


def assert_stack_kept(installs, what):
    moved = {name: installs[name] for name in STACK if name in installs}
    installed = {name: md.version(name) for name in moved}
    assert not moved, (f'{what} would install {moved} over {installed}')


def test_user_env_has_the_stack_and_no_extras(user_env):
    names = set(core_closure())
    assert set(STACK) <= names
    # The extras are what gets resolved: none of them is preinstalled.
    assert not names & {'onnx', 'onnxruntime', 'pandas', 'mmsegmentation',
                        'xtcocotools'}


@pytest.mark.parametrize('extra',
                         ['seg', 'cls', 'pose', 'deploy', 'tests', 'all'])
def test_extra_keeps_torch_numpy_mmcv(dist_dir, user_env, tmp_path, extra):
    wheel, = glob.glob(str(dist_dir / 'mmsupertickets-*.whl'))
    installs = resolve(user_env, tmp_path, f'{wheel}[{extra}]')
    assert 'mmsupertickets' in installs
    assert_stack_kept(installs, f'pip install "<wheel>[{extra}]"')


def test_mim_requirements_keep_torch_numpy_mmcv(user_env, tmp_path):
    # openmim goes in with --no-deps (nothing else); mim.txt is what it needs.
    installs = resolve(user_env, tmp_path, '-r',
                       osp.join(ROOT, 'requirements', 'mim.txt'))
    assert 'pandas' in installs
    assert_stack_kept(installs, 'pip install -r requirements/mim.txt')


def test_documented_install_with_stack_constraints(dist_dir, user_env,
                                                   tmp_path):
    """docs/en/get_started.md: `pip install -c <stack constraints>
    "<wheel>[all]" -r requirements/mim.txt` resolves and keeps the stack."""
    wheel, = glob.glob(str(dist_dir / 'mmsupertickets-*.whl'))
    installs = resolve(user_env, tmp_path, '-c', stack_constraints(),
                       f'{wheel}[all]', '-r',
                       osp.join(ROOT, 'requirements', 'mim.txt'))
    assert {'mmsegmentation', 'onnxruntime', 'pandas'} <= set(installs)
    assert_stack_kept(installs, 'the documented install')
