"""Building the sdist and wheel from the working tree and installing them
into fresh venvs (tests/test_packaging)."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run(cmd, cwd, timeout=600, env=None):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, (cmd, proc.stdout[-3000:],
                                  proc.stderr[-3000:])
    return proc.stdout


def build_dists(src, out):
    """Copy the working tree to ``src`` and build its sdist and wheel into
    ``out`` (building in the checkout would turn its .mim symlinks into
    copies)."""
    files = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if osp.isfile(osp.join(ROOT, name)):
            os.makedirs(osp.dirname(osp.join(src, name)), exist_ok=True)
            shutil.copy2(osp.join(ROOT, name), osp.join(src, name))
    run([sys.executable, 'setup.py', '-q', 'sdist', '-d', str(out)], src)
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
         '--no-build-isolation', '-w', str(out), '.'], src)
    return out


def venv_site(python):
    return subprocess.run(
        [python, '-c', 'import sysconfig; print(sysconfig.get_paths()'
         '["purelib"])'], capture_output=True, text=True,
        check=True).stdout.strip()


def fresh_venv(path, see_stack=True):
    """A venv without pip. With ``see_stack`` it sees the stack under test
    (torch, mmcv, mm* packages, pip) through a path file placed after its
    own, empty site-packages, so nothing is downloaded."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(path)], check=True)
    python = str(path / 'bin' / 'python')
    if see_stack:
        with open(osp.join(venv_site(python), 'stack.pth'), 'w') as f:
            f.write(sysconfig.get_paths()['purelib'] + '\n')
    return python
