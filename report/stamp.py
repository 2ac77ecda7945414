"""The report's stamp: SHA-256 of the PDF and of every committed file it was built from.

    python3 report/stamp.py write    # build.sh, after copying the PDF into Miniproject_2/
    python3 report/stamp.py check    # exit 1 and name the files that changed since the build

``report/sources.sha256`` (``sha256sum`` format, so ``sha256sum -c`` reads it too) lists
report.tex, make_figures.py, the inputs make_figures.py read (``report/build/inputs.txt``:
results/*.json, the shipped run's log, the weights of the examples figure) that git tracks,
and the PDF itself. File times mean nothing in a git checkout; contents do. Not stamped: the
code make_figures.py imports for a few constants (model.py, data.py, train.py, noises.py),
which other work changes far more often than the report; and ignored files (data/, the
download cache).
Standard library only: tests/test_report.py runs ``check`` in CI.
"""
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = ROOT / 'report/sources.sha256'
INPUTS = ROOT / 'report/build/inputs.txt'  # written by make_figures.py
PDF = 'Miniproject_2/Report_2.pdf'
ALWAYS = ('report/report.tex', 'report/make_figures.py', PDF)


def sha256(path, root=ROOT):
    return hashlib.sha256((root / path).read_bytes()).hexdigest()


def tracked(paths):
    """The paths git tracks (the stamp must hold in a fresh clone); all of them without git."""
    try:
        listed = subprocess.run(['git', 'ls-files', '-z', '--', *paths], cwd=ROOT, check=True,
                                capture_output=True).stdout.decode().split('\0')
    except (OSError, subprocess.CalledProcessError):
        return list(paths)
    return [path for path in paths if path in set(listed)]


def write():
    inputs = [line.strip() for line in INPUTS.read_text().splitlines() if line.strip()]
    paths = sorted(set(tracked(inputs)) | set(ALWAYS))
    STAMP.write_text(''.join(f'{sha256(path)}  {path}\n' for path in paths))
    return paths


def read(root=ROOT):
    """{path: digest} as stamped."""
    entries = {}
    for line in (root / STAMP.relative_to(ROOT)).read_text().splitlines():
        digest, _, path = line.partition('  ')
        entries[path] = digest
    return entries


def stale(root=ROOT):
    """The stamped files whose content is not what the build saw ('missing' if gone), in the
    checkout at ``root``."""
    changed = []
    for path, digest in read(root).items():
        if not (root / path).is_file():
            changed.append(f'{path} (missing)')
        elif sha256(path, root) != digest:
            changed.append(path)
    return changed


def main(argv):
    if argv == ['write']:
        print(f'stamp: {len(write())} files in {STAMP.relative_to(ROOT)}')
        return 0
    if argv == ['check']:
        changed = stale()
        for path in changed:
            print(f'stamp: changed since the report was built: {path}', file=sys.stderr)
        return 1 if changed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
