"""The course rules, read off Miniproject_2/model.py's syntax tree.

Allowed: ``from torch import empty, cat, arange`` (any subset), ``from torch.nn.functional
import fold, unfold``, ``import torch`` for ``torch.load``, ``torch.save``,
``torch.set_grad_enabled``, ``torch.cuda.is_available`` and ``torch.device`` only, and the
standard library. Autograd is out: no ``requires_grad``,
``no_grad``, ``autograd`` anywhere (a tensor's ``.backward()`` cannot run without them).
"""
import ast
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

MODEL = Path(__file__).resolve().parents[1] / 'Miniproject_2' / 'model.py'

ALLOWED_FROM = {'torch': {'empty', 'cat', 'arange'},
                'torch.nn.functional': {'fold', 'unfold'}}
ALLOWED_TORCH = {'torch.load', 'torch.save', 'torch.set_grad_enabled',
                 'torch.cuda.is_available', 'torch.device'}
FORBIDDEN_NAMES = {'autograd', 'requires_grad', 'requires_grad_', 'no_grad', 'enable_grad',
                   'inference_mode', 'retain_grad', 'grad_fn'}
# Ways around the import rules.
FORBIDDEN_CALLS = {'__import__', 'import_module', 'eval', 'exec'}


def _dotted_torch_use(node, parents):
    """'torch.a.b' for the longest attribute chain rooted at this ``torch`` name."""
    parts, current = ['torch'], node
    while isinstance(parents.get(current), ast.Attribute) and parents[current].value is current:
        current = parents[current]
        parts.append(current.attr)
    return '.'.join(parts)


def violations(source, filename='model.py'):
    """Every rule broken in ``source``, as 'file:line: code  <- reason' strings."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []

    def report(node, reason):
        found.append(f'{filename}:{node.lineno}: {lines[node.lineno - 1].strip()}  <- {reason}')

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == 'torch' and alias.asname in (None, 'torch'):
                    continue
                if alias.name.split('.')[0] in sys.stdlib_module_names and \
                        alias.name.split('.')[0] != 'torch':
                    continue
                report(node, f'import {alias.name}'
                             + (f' as {alias.asname}' if alias.asname else '') + ' not allowed')
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ''
            if node.level:
                report(node, 'relative import not allowed')
            elif module in ALLOWED_FROM:
                extra = [a.name for a in node.names if a.name not in ALLOWED_FROM[module]]
                if extra:
                    report(node, f'from {module} import {", ".join(extra)} not allowed')
            elif module.split('.')[0] not in sys.stdlib_module_names:
                report(node, f'from {module} import ... not allowed')
        elif isinstance(node, ast.Name) and node.id == 'torch':
            use = _dotted_torch_use(node, parents)
            if not any(use == ok or use.startswith(ok + '.') for ok in ALLOWED_TORCH):
                report(node, f'{use} not allowed')
        names = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.keyword) and node.arg:
            names = [node.arg]
        elif isinstance(node, ast.alias):
            names = [node.name.split('.')[-1], node.asname]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]   # getattr(x, 'requires_grad')
        for name in names:
            if name in FORBIDDEN_NAMES:
                report(node, f'autograd: {name}')
            elif name in FORBIDDEN_CALLS and isinstance(parents.get(node), ast.Call) and \
                    parents[node].func is node:
                report(node, f'{name}() not allowed')
    return sorted(set(found), key=lambda text: int(text.split(':')[1]))


def test_model_follows_the_rules():
    problems = violations(MODEL.read_text(), MODEL.name)
    assert not problems, 'course rules broken:\n' + '\n'.join(problems)


# The checker itself: it must catch each of these, and must not flag the allowed forms.
BAD = ['import numpy', 'import numpy as np', 'import torch.nn', 'import torch as t',
       'import torchvision', 'from torch import randn', 'from torch import empty, zeros',
       'from torch import *', 'from torch.nn.functional import conv2d',
       'from torch.nn import Conv2d', 'from torch import autograd', 'from . import others',
       'from .others.data import load', 'x = torch.zeros(3)', 'y = torch.nn.functional.relu(x)',
       'torch.cuda.manual_seed(0)', 'f = torch.sigmoid', 'getattr(torch, "zeros")',
       'x.requires_grad_()', 'x = empty(3, requires_grad=True)', 'x.requires_grad = True',
       'with torch.no_grad():\n    pass', 'torch.autograd.grad(y, x)',
       'getattr(x, "requires_grad")', '__import__("numpy")',
       'import importlib\nimportlib.import_module("numpy")', 'eval("1")',
       'x = empty(3).to(torch.float32)']
GOOD = ['import torch', 'import math, os, sys, time, random', 'from collections import deque',
        'from torch import empty, cat, arange', 'from torch import empty as new',
        'from torch.nn.functional import fold, unfold', 'torch.load("w.pth")',
        'torch.save({}, "w.pth")', 'torch.set_grad_enabled(False)',
        'd = torch.device("cuda" if torch.cuda.is_available() else "cpu")',
        'x = empty(3).float()', 'def backward(self, g):\n    return self.m.backward(g)',
        'y = x.grad_input', '"""no requires_grad here, said the docstring"""']


@pytest.mark.parametrize('source', BAD)
def test_checker_catches(source):
    problems = violations(source, 'snippet.py')
    assert problems, f'not caught: {source!r}'
    assert all(problem.startswith('snippet.py:') for problem in problems)


@pytest.mark.parametrize('source', GOOD)
def test_checker_allows(source):
    assert violations(source) == []


def test_messages_name_the_offending_line():
    problems = violations('import math\n\nx = torch.zeros(3)\n', 'm.py')
    assert problems == ['m.py:3: x = torch.zeros(3)  <- torch.zeros not allowed']


def test_property_tests_are_replayable():
    """conftest.py's default hypothesis profile: the same examples on every run, and the
    blob that replays a failing one printed."""
    if os.environ.get('HYPOTHESIS_PROFILE', 'ci') == 'ci':
        assert settings.default.derandomize
    assert settings.default.print_blob


# --------------------------------------------------------------------------------------
# Outside model.py, only its public names
# --------------------------------------------------------------------------------------

ROOT = MODEL.parents[1]
USERS = sorted([*ROOT.glob('Miniproject_2/others/*.py'), *ROOT.glob('tests/*.py'),
                ROOT / 'test.py', ROOT / 'report' / 'make_figures.py'])


def private_names(source):
    """Every private name model.py defines: module-level, class attributes and methods, and
    attributes it sets on ``self`` (dunders are Python's, not ours)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {name for name in names if name.startswith('_') and name.strip('_') and
            not name.endswith('__')}


def private_uses(source, private, filename):
    """'file:line: name' for each use of a name in ``private``: imported, read as an
    attribute of anything, or named by a string to getattr/setattr/monkeypatch.setattr."""
    found = []
    for node in ast.walk(ast.parse(source)):
        used = []
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('Miniproject_2'):
            used = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute):
            used = [node.attr]
        elif isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(
                node.func, 'id', None)) in ('getattr', 'setattr', 'hasattr', 'delattr'):
            used = [arg.value for arg in node.args
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        found += [f'{filename}:{node.lineno}: {name}' for name in used
                  if name in private]
    return found


def test_tools_and_tests_use_only_public_names_of_the_model():
    private = private_names(MODEL.read_text())
    assert {'_blocks', '_saved', '_parameters', '_PHASE_GEOMETRY'} <= private  # it finds them
    uses = [use for path in USERS
            for use in private_uses(path.read_text(), private, str(path.relative_to(ROOT)))]
    assert not uses, 'private names of model.py used outside it:\n' + '\n'.join(uses)


@pytest.mark.parametrize('source', ['from Miniproject_2.model import _build',
                                    'model._as_images(x, "x")', 'conv._parameters["weight"]',
                                    'monkeypatch.setattr(model, "_blocks", f)',
                                    'getattr(module, "_saved")'])
def test_the_private_name_check_catches(source):
    private = private_names(MODEL.read_text())
    assert private_uses(source, private, 'snippet.py')
