"""Nothing runs that should not: no unpickling outside the one trusted loader, no file
written from a name found inside a weight file.

Downloaded data sets are SHA-256 checked before use; that is tested in
``tests/test_datasets.py`` (``ChecksumError``: a wrong checksum is refused and the bad
download is not kept) and not repeated here.
"""
from __future__ import annotations

import ast
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import xpnet as xn
from xpnet import io as xio
from xpnet.layers import Dense

PACKAGE = Path(xn.__file__).resolve().parent
ALLOWED_PICKLE = {("io.py", "load_book_weights")}  # (file, function)
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve",
                  "marshal"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}


def _calls(tree):
    """(qualified call name, enclosing function, node) for every call in ``tree``."""
    out = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Call):
                f = child.func
                parts = []
                while isinstance(f, ast.Attribute):
                    parts.append(f.attr)
                    f = f.value
                if isinstance(f, ast.Name):
                    parts.append(f.id)
                out.append((".".join(reversed(parts)), func, child))
            visit(child, inner)

    visit(tree, None)
    return out


def _sources():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10, f"expected the xpnet sources under {PACKAGE}"
    for path in files:
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _violations(rel, tree):
    """``(found, allowed)``: unpickling, eval and allow_pickle uses in one module."""
    found, allowed, alias = [], [], {}
    for node in ast.walk(tree):  # `from pickle import load` would hide the module name
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"{rel}:{node.lineno}: from {node.module} import ...")
        if isinstance(node, ast.Import):  # `import pickle as pk`
            alias.update({a.asname: a.name for a in node.names if a.asname})
    for name, func, node in _calls(tree):
        first, _, rest = name.partition(".")
        name = ".".join(filter(None, [alias.get(first, first), rest]))
        head, _, attr = name.rpartition(".")
        where = f"{rel}:{node.lineno}: {name}(...) in {func}()"
        if head.split(".")[-1] in PICKLE_MODULES and attr in ("load", "loads", "Unpickler", "open"):
            (allowed if (rel, func) in ALLOWED_PICKLE else found).append(where)
        if name in UNSAFE_CALLS or name in ("torch.load", "yaml.load", "yaml.unsafe_load"):
            found.append(where)
        for kw in node.keywords:
            if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant)
                                                 and kw.value.value is False):
                found.append(f"{where} with allow_pickle={ast.unparse(kw.value)}")
        if name.endswith(".load") and name.split(".")[0] in ("np", "numpy"):
            if not any(kw.arg == "allow_pickle" for kw in node.keywords):
                found.append(f"{where} without an explicit allow_pickle=False")
    return found, allowed


def test_no_unpickling_outside_the_trusted_loader():
    found, allowed = [], []
    for path, tree in _sources():
        f, a = _violations(path.relative_to(PACKAGE).as_posix(), tree)
        found += f
        allowed += a
    assert not found, "unpickling (or eval) outside io.load_book_weights:\n" + "\n".join(found)
    assert len(allowed) == 1 and "load_book_weights" in allowed[0], allowed


@pytest.mark.parametrize("src", [
    "import pickle\ndef f(p):\n    return pickle.load(open(p, 'rb'))\n",
    "import pickle as pk\ndef f(b):\n    return pk.loads(b)\n",
    "import numpy as np\ndef f(p):\n    return np.load(p, allow_pickle=True)\n",
    "import numpy as np\ndef f(p, a):\n    return np.load(p, allow_pickle=a)\n",
    "import numpy as np\ndef f(p):\n    return np.load(p)\n",
    "from pickle import loads\n",
    "def f(s):\n    return eval(s)\n",
    "import pickle\ndef load_book_weights(p):\n    return pickle.load(p)\n",  # wrong file
], ids=["pickle.load", "alias", "allow_pickle", "allow_pickle-var", "np.load-implicit",
        "from-import", "eval", "right-name-wrong-file"])
def test_the_scan_catches(src):
    found, allowed = _violations("other.py", ast.parse(src))
    assert found and not allowed, src


class Payload:
    """Unpickling this creates the file ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_book_weights_refuses_without_trusted(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"W1": Payload(marker)}))
    with pytest.raises(PermissionError, match=r"trusted=True"):
        xio.load_book_weights(path)
    with pytest.raises(PermissionError):
        xio.load_book_weights(path, trusted=False)
    assert not marker.exists()
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"W1": np.eye(2), "b1": [0.0, 1.0]}))
    weights = xio.load_book_weights(good, trusted=True)
    assert sorted(weights) == ["W1", "b1"]
    np.testing.assert_array_equal(weights["W1"], np.eye(2))


def test_book_sample_weights_load_when_trusted(shared_data):
    path = shared_data / "mnist" / "sample_weight.pkl"
    if not path.is_file():
        pytest.skip(f"the book's sample_weight.pkl is absent from {path.parent}")
    with pytest.raises(PermissionError):
        xio.load_book_weights(path)
    weights = xio.load_book_weights(path, trusted=True)
    assert weights["W1"].shape == (784, 50) and weights["b3"].shape == (10,)


def _tree(*roots):
    out = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            out.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return out


def test_member_names_that_look_like_paths_create_no_files(backend, tmp_path, monkeypatch):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    m = xn.Sequential([Dense(3, input_dim=2)], seed=0)
    m.build()
    before_weights = [w.copy() for w in m.get_weights()]
    header = {"layers": [{"name": "dense"}], "input_shape": [2], "format": 1}
    evil = ["../../evil", "../../../evil2", str(tmp_path / "abs_evil"), "dense/../../evil3",
            "..\\..\\evil4"]
    path = work / "crafted.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name in evil:
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ones(3))
        with z.open(xio.HEADER_KEY + ".npy", "w") as f:
            np.lib.format.write_array(f, np.frombuffer(json.dumps(header).encode(), np.uint8))
    before = _tree(tmp_path)
    arrays, _ = xio.load_arrays(path)
    assert set(arrays) == set(evil)  # read as names, in memory
    with pytest.raises(xio.WeightFileError, match=r"no 'dense/W'"):
        m.load_weights(path)
    # the same names next to the real ones: refused (unread), and still no file
    real = work / "real.npz"
    with zipfile.ZipFile(real, "w") as z:
        for key in ("dense/W", "dense/b"):
            with z.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, np.full((2, 3) if key.endswith("W") else (3,), 0.5,
                                                     dtype=np.float32))
        with z.open(xio.HEADER_KEY + ".npy", "w") as f:
            np.lib.format.write_array(f, np.frombuffer(json.dumps(header).encode(), np.uint8))
    before.add(str(real))
    with zipfile.ZipFile(path, "a") as z, zipfile.ZipFile(real) as r:
        for key in ("dense/W", "dense/b"):
            z.writestr(key + ".npy", r.read(key + ".npy"))
    with pytest.raises(xio.WeightFileError, match=r"evil.*not part of this model"):
        m.load_weights(path)
    np.testing.assert_array_equal(m.get_weights()[0], before_weights[0])
    m.load_weights(real)
    assert _tree(tmp_path) == before
    for name in evil:
        assert not (work / name).resolve().exists()
        assert not Path(name + ".npy").exists()
    np.testing.assert_array_equal(m.get_weights()[0], np.full((2, 3), 0.5, np.float32))
    assert not np.array_equal(m.get_weights()[0], before_weights[0])


def test_layer_names_that_look_like_paths_stay_inside_the_file(backend, tmp_path, monkeypatch):
    """Saving a model whose layer is called "../../x" writes one file, where it was asked."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep" / "er").mkdir(parents=True)
    m = xn.Sequential([Dense(2, input_dim=2, name="../../x")], seed=0)
    before = _tree(tmp_path)
    m.save_weights(tmp_path / "deep" / "er" / "w.npz")
    assert _tree(tmp_path) - before == {str(tmp_path / "deep" / "er" / "w.npz")}
    n = xn.Sequential([Dense(2, input_dim=2, name="../../x")], seed=1)
    n.load_weights(tmp_path / "deep" / "er" / "w.npz")
    np.testing.assert_array_equal(n.get_weights()[0], m.get_weights()[0])
    assert _tree(tmp_path) - before == {str(tmp_path / "deep" / "er" / "w.npz")}
