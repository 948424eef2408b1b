"""mmsupertickets: SuperTickets for OpenMMLab 2.0 (search + prune in one run).

As mmseg and mmpretrain do, the configs, tools and model index ship inside
the package under ``mmsupertickets/.mim`` (symlinks for an editable install,
copies for sdists and wheels), so ``mim train mmsupertickets CONFIG``,
``mim run mmsupertickets TOOL``, ``mim search mmsupertickets`` and
``_base_ = 'mmsupertickets::supertickets/...'`` find them.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def read_requirements(name):
    with open(osp.join(ROOT, 'requirements', name)) as f:
        return [ln.split('#')[0].strip() for ln in f
                if ln.split('#')[0].strip() and not ln.startswith('-')]


def version():
    scope = {}
    with open(osp.join(ROOT, 'mmsupertickets', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension():
    """Put configs/, tools/ and model-index.yml into mmsupertickets/.mim."""
    if 'develop' in sys.argv or any('editable' in a for a in sys.argv):
        mode = 'symlink'
    elif any(a in sys.argv for a in ('sdist', 'bdist_wheel', 'build',
                                     'egg_info', 'install')):
        mode = 'copy'
    else:
        return
    mim_dir = osp.join(ROOT, 'mmsupertickets', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(mim_dir, name)
        if not osp.exists(src):
            continue  # building from an sdist: .mim already holds them
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isfile(src):
            shutil.copyfile(src, dst)
        else:
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))


if __name__ == '__main__':
    add_mim_extension()
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        long_description = f.read()
    setup(
        name='mmsupertickets',
        version=version(),
        description='SuperTickets for OpenMMLab: search an efficient subnet '
        'and prune it into a sparse ticket in one training run',
        long_description=long_description,
        long_description_content_type='text/markdown',
        keywords='network pruning, neural architecture search, lottery '
        'ticket, OpenMMLab',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs',
                                        'tools', 'tools.*')),
        include_package_data=True,
        python_requires='>=3.8',
        install_requires=read_requirements('runtime.txt'),
        extras_require=dict(
            seg=read_requirements('seg.txt'),
            cls=read_requirements('cls.txt'),
            pose=read_requirements('pose.txt'),
            deploy=read_requirements('deploy.txt'),
            tests=read_requirements('tests.txt'),
            all=(read_requirements('seg.txt') + read_requirements('cls.txt')
                 + read_requirements('pose.txt')
                 + read_requirements('deploy.txt'))),
        license='Apache License 2.0',
        classifiers=[
            'License :: OSI Approved :: Apache Software License',
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        zip_safe=False)
