"""The drop-in matrix: the plugin on every stock config of mmseg, mmpose
(body 2D keypoints) and mmpretrain.

Variant a: the stock model + ProgressivePruningHook, 2 iterations through
the stock runner, export, reload through the stock inference API.
Variant b (HRNet backbones): SuperTicketHRNet(out_channels=<stock widths>)
and the three SuperTickets hooks, the same steps. See
mmsupertickets/testing/dropin*.py and docs/en/user_guides/dropin_configs.md.

Example::

    nohup .venv/bin/python tools/analysis/dropin_matrix.py \
        --out docs/en/notes/dropin_matrix.json > /tmp/logs/dropin.log 2>&1 &
    .venv/bin/python tools/analysis/dropin_matrix.py --filter 'hrnet/fcn_hr18'
    .venv/bin/python tools/analysis/dropin_matrix.py \
        --out docs/en/notes/dropin_matrix.json --summary
"""
import argparse
import os
import sys

from mmsupertickets.testing.dropin import (
    CODEBASES,
    TIMEOUT,
    cells,
    format_table,
    load_results,
    run_matrix,
    summarize,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--filter', help='regex on "<codebase>/<config>"')
    parser.add_argument('--codebases', nargs='+', default=list(CODEBASES),
                        choices=CODEBASES)
    parser.add_argument('--jobs', type=int, default=1,
                        help='configs run at once, each in its own process')
    parser.add_argument('--out', help='results JSON; cells already in it '
                        'are skipped (a rerun resumes)')
    parser.add_argument('--retry-failed', action='store_true',
                        help='run again the cells that failed in --out')
    parser.add_argument('--work-dir', help='scratch folder (a temporary '
                        'one by default)')
    parser.add_argument('--timeout', type=float, default=TIMEOUT,
                        help='seconds per config')
    parser.add_argument('--summary', action='store_true',
                        help='print the counts of --out as a Markdown '
                        'table and the failures, run nothing')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    return args


def markdown_summary(rows) -> str:
    """The counts per codebase and variant as a Markdown table, then one
    line per failed cell (the docs' "Last result")."""
    lines = [f'{len(rows)} of {len(cells())} cells', '',
             '| codebase (variant) | pass | fail | skip | pass share |',
             '|---|---|---|---|---|']
    for key, t in sorted(summarize(rows).items()):
        share = ('-' if t['pass_share'] is None else
                 f'{100 * t["pass_share"]:.1f} %')
        lines.append(f'| {key} | {t["passed"]} | {t["failed"]} | '
                     f'{t["skipped"]} | {share} |')
    lines.append('')
    lines += [f'- fail {r["codebase"]}/{r["config"]} ({r["variant"]}): '
              f'{r["error"][:150]}' for r in rows if r['result'] == 'fail']
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.summary:
        print(markdown_summary(list(load_results(args.out).values())))
        return 0
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    rows = run_matrix(args.filter, args.jobs, args.out, args.work_dir,
                      args.timeout, codebases=args.codebases,
                      progress=lambda line: print(line, flush=True),
                      retry_failed=args.retry_failed)
    print(format_table(rows))
    return 0 if all(r['result'] != 'fail' for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
