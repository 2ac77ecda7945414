"""What a fresh machine needs is declared: every third-party package the code imports is in
the requirements file of what imports it, ``model.py`` needs only torch, and the tools'
imports form a tree (no module of ``others/`` imports one that imports it back)."""
import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OTHERS = ROOT / 'Miniproject_2' / 'others'

# Which requirements file installs what each part of the repository imports: the runtime is
# what the grader imports, the tools' file the first README command, the tests' the second.
COVERAGE = {
    'requirements.txt': ('Miniproject_2/model.py', 'Miniproject_2/__init__.py'),
    'requirements-tools.txt': ('Miniproject_2/others', 'report', 'test.py'),
    'requirements-dev.txt': ('tests',),
}
# Import names that are not their distribution's name.
DISTRIBUTIONS = {'PIL': 'pillow'}


def python_files(part):
    path = ROOT / part
    return [path] if path.is_file() else sorted(path.rglob('*.py'))


def imported_names(path):
    """The top-level names of every absolute import in a file, at any depth of its code, but
    for optional ones: those under a ``try`` that handles their ``ImportError`` with advice
    (compare.py's ``bm3d``)."""
    tree = ast.parse(path.read_text(), str(path))
    optional = {id(child) for node in ast.walk(tree) if isinstance(node, ast.Try)
                and any(isinstance(handler.type, ast.Name) and handler.type.id in (
                    'ImportError', 'ModuleNotFoundError') for handler in node.handlers)
                for statement in node.body for child in ast.walk(statement)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module.split('.')[0])
    return names


def third_party(path):
    """The distributions a file imports: neither the standard library, nor this repository,
    nor a module beside it (the tests' ``strategies``, say)."""
    local = {p.stem for p in path.parent.glob('*.py')} | {'Miniproject_2'}
    return {DISTRIBUTIONS.get(name, name).lower() for name in imported_names(path)
            if name not in sys.stdlib_module_names and name not in local}


def declared(requirements):
    """The distributions a requirements file (a path) installs, following its ``-r`` lines."""
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split('#')[0].strip()
        if line.startswith('-r'):
            names |= declared(requirements.parent / line[2:].strip())
        elif line:
            names.add(re.match(r'[A-Za-z0-9_.-]+', line).group().lower().replace('_', '-'))
    return names


def undeclared(requirements, parts):
    """{file: the distributions it imports that ``requirements`` (a path) does not install}."""
    installed = declared(requirements)
    return {str(path.relative_to(ROOT)): sorted(third_party(path) - installed)
            for part in parts for path in python_files(part)
            if third_party(path) - installed}


@pytest.mark.parametrize('requirements', list(COVERAGE))
def test_every_third_party_import_is_declared(requirements):
    assert undeclared(ROOT / requirements, COVERAGE[requirements]) == {}


def test_every_python_file_is_covered_by_a_requirements_file():
    covered = {path for parts in COVERAGE.values() for part in parts
               for path in python_files(part)}
    tracked = {path for path in ROOT.rglob('*.py')
               if not any(part.startswith(('.', 'data')) or part in ('venv', 'build')
                          for part in path.relative_to(ROOT).parts)}
    assert sorted(map(str, tracked - covered)) == []


def test_the_runtime_needs_only_torch():
    assert declared(ROOT / 'requirements.txt') == {'torch'}
    assert third_party(ROOT / 'Miniproject_2' / 'model.py') == {'torch'}


def test_the_check_catches_a_missing_requirement(tmp_path):
    """The tools' file without its matplotlib line: photos.py and make_figures.py are
    reported, and nothing else."""
    lines = (ROOT / 'requirements-tools.txt').read_text().splitlines()
    assert any(line.startswith('matplotlib') for line in lines)
    trimmed = tmp_path / 'requirements-tools.txt'
    trimmed.write_text('\n'.join(line for line in lines if not line.startswith('matplotlib')))
    (tmp_path / 'requirements.txt').write_text((ROOT / 'requirements.txt').read_text())
    assert undeclared(trimmed, COVERAGE['requirements-tools.txt']) == {
        'Miniproject_2/others/photos.py': ['matplotlib'],
        'report/make_figures.py': ['matplotlib']}


def tool_imports():
    """{tool: the tools of ``others/`` it imports}, from ``from Miniproject_2.others import
    x``, ``from Miniproject_2.others.x import ...`` and ``import Miniproject_2.others.x``."""
    tools = {path.stem for path in OTHERS.glob('*.py')} - {'__init__'}
    edges = {}
    for tool in tools:
        tree = ast.parse((OTHERS / f'{tool}.py').read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == 'Miniproject_2.others':
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.removeprefix('Miniproject_2.others.'))
            elif isinstance(node, ast.Import):
                found |= {alias.name.removeprefix('Miniproject_2.others.')
                          for alias in node.names}
        edges[tool] = found & tools
    return edges


def cycle(edges):
    """One import cycle of ``edges`` as a list of names (first = last), or None."""
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for child in sorted(edges.get(node, ())):
            if state.get(child) == 'open':
                return path[path.index(child):] + [child]
            if child not in state:
                found = visit(child, path + [child])
                if found:
                    return found
        state[node] = 'done'
        return None
    for start in sorted(edges):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_tools_imports_form_a_tree():
    edges = tool_imports()
    assert edges['data'] == {'noises'} and 'data' not in edges['noises']
    assert cycle(edges) is None


@pytest.mark.parametrize('edges, expected', [
    ({'data': {'noises'}, 'noises': {'data'}}, ['data', 'noises', 'data']),
    ({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}, ['a', 'b', 'c', 'a']),
    ({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}, None),
])
def test_the_cycle_check_finds_a_circle(edges, expected):
    assert cycle(edges) == expected
