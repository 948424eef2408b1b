from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as f:
        return [ln.strip() for ln in f
                if ln.strip() and not ln.startswith(('#', '-'))]


def version():
    scope = {}
    with open('mmsupertickets/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmsupertickets',
    version=version(),
    description='SuperTickets for OpenMMLab: search an efficient subnet and '
    'prune it into a sparse ticket in one training run',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.9',
    # mmcv (full, with ops) and mmpose are installed by tools/setup_env.sh;
    # see README "Installation" for doing it by hand.
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require=dict(tests=read_requirements('requirements/tests.txt')),
    license='Apache License 2.0',
)
