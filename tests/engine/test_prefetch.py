"""Batches sampled one step ahead in a thread: the same batches and the same run as without, resumable, stoppable."""

import csv
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from loc2vec_engine.errors import Loc2VecError  # noqa: E402
from loc2vec_engine.training.checkpoint import load_checkpoint  # noqa: E402
from loc2vec_engine.training.config import TrainConfig  # noqa: E402
from loc2vec_engine.training.loop import train  # noqa: E402
from loc2vec_engine.training.prefetch import THREAD_NAME, Prefetcher, spare_core  # noqa: E402
from loc2vec_engine.training.triplets import TripletSampler  # noqa: E402

TINY = dict(encoder="loc2vec", embedding_dim=32, tile_size_px=32, batch_size=16, val_every=10, val_triplets=64,
            log_every=5, lr=1e-3, device="cpu")
STEPS = 20


def _sampler(area, seed=3):
    return TripletSampler([area], split="train", tile_size_px=32, backend="cpu", seed=seed)


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


def _same_batch(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in ((a.anchor, b.anchor), (a.negative, b.negative),
                                               (a.centres_m, b.centres_m)))


def _wait_until(condition, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_batches_are_the_samplers_own_sequence(andorra_area):
    direct = _sampler(andorra_area)
    with Prefetcher(_sampler(andorra_area), 8) as ahead:
        for _ in range(3):
            assert _same_batch(ahead.next(), direct.sample(8))


def test_saved_state_is_the_one_before_the_unconsumed_batch(andorra_area):
    """The thread has already drawn further; a sampler restored from the saved state draws the next batch."""
    sampler = _sampler(andorra_area)
    ahead = Prefetcher(sampler, 8, depth=2)
    ahead.next(), ahead.next()
    _wait_until(lambda: ahead._queue.full())  # two more batches drawn: the sampler is well past the third
    saved = ahead.state_dict()
    assert sampler.state_dict()["numpy"] != saved["numpy"]
    third = ahead.next()
    ahead.close()
    restored = _sampler(andorra_area, seed=99)
    restored.load_state_dict(saved)
    assert _same_batch(restored.sample(8), third)


def test_state_before_any_batch_is_the_starting_state(andorra_area):
    sampler = _sampler(andorra_area)
    start = sampler.state_dict()
    with Prefetcher(sampler, 8) as ahead:
        assert ahead.state_dict() == start


def test_a_sampler_error_is_raised_in_the_caller(andorra_area):
    ahead = Prefetcher(_sampler(andorra_area), 0)
    with pytest.raises(Loc2VecError, match="batch_size must be a positive integer"):
        ahead.next()
    ahead.close()
    assert not _prefetch_threads()


def test_close_stops_a_thread_waiting_on_a_full_queue(andorra_area):
    ahead = Prefetcher(_sampler(andorra_area), 8)
    ahead.next()
    _wait_until(lambda: ahead._queue.full())
    t = time.monotonic()
    ahead.close()
    assert time.monotonic() - t < 5.0
    assert not _prefetch_threads()
    with pytest.raises(Loc2VecError, match="after the prefetch thread had stopped"):
        ahead.next()


def test_the_main_threads_torch_thread_count_is_kept(andorra_area):
    before = torch.get_num_threads()
    with Prefetcher(_sampler(andorra_area), 8) as ahead:
        ahead.next()
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("threads, processes, cores, spare", [
    (2, 1, 2, False),   # torch's team fills both cores: sample in line
    (1, 1, 2, True),
    (1, 2, 2, False),   # two DDP processes of one thread each
    (8, 1, 16, True),   # torch's default on a hyper-threaded 8-core machine
])
def test_spare_core(threads, processes, cores, spare):
    assert spare_core(threads, processes, cores) is spare


# ---- in the training loop ----------------------------------------------------------------------------

def _rows(run):
    with open(Path(run) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _cfg(area, run):
    return TrainConfig(areas=[str(area)], out=str(run), steps=STEPS, **TINY)


def _assert_same_run(a, b):
    ra, rb = _rows(a), _rows(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb):
        for key in ("train_loss", "train_acc", "val_acc"):
            if x[key]:
                assert float(x[key]) == pytest.approx(float(y[key]), rel=1e-4, abs=1e-5), (x["step"], key)
    states = [load_checkpoint(Path(r) / "last.pt")["rng"]["sampler"] for r in (a, b)]
    assert states[0] == states[1]


@pytest.fixture(scope="module")
def straight(andorra_area, tmp_path_factory):
    """An uninterrupted run with prefetching."""
    run = tmp_path_factory.mktemp("prefetch") / "straight"
    train(_cfg(andorra_area, run), progress=lambda f, m: False, prefetch=True)
    assert not _prefetch_threads()
    return run


def test_prefetch_gives_the_same_run_as_sampling_in_line(straight, andorra_area, tmp_path):
    train(_cfg(andorra_area, tmp_path / "inline"), progress=lambda f, m: False, prefetch=False)
    _assert_same_run(straight, tmp_path / "inline")


def test_cancel_between_checkpoints_then_resume_continues_exactly(straight, andorra_area, tmp_path):
    """Cancelled at step 5 (a log row, no validation), with a batch drawn ahead: the resumed run draws it again."""
    run = tmp_path / "cancelled"
    result = train(_cfg(andorra_area, run), progress=lambda f, m: f >= 5 / STEPS, prefetch=True)
    assert (result.stopped, result.step) == ("cancelled", 5)
    assert not _prefetch_threads()
    assert load_checkpoint(run / "last.pt")["step"] == 5
    assert train(_cfg(andorra_area, run), resume=True, progress=lambda f, m: False, prefetch=True).step == STEPS
    _assert_same_run(straight, run)


def test_ctrl_c_stops_the_thread(andorra_area, tmp_path):
    def interrupt(fraction, message):
        if fraction >= 3 / STEPS:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(andorra_area, tmp_path / "interrupted"), progress=interrupt, prefetch=True)
    assert not _prefetch_threads()
