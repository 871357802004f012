"""House rules checked on the source: only the backend modules (``xpnet/backend.py`` and
``xpnet/_backend_*.py``) touch concrete array libraries; library code has no host syncs or
NumPy-only idioms.

- cupy, torch and jax (also via ``array_api_compat.cupy``/``.torch``) are imported only
  in the backend modules;
- numpy is imported only there and in the host modules ``xpnet/datasets/``,
  ``xpnet/io.py`` and ``xpnet/io_npz.py``;
- outside those modules: no ``.item()``, ``.copy()``, ``nditer`` or ``np.add.at``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xpnet"
DEVICE_LIBS = {"cupy", "torch", "jax"}
HOST_LIBS = {"numpy"}
FORBIDDEN_CALLS = {"item", "copy"}  # methods: a host sync, and a NumPy-only idiom


def _is_backend_module(rel: str) -> bool:
    return rel == "backend.py" or (rel.startswith("_backend_") and "/" not in rel)


def _is_host_module(rel: str) -> bool:
    return rel.startswith("datasets/") or rel in ("io.py", "io_npz.py")


def _library_of_module(module: str) -> str | None:
    """'numpy', 'cupy' or 'torch' when ``module`` is (a part of) one of them, directly or
    through array_api_compat; else None."""
    parts = module.split(".")
    if parts[0] in DEVICE_LIBS | HOST_LIBS:
        return parts[0]
    if parts[0] == "array_api_compat" and len(parts) > 1 and parts[1] in DEVICE_LIBS | HOST_LIBS:
        return parts[1]
    return None


def imported_libraries(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, library)`` for every import of numpy, cupy or torch in ``tree``."""
    found = []
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call):  # importlib.import_module("torch"), __import__("cupy")
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                modules = [node.args[0].value]
        for module in modules:
            lib = _library_of_module(module)
            if lib is not None:
                found.append((node.lineno, lib))
    return found


def forbidden_idioms(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, idiom)`` for ``.item()``, ``.copy()``, ``nditer`` and ``add.at`` in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in FORBIDDEN_CALLS:
            found.append((node.lineno, f".{node.func.attr}()"))
        elif isinstance(node, ast.Attribute):
            if node.attr == "nditer":
                found.append((node.lineno, "nditer"))
            elif node.attr == "at" and isinstance(node.value, ast.Attribute) and \
                    node.value.attr == "add":
                found.append((node.lineno, "add.at"))
        elif isinstance(node, ast.Name) and node.id == "nditer":
            found.append((node.lineno, "nditer"))
        elif isinstance(node, ast.alias) and node.name == "nditer":
            found.append((getattr(node, "lineno", 0), "nditer"))
    return found


def _modules():
    files = sorted(PACKAGE.rglob("*.py"))
    return [(p.relative_to(PACKAGE).as_posix(), p) for p in files]


MODULES = _modules()
#: every module but the backend modules: checked for imports
IMPORTERS = [(rel, p) for rel, p in MODULES if not _is_backend_module(rel)]
#: the device-side library code: checked for host idioms too
LIBRARY = [(rel, p) for rel, p in IMPORTERS if not _is_host_module(rel)]


def test_the_walk_sees_the_core_modules():
    names = {rel for rel, _ in MODULES}
    assert {rel for rel, _ in LIBRARY} < names
    assert {"backend.py", "_backend_load.py"} <= names - {rel for rel, _ in IMPORTERS}
    for core in ("backend.py", "functions.py", "losses.py", "optimizers.py", "gradcheck.py",
                 "initializers.py", "layers/base.py", "layers/affine.py"):
        assert core in names


@pytest.mark.parametrize("rel, path", IMPORTERS, ids=[rel for rel, _ in IMPORTERS])
def test_only_backend_imports_array_libraries(rel, path):
    allowed = HOST_LIBS if _is_host_module(rel) else set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [(line, lib) for line, lib in imported_libraries(tree) if lib not in allowed]
    assert not bad, f"xpnet/{rel} imports " + ", ".join(f"{lib} (line {n})" for n, lib in bad) \
        + ": go through xpnet.backend instead"


def test_backend_modules_below_backend_py_import_no_xpnet_module():
    """``backend.py`` imports the ``_backend_*`` modules; they import nothing of xpnet's, so
    there is no cycle and no import back up."""
    for rel, path in MODULES:
        if _is_backend_module(rel) and rel != "backend.py":
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            up = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                  and (node.level > 0 or (node.module or "").startswith("xpnet"))]
            assert not up, f"xpnet/{rel} imports an xpnet module (line {up[0]})"


@pytest.mark.parametrize("rel, path", LIBRARY, ids=[rel for rel, _ in LIBRARY])
def test_no_host_syncs_or_numpy_idioms_in_library_code(rel, path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = forbidden_idioms(tree)
    assert not bad, f"xpnet/{rel} uses " + ", ".join(f"{what} (line {n})" for n, what in bad)


# -- the checkers catch what they are meant to catch --------------------------------------

@pytest.mark.parametrize("source, lib", [
    ("import torch", "torch"),
    ("import numpy as np", "numpy"),
    ("import numpy.random", "numpy"),
    ("from numpy import ones", "numpy"),
    ("from cupy.cuda import runtime", "cupy"),
    ("import array_api_compat.torch as xp", "torch"),
    ("from array_api_compat import cupy", "cupy"),
    ("def f():\n    import torch\n", "torch"),
    ("import importlib\nimportlib.import_module('cupy')", "cupy"),
])
def test_import_checker_flags(source, lib):
    assert lib in {found for _, found in imported_libraries(ast.parse(source))}


@pytest.mark.parametrize("source", [
    "import array_api_compat", "from array_api_compat import array_namespace",
    "from . import backend", "from .backend import to_numpy", "import numpyro_like_name",
])
def test_import_checker_allows(source):
    assert imported_libraries(ast.parse(source)) == []


@pytest.mark.parametrize("source, idiom", [
    ("loss.item()", ".item()"), ("w = params['W'].copy()", ".copy()"),
    ("np.add.at(a, idx, 1)", "add.at"), ("for v in np.nditer(a): pass", "nditer"),
    ("from numpy import nditer", "nditer"),
])
def test_idiom_checker_flags(source, idiom):
    assert idiom in {found for _, found in forbidden_idioms(ast.parse(source))}


def test_idiom_checker_allows_array_api_calls():
    source = "y = xp.reshape(x, (n, -1))\nz = xp.astype(y, xp.float32)\nitem = items[0]\n"
    assert forbidden_idioms(ast.parse(source)) == []
