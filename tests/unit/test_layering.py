"""Layering over the import graph: a compute host needs no database layer (compute, virt
and cli never import novalite.db), and virt imports nothing above it."""

import ast
import pathlib

import pytest

import novalite

ROOT = pathlib.Path(novalite.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f'{node.module}.{a.name}' for a in node.names)
    return {m for m in out if m.startswith('novalite')}


def _modules(package: str):
    return sorted((ROOT / package).rglob('*.py'))


def _closure(path: pathlib.Path) -> set[str]:
    """Every novalite module reachable by imports from ``path``."""
    seen, todo = set(), [path]
    while todo:
        p = todo.pop()
        for mod in _imports(p):
            if mod in seen:
                continue
            seen.add(mod)
            parts = mod.split('.')[1:]
            if not parts:
                continue
            rel = pathlib.Path(*parts)
            for cand in (ROOT / rel.with_suffix('.py'), ROOT / rel / '__init__.py'):
                if cand.exists():
                    todo.append(cand)
    return seen


@pytest.mark.parametrize('package', ['compute', 'virt', 'cli'])
def test_no_database_layer_below_the_conductor(package):
    offenders = {}
    for path in _modules(package):
        bad = {m for m in _closure(path) if m == 'novalite.db' or
               m.startswith('novalite.db.')}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, offenders


def test_virt_imports_nothing_above_it():
    allowed = ('novalite.virt', 'novalite.conf', 'novalite.exception', 'novalite.utils')
    offenders = {}
    for path in _modules('virt'):
        bad = {m for m in _imports(path) if not m.startswith(allowed)}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, offenders
