"""The drop-in matrix's bookkeeping (:mod:`mmsupertickets.testing.dropin`):
which cells there are, running them with a results file that a rerun
resumes from, and the table of results."""
import glob
import itertools
import json
import os
import os.path as osp
import re
import tempfile
from typing import Dict, List, Optional, Sequence

from .dropin_cell import run_config, run_in_process
from .dropin_config import config_root
from .dropin_data import generate_data

CODEBASES = ('mmseg', 'mmpose', 'mmpretrain')
# Folder of each codebase's configs that the matrix covers.
CONFIG_DIRS = dict(mmseg='', mmpose='body_2d_keypoint', mmpretrain='')
# Per-config time limit of a run in its own process, seconds.
TIMEOUT = 1200

__all__ = ['list_configs', 'cells', 'load_results', 'run_matrix',
           'summarize', 'format_table', 'CODEBASES', 'CONFIG_DIRS',
           'TIMEOUT']


def list_configs(codebase: str) -> List[str]:
    """The stock configs the matrix covers, relative to
    :func:`config_root`, sorted.

    Example:
        >>> list_configs('mmpretrain')[:1]  # doctest: +SKIP
        ['arcface/resnet50-arcface_8xb32_inshop.py']
    """
    root = config_root(codebase)
    base = osp.join(root, CONFIG_DIRS[codebase])
    found = glob.glob(osp.join(base, '**', '*.py'), recursive=True)
    return sorted(
        osp.relpath(p, root) for p in found
        if '_base_' not in osp.relpath(p, root).split(os.sep))


def cells(filter_regex: Optional[str] = None,
          codebases: Sequence[str] = CODEBASES) -> List[tuple]:
    """(codebase, config, variant) of every matrix cell; variant ``b`` only
    where the stock backbone is HRNet (decided from the config text)."""
    pattern = re.compile(filter_regex) if filter_regex else None
    per_codebase = []
    for codebase in codebases:
        found = []
        for config in list_configs(codebase):
            key = f'{codebase}/{config}'
            if pattern and not pattern.search(key):
                continue
            found.append((codebase, config, 'a'))
            if re.search(r'hrnet|hr\d\d|_hr_|ocrnet', config, re.I):
                found.append((codebase, config, 'b'))
        per_codebase.append(found)
    # Round robin over the codebases: a partial run covers all of them.
    return [c for group in itertools.zip_longest(*per_codebase)
            for c in group if c is not None]


def _save(path: str, results: Dict[str, dict]) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(dict(results=sorted(results.values(), key=lambda r: (
            r['codebase'], r['config'], r['variant']))), f, indent=1)
    os.replace(tmp, path)


def _key(row) -> str:
    return f'{row["codebase"]}/{row["config"]}#{row["variant"]}'


def load_results(path: Optional[str]) -> Dict[str, dict]:
    """The rows of a results file by ``<codebase>/<config>#<variant>``;
    empty when there is no file.

    Example:
        >>> load_results(None)
        {}
    """
    if not path or not osp.exists(path):
        return {}
    with open(path) as f:
        return {_key(r): r for r in json.load(f)['results']}


def run_matrix(filter_regex: Optional[str] = None, jobs: int = 1,
               out: Optional[str] = None, work_root: Optional[str] = None,
               timeout: float = TIMEOUT, in_process: bool = False,
               codebases: Sequence[str] = CODEBASES,
               progress=print, retry_failed: bool = False) -> List[dict]:
    """Run the matrix cells (each in its own process unless
    ``in_process``), skipping those already in ``out`` (failed ones too
    unless ``retry_failed``); ``out`` is rewritten after every cell, so an
    interrupted run resumes."""
    from concurrent.futures import ThreadPoolExecutor
    results = load_results(out)
    if retry_failed:
        results = {k: r for k, r in results.items() if r['result'] != 'fail'}
    todo = [c for c in cells(filter_regex, codebases)
            if f'{c[0]}/{c[1]}#{c[2]}' not in results]
    work_root = work_root or tempfile.mkdtemp(prefix='dropin_')
    roots = generate_data(osp.join(work_root, 'data'))
    done = []

    def one(cell):
        row = (run_config(*cell, work_root, roots) if in_process else
               run_in_process(cell, work_root, timeout))
        results[_key(row)] = row
        done.append(row)
        if out:
            _save(out, results)
        progress(f'[{len(done)}/{len(todo)}] {row["result"]:4} '
                 f'{row["codebase"]}/{row["config"]} ({row["variant"]}) '
                 f'{row["seconds"]:.0f}s {row["error"][:120]}')
        return row

    if jobs <= 1 or in_process:
        rows = [one(c) for c in todo]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            rows = list(pool.map(one, todo))
    selected = cells(filter_regex, codebases)
    keys = {f'{c[0]}/{c[1]}#{c[2]}' for c in selected}
    return [r for k, r in results.items() if k in keys] or rows


def summarize(rows: Sequence[dict]) -> Dict[str, dict]:
    """Counts per codebase and variant: pass, fail, skip and the pass
    share of the buildable (non-skipped) configs.

    Example:
        >>> summarize([dict(codebase='mmseg', variant='a', result='pass',
        ...                 error='')])['mmseg (a)']['pass_share']
        1.0
    """
    table = {}
    for r in rows:
        if r['error'] == 'no HRNet backbone':
            continue
        t = table.setdefault(f'{r["codebase"]} ({r["variant"]})',
                             dict(passed=0, failed=0, skipped=0))
        t[dict(pass_='passed', fail='failed', skip='skipped')[
            r['result'] + ('_' if r['result'] == 'pass' else '')]] += 1
    for t in table.values():
        run = t['passed'] + t['failed']
        t['pass_share'] = round(t['passed'] / run, 4) if run else None
    return table


def format_table(rows: Sequence[dict]) -> str:
    """The matrix as text: one line per cell, then the counts."""
    lines = [f'{"config":70} {"v":1} {"result":6} first error line']
    for r in sorted(rows, key=lambda r: (r['codebase'], r['config'],
                                         r['variant'])):
        lines.append(f'{r["codebase"] + "/" + r["config"]:70} '
                     f'{r["variant"]:1} {r["result"]:6} {r["error"][:150]}')
    lines.append('')
    for key, t in summarize(rows).items():
        share = ('-' if t['pass_share'] is None else
                 f'{100 * t["pass_share"]:.1f} %')
        lines.append(f'{key:20} pass {t["passed"]:4}  fail {t["failed"]:4}'
                     f'  skip {t["skipped"]:4}  pass share of buildable '
                     f'{share}')
    return '\n'.join(lines)
