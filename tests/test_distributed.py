"""Data-parallel ``fit`` on 2 processes (torch.distributed/gloo on loopback, and mpi4py
under ``mpirun`` where it exists) against the same runs on one process.

The reference is one process with the whole batch, run here; the 2-rank runs are
``tests/_dist_worker.py``. Keras' ``MirroredStrategy`` semantics are the spec: the global
batch is split between the ranks, so 2 ranks x 50 rows must give 1 process x 100 rows to
float rounding (float32: ~1e-7, float64: ~1e-16 measured), with every rank holding
exactly the same arrays and logging the same history.
"""
from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xpnet as xn
import _dist_worker as W

pytestmark = pytest.mark.distributed

HERE = Path(__file__).resolve().parent
BACKENDS = ["numpy", "torch", "array_api_strict"]
TOL = {"float32": 1e-6, "float64": 1e-12}


def _gloo():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (pip install 'xpnet[distributed]'): the 2-rank "
                    "runs use torch.distributed")
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no torch.distributed with gloo")
    if "forkserver" not in mp.get_all_start_methods():
        pytest.skip("the 2-rank runs need the 'forkserver' start method (POSIX)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out, backends, mode="scenarios", timeout=60.0, wait=150):
    """Two ranks (forked from a server that has xpnet and torch imported: a start costs
    milliseconds); returns the processes, joined (or still running after ``wait`` s)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["_dist_worker", "array_api_strict", "torch"])
    port = _free_port()
    procs = [ctx.Process(target=W.run, args=(r, 2, port, backends, str(out), mode, timeout))
             for r in range(2)]
    for p in procs:
        p.start()
    return procs


def _results(out):
    return [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(2)]


@pytest.fixture(scope="module")
def gloo(tmp_path_factory):
    """The 2-rank results on every backend, from one gloo run, and the output folder."""
    _gloo()
    out = tmp_path_factory.mktemp("gloo")
    procs = _launch(out, BACKENDS)
    for p in procs:
        p.join(240)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.exitcode is None:
            p.kill()
    assert codes == [0, 0], f"the ranks exited with {codes}"
    return _results(out), out


_refs: dict = {}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """The same scenarios on one process, per backend (computed once)."""
    def get(backend):
        if backend not in _refs:
            _refs[backend] = W.scenarios(None, backend, tmp_path_factory.mktemp("ref"))
        return _refs[backend]
    return get


def _max_err(a, b):
    assert len(a) == len(b)
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(a, b))


def _same(a, b):
    """Bit-identical lists of arrays (what two ranks must hold)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# -- torch.distributed over gloo, 2 ranks --------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", list(W.OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_ranks_of_50_rows_give_one_process_of_100(gloo, ref, backend, opt, dtype):
    (r0, r1), _ = gloo
    key = ("steps", opt, dtype)
    _same(r0[backend][key], r1[backend][key])
    err = _max_err(r0[backend][key], ref(backend)[key])
    assert err < TOL[dtype], f"{opt} {dtype}: 2 ranks differ from 1 process by {err:.3g}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_uneven_shards_and_a_batch_with_fewer_rows_than_ranks(gloo, ref, backend):
    """1,011 rows in batches of 101: shares of 51 and 50, then a batch of 1 row (rank 0
    has none): the shard weights make it the one-process result."""
    (r0, r1), _ = gloo
    _same(r0[backend]["uneven"], r1[backend]["uneven"])
    assert _max_err(r0[backend]["uneven"], ref(backend)["uneven"]) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_weights_on_uneven_shards_match_one_process(gloo, ref, backend):
    """Each rank weighs its own rows: sum(w * l) / its rows, times its share of the batch,
    summed over the ranks, is the one-process sum(w * l) / batch rows."""
    (r0, r1), _ = gloo
    _same(r0[backend]["weighted"]["weights"], r1[backend]["weighted"]["weights"])
    assert _max_err(r0[backend]["weighted"]["weights"], ref(backend)["weighted"]["weights"]) < 1e-12
    np.testing.assert_allclose(r0[backend]["weighted"]["history"]["loss"],
                               ref(backend)["weighted"]["history"]["loss"], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_precision_recall_auc_counts_all_reduce_to_one_process(gloo, ref, backend):
    """Vector metric sums (confusion counts) in the flat buffer: the ranks' counts add up
    to one process's, a rank without rows adding zeros."""
    (r0, r1), _ = gloo
    assert r0[backend]["confusion"] == r1[backend]["confusion"]
    theirs = ref(backend)["confusion"]
    assert set(theirs) == set(r0[backend]["confusion"])
    for k, v in theirs.items():
        np.testing.assert_allclose(r0[backend]["confusion"][k], v, rtol=1e-9, err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_synchronized_batch_norm_trains_as_one_process(gloo, ref, backend):
    """BatchNormalization(synchronized=True): the global batch's mean and variance in
    forward, the global sums in backward, so 2 ranks match 1 process (float64)."""
    (r0, r1), _ = gloo
    mine, theirs = r0[backend]["sync_bn"], ref(backend)["sync_bn"]
    _same(mine["weights"], r1[backend]["sync_bn"]["weights"])
    assert _max_err(mine["weights"], theirs["weights"]) < 1e-12
    assert _max_err(mine["running"], theirs["running"]) < 1e-12
    np.testing.assert_allclose(mine["history"]["loss"], theirs["history"]["loss"], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_with_validation_early_stopping_and_checkpoints_matches_one_process(
        gloo, ref, backend):
    (r0, r1), out = gloo
    a, b, one = r0[backend]["fit"], r1[backend]["fit"], ref(backend)["fit"]
    assert a["history"] == b["history"] and a["stop"] == b["stop"]  # every rank logs the same
    assert a["stop"] == one["stop"] and a["stop"].startswith("early stopping")
    assert list(a["history"]) == list(one["history"]) == ["loss", "accuracy", "val_loss",
                                                          "val_accuracy"]
    for key, values in one["history"].items():
        np.testing.assert_allclose(a["history"][key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    assert 3 < len(one["history"]["loss"]) < 40  # it did stop early
    _same(a["weights"], b["weights"])  # the restored best weights
    assert _max_err(a["weights"], one["weights"]) < 1e-5
    # rank 0 wrote the same files as one process, rank 1 none
    assert a["files"] == one["files"] and len(a["files"]) >= 3 and b["files"] == []
    assert "log.csv" in a["files"]  # CSVLogger: a header and a row per epoch, rank 0 only
    assert a["csv_rows"] == one["csv_rows"] == 1 + len(a["history"]["loss"])
    best = out / backend / "rank0" / "fit" / [f for f in a["files"] if f.endswith(".npz")][-1]
    model = W.make_model()
    model.load_weights(str(best))
    assert _max_err(model.get_weights(), one["weights"]) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_from_a_checkpoint_across_ranks(gloo, ref, backend):
    """2 epochs, rank 0 writes the checkpoint, both ranks load it into a model with other
    weights and train to epoch 4: the result of 4 epochs on one process."""
    (r0, r1), _ = gloo
    a, b, one = r0[backend]["resume"], r1[backend]["resume"], ref(backend)["resume"]
    _same(a["weights"], b["weights"])
    assert _max_err(a["weights"], one["weights"]) < 1e-6
    np.testing.assert_allclose(a["history"]["loss"], one["history"]["loss"][2:], rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_statistics_and_random_initial_weights_agree_on_every_rank(gloo, backend):
    """A model seeded differently on each rank (seed=None) with BatchNormalization and
    Dropout: rank 0's weights are broadcast, the running statistics averaged, so both ranks
    end with the same arrays, BN's running mean and variance included; and it learns."""
    (r0, r1), _ = gloo
    a, b = r0[backend]["bn_dropout"], r1[backend]["bn_dropout"]
    _same(a["weights"], b["weights"])
    assert a["history"] == b["history"]
    running = a["weights"][2:6]  # Dense W b, then BN gamma beta | running mean var
    assert any(np.any(w != 0) for w in running[2:])
    loss = a["history"]["loss"]
    assert loss[-1] < loss[0]


def test_ranks_given_different_data_all_refuse(gloo):
    (r0, r1), _ = gloo
    for r in (r0, r1):
        msg = r["numpy"]["mismatch"]
        assert msg is not None and "rank 1 has rows=(99, 20) but rank 0 has (100, 20)" in msg


@pytest.mark.parametrize("how, timeout", [("killed", 30.0), ("stalled", 4.0)])
def test_a_rank_that_dies_or_hangs_makes_the_other_fail_clearly(tmp_path, how, timeout):
    """Rank 1 is SIGKILLed (or stops answering) after 2 epochs: rank 0 raises
    DistributedError naming itself and the failed all-reduce, and does not hang: at once
    for a dead peer (the connection closes), after the timeout for a stalled one."""
    _gloo()
    start = time.monotonic()
    procs = _launch(tmp_path, ["numpy"], mode=how, timeout=timeout)
    procs[0].join(timeout + 60)
    took = time.monotonic() - start
    for p in procs:
        if p.exitcode is None:
            p.kill()
        p.join(10)
    assert procs[0].exitcode == 0, "rank 0 did not finish (hung?)"
    error = pickle.loads((tmp_path / "rank0.pkl").read_bytes())["error"]
    assert error is not None and error.startswith("rank 0 of 2: the all-reduce of epoch 3, ")
    assert "Another rank probably stopped" in error
    assert took < timeout + 45, f"rank 0 took {took:.0f} s to give up"


def test_the_example_under_torchrun_prints_the_one_process_numbers(tmp_path):
    """``torchrun --standalone --nproc-per-node 2 examples/12_distributed.py --quick``:
    the same losses, accuracies and weights checksum as on one process (to 6 digits)."""
    _gloo()
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(OMP_NUM_THREADS="1", XPNET_BACKEND="numpy",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]))
    script = [str(HERE.parent / "examples" / "12_distributed.py"), "--quick"]
    one = subprocess.run([sys.executable, *script, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=120)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", *script, "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert one.returncode == 0 and two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    assert "distributed: torch, 2 process(es)" in two.stdout
    keep = ("Epoch", "final:", "weights checksum")
    lines = [[t for t in run.stdout.splitlines() if t.startswith(keep)] for run in (one, two)]
    assert len(lines[0]) == 4 and lines[0] == lines[1]  # printed once: by rank 0


# -- mpi4py under mpirun ---------------------------------------------------------------

def test_mpirun_two_ranks_give_one_process(tmp_path, ref):
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("no mpirun here (apt-get install openmpi-bin libopenmpi-dev)")
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install 'xpnet[mpi]')")
    root = ["--allow-run-as-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", XPNET_BACKEND="numpy")
    cmd = [mpirun, *root, "--oversubscribe", "-n", "2", sys.executable,
           str(HERE / "_dist_worker.py"), str(tmp_path), "numpy"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    raw0, raw1 = (res["raw_mpi4py"] for res in _results(tmp_path))
    r0, r1 = (res["numpy"] for res in _results(tmp_path))
    one = ref("numpy")
    _same(raw0, raw1)  # fit(distributed=MPI.COMM_WORLD)
    assert _max_err(raw0, one[("steps", "adam", "float64")]) < 1e-12
    for opt in W.OPTIMIZERS:
        for dtype in ("float32", "float64"):
            key = ("steps", opt, dtype)
            _same(r0[key], r1[key])
            assert _max_err(r0[key], one[key]) < TOL[dtype], key
    assert _max_err(r0["uneven"], one["uneven"]) < 1e-12
    assert r0["fit"]["history"] == r1["fit"]["history"] and r1["fit"]["files"] == []
    for key, values in one["fit"]["history"].items():
        np.testing.assert_allclose(r0["fit"]["history"][key], values, rtol=1e-5, atol=1e-6)
    assert _max_err(r0["resume"]["weights"], one["resume"]["weights"]) < 1e-6
    _same(r0["bn_dropout"]["weights"], r1["bn_dropout"]["weights"])


# -- one process: the launcher's environment, and the no-op ----------------------------

LAUNCH_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


@pytest.fixture
def no_launcher(monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize("env", [{}, {"WORLD_SIZE": "1", "RANK": "0"},
                                 {"OMPI_COMM_WORLD_SIZE": "1"}, {"PMI_SIZE": "1"}])
def test_auto_without_a_launcher_is_a_single_process(no_launcher, env):
    for k, v in env.items():
        no_launcher.setenv(k, v)
    comm = xn.distributed.auto()
    assert (comm.kind, comm.rank, comm.size, comm.is_main) == ("single", 0, 1, True)
    buf = np.arange(3.0)
    assert comm.allreduce_sum(buf) is buf and comm.allgather_object("a") == ["a"]
    assert xn.distributed.resolve(comm) is None and xn.distributed.is_main_process()


def test_a_bad_launcher_variable_is_named(no_launcher):
    no_launcher.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match=r"\$WORLD_SIZE='two' is not an integer"):
        xn.distributed.auto()


def test_synchronized_batch_norm_on_one_process_is_plain_batch_norm(backend):
    x, y = W.data(300, seed=9)
    runs = []
    for synchronized in (False, True):
        model = W.make_model("adam", "float64", bn=True, synchronized=synchronized)
        model.fit(x, y, batch_size=50, epochs=2, seed=1, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert W.make_model(bn=True, synchronized=True).layers[1].get_config()["synchronized"]
    with pytest.raises(xn.InvalidParameterError, match="synchronized"):
        xn.layers.BatchNormalization(synchronized="yes")


def test_fit_with_a_single_communicator_is_plain_fit(backend, no_launcher):
    x, y = W.data(120)
    plain, single = W.make_model("adam"), W.make_model("adam")
    h1 = plain.fit(x, y, batch_size=32, epochs=2, seed=1, verbose=0)
    h2 = single.fit(x, y, batch_size=32, epochs=2, seed=1, verbose=0,
                    distributed=xn.distributed.auto())
    with xn.distributed.single():  # the context manager's form
        h3 = W.make_model("adam").fit(x, y, batch_size=32, epochs=2, seed=1, verbose=0)
    assert h1.history == h2.history == h3.history
    _same(plain.get_weights(), single.get_weights())


@pytest.mark.parametrize("spec", ["gloo", 2, object()])
def test_fit_refuses_what_is_not_a_communicator(spec):
    model = W.make_model()
    x, y = W.data(20)
    with pytest.raises(TypeError, match="distributed must be an xn.distributed communicator"):
        model.fit(x, y, verbose=0, distributed=spec)


@pytest.mark.parametrize("maker, module, extra", [("torch", "torch", "distributed"),
                                                  ("mpi", "mpi4py", "mpi")])
def test_a_missing_engine_names_the_extra(monkeypatch, maker, module, extra):
    for name in (module, f"{module}.distributed", f"{module}.MPI"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails
    with pytest.raises(xn.BackendUnavailableError, match=rf"pip install 'xpnet\[{extra}\]'"):
        getattr(xn.distributed, maker)()


def test_buffers_reach_torch_distributed_without_a_copy(backend):
    """The all-reduce writes into the backend's own buffer: NumPy and array-api-strict
    arrays are handed to torch through DLPack (shared memory), torch tensors as they are."""
    torch = pytest.importorskip("torch")
    from xpnet import _backend_dist

    ops = object.__new__(_backend_dist.TorchOps)  # no process group: only the hand-over
    ops.torch = torch
    buf = backend.xp.zeros((4,), dtype=backend.xp.float32, device=backend.device)
    tensor, native = ops._tensor(buf)
    assert native == (backend.name == "torch")
    tensor += 1  # what all_reduce does: write in place
    np.testing.assert_array_equal(xn.to_numpy(buf), np.ones(4, dtype=np.float32))
