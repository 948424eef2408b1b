"""Write docs/en/api_reference.md from the docstrings of the hooks, the
backbone, the necks and the head.

    python docs/gen_api_reference.py [--check]

``--check`` exits 1 if the page differs from what the docstrings give.
"""
import argparse
import inspect
import os.path as osp
import re
import sys

PAGE = osp.join(osp.dirname(osp.abspath(__file__)), 'en', 'api_reference.md')

# (section title, module whose __all__ lists the classes)
GROUPS = (
    ('Hooks', 'mmsupertickets.engine.hooks'),
    ('Backbone', 'mmsupertickets.models.backbones'),
    ('Necks', 'mmsupertickets.models.necks'),
    ('Head', 'mmsupertickets.models.heads'),
)
ARG = re.compile(r'^    (\*{0,2}\w+)(?: \(([^)]*)\))?: ?(.*)$')
SECTION = re.compile(r'^(\w[\w ]*):$')


def _role(match) -> str:
    # A role may wrap across docstring lines: drop the whitespace.
    return '`' + re.sub(r'\s', '', match.group(1)).split('.')[-1] + '`'


def plain(text: str) -> str:
    """Sphinx roles as code spans: :class:`~a.b.C` -> `C`."""
    text = re.sub(r':\w+:`~?([\w.\s]+?)`', _role, text)
    return text.replace('``', '`')


def split_sections(doc: str):
    """(text before the first section, {section: lines})."""
    head, sections, current = [], {}, None
    for line in doc.splitlines():
        match = SECTION.match(line)
        if match and match.group(1) in ('Args', 'Example', 'Examples',
                                        'Note', 'Notes', 'Returns',
                                        'Raises', 'Attributes'):
            current = sections.setdefault(match.group(1), [])
        elif current is None:
            head.append(line)
        else:
            current.append(line)
    return '\n'.join(head).strip(), sections


def parse_args(lines):
    """{name: (type, description)} of a Google-style Args section."""
    args, name = {}, None
    for line in lines:
        match = ARG.match(line)
        if match:
            name = match.group(1).lstrip('*')
            args[name] = [match.group(2) or '', match.group(3).strip()]
        elif name and line.strip():
            args[name][1] += ' ' + line.strip()
    return {k: (t, d) for k, (t, d) in args.items()}


def example(lines) -> str:
    code = [re.sub(r'^\s*(>>>|\.\.\.) ?', '', ln) for ln in lines
            if ln.strip().startswith(('>>>', '...'))]
    return '```python\n' + '\n'.join(code) + '\n```\n' if code else ''


def render_class(cls) -> str:
    doc = inspect.getdoc(cls) or ''
    head, sections = split_sections(doc)
    documented = parse_args(sections.get('Args', []))
    out = [f'### {cls.__name__}\n',
           f'`{cls.__module__}.{cls.__name__}`, '
           f'`dict(type=\'{cls.__name__}\', ...)`\n',
           plain(head) + '\n']
    params = [p for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != 'self' and p.kind not in (p.VAR_POSITIONAL,
                                                     p.VAR_KEYWORD)]
    if params:
        out.append('| argument | default | description |\n|---|---|---|')
        for p in params:
            default = '(required)' if p.default is p.empty else \
                f'`{p.default!r}`'
            kind, text = documented.get(p.name, ('', 'not documented'))
            kind = f'({plain(kind)}) ' if kind else ''
            cell = (kind + plain(text)).replace('|', '\\|')
            out.append(f'| `{p.name}` | {default} | {cell} |')
        out.append('')
    for name in ('Note', 'Notes'):
        if name in sections:
            out.append(plain(inspect.cleandoc('\n'.join(sections[name])))
                       + '\n')
    for name in ('Example', 'Examples'):
        if name in sections:
            out.append(example(sections[name]))
    return '\n'.join(out)


def render() -> str:
    import importlib

    import mmsupertickets  # noqa: F401  (registers everything)
    parts = [
        '# Argument reference\n',
        'Generated from the docstrings by `python docs/gen_api_reference.py`'
        ' (do not edit by hand). Every class is registered in mmengine\'s '
        'root registries, so `type=\'<name>\'` builds it under the '
        '`mmseg`, `mmpose` and `mmpretrain` default scopes once '
        '`custom_imports=dict(imports=[\'mmsupertickets\'])` is in the '
        'config.\n'
    ]
    for title, module_name in GROUPS:
        module = importlib.import_module(module_name)
        names = getattr(module, '__all__', [])
        if not names:
            continue
        parts.append(f'## {title}\n')
        parts.extend(render_class(getattr(module, name)) for name in names)
    return '\n'.join(parts).rstrip() + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help='only compare with the page on disk')
    args = parser.parse_args()
    text = render()
    if args.check:
        with open(PAGE) as f:
            same = f.read() == text
        print('api_reference.md is ' + ('current' if same else 'stale: '
              'run python docs/gen_api_reference.py'))
        sys.exit(0 if same else 1)
    with open(PAGE, 'w') as f:
        f.write(text)


if __name__ == '__main__':
    main()
