"""tools/train.py in a subprocess, alone or on gloo ranks via torchrun."""
import os
import os.path as osp
import socket
import subprocess
import sys

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def start_training(cfg, work_dir, nproc=1, resume=False, crash=None):
    """Start training ``cfg`` (a dict, dumped beside ``work_dir``).

    Args:
        nproc (int): 1 runs tools/train.py itself, more runs it on that many
            gloo ranks through torchrun.
        resume (bool): Pass ``--resume``.
        crash (str | None): ``SUPERTICKETS_TEST_CRASH`` for ``CrashHook``.

    Returns:
        subprocess.Popen: With stdout and stderr merged into ``stdout``.
    """
    work_dir = str(work_dir)
    cfg_path = work_dir.rstrip('/') + '_cfg.py'
    Config(cfg).dump(cfg_path)
    train = osp.join(ROOT, 'tools', 'train.py')
    cmd = [sys.executable, train]
    if nproc > 1:
        cmd = [sys.executable, '-m', 'torch.distributed.run',
               f'--nproc_per_node={nproc}', f'--master_port={free_port()}',
               train, '--launcher', 'pytorch']
    cmd += [cfg_path, '--work-dir', work_dir] + (['--resume']
                                                 if resume else [])
    # The checkout under test, whatever mmsupertickets is installed.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [osp.join(ROOT, 'tests', 'utils'), ROOT]), OMP_NUM_THREADS='1')
    env.pop('SUPERTICKETS_TEST_CRASH', None)
    if crash:
        env['SUPERTICKETS_TEST_CRASH'] = crash
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def train(cfg, work_dir, **kwargs):
    """Run :func:`start_training` to its end: (return code, output)."""
    proc = start_training(cfg, work_dir, **kwargs)
    out = proc.communicate(timeout=600)[0]
    return proc.returncode, out
