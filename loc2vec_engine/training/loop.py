"""The training loop: triplets cut on the device -> encoder -> mined triplet loss -> checkpoints.

One function, ``train(config)``, used by ``loc2vec train``, the QGIS algorithm and ``torchrun``
(DDP: one process per GPU, or per CPU process on the gloo back-end). Rank 0 writes the run folder:
``config.json``, ``metrics.csv``, ``curves.png``, ``last.pt``, ``best.pt``, ``summary.json``.
``resume=True`` continues exactly where ``last.pt`` stopped: model, optimizer, scheduler, scaler,
step and every random generator, so the resumed run draws the same batches it would have drawn.
On the CPU, where a core is spare, the next batch is sampled in a thread while the current one trains.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import Loc2VecError
from ..progress import Cancelled, Progress
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .hybrid import hybrid_for_training
from .objective import composition_aux_head, objective

# mean_cos, eff_rank: embedding health of the validation anchors (evaluation.health), at each validation.
METRIC_FIELDS = ["step", "elapsed_s", "lr", "train_loss", "train_acc", "active", "val_acc", "mean_cos", "eff_rank"]


@dataclass
class RunResult:
    run_dir: Path
    step: int
    best_val_acc: float
    baseline_val_acc: float
    stopped: str  # "steps", "time", "early", "cancelled"


def train(cfg: TrainConfig, resume: bool = False, progress=None, prefetch: bool | None = None) -> RunResult:
    """Train an encoder as ``cfg`` says; ``progress(fraction, message) -> True`` cancels (after a checkpoint).

    ``prefetch``: sample the next batch in a thread during the step (True), before it (False), or the
    former when a CPU core is spare (None; ``prefetch.spare_core``). The batches, so the run, are the same.
    """
    import torch

    cfg.check()
    dist = _Distributed.from_env()
    run = Path(cfg.out)
    if dist.rank == 0:
        _prepare_run_dir(run, cfg, resume)
    dist.barrier()
    if resume:
        cfg = _resumed_config(run, cfg)
    device = _device(cfg.device, dist)
    torch.manual_seed(cfg.seed + dist.rank)

    areas = _load_areas(cfg)
    model, meta = _build_model(cfg, areas, device)
    train_sampler, val_triplets = _samplers(cfg, areas, device, dist.rank)
    augment = _augment(cfg, device, dist.rank)
    aux = composition_aux_head(cfg, model, areas, device)
    net = hybrid_for_training(cfg, model, areas, device) or model  # what the loss and validation see
    if net is not model:  # the statistics trained with travel in every checkpoint: export reuses them
        meta["trained_hybrid"] = {"share": net.share, "composition": net.meta["hybrid"]["composition"]}
    params = list(model.parameters()) + (list(aux.parameters()) if aux is not None else [])
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=max(cfg.restart_steps, 1))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    step, best = 0, -1.0
    if resume:
        ck = load_checkpoint(run / "last.pt")
        model.load_state_dict(ck["model"])
        if aux is not None:
            aux.load_state_dict(ck["aux"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        step, best = int(ck["step"]), float(ck["best"])
        _restore_rng(ck["rng"], train_sampler, augment, dist.rank)
        if dist.rank == 0:
            _truncate_metrics(run / "metrics.csv", step)
    ddp_model = dist.wrap(net, device)

    baseline_acc = _baseline_accuracy(val_triplets, train_sampler)
    log = _MetricsLog(run / "metrics.csv", enabled=dist.rank == 0)
    t0, elapsed_before = time.monotonic(), _elapsed_at(run, step)
    stale, stopped = 0, "steps"
    window = {"loss": 0.0, "acc": 0.0, "active": 0.0, "n": 0}
    if step == 0:  # the untrained model, so the curve shows what training added
        acc, health = _validate(net, val_triplets, cfg.batch_size)
        log.write({"step": 0, "elapsed_s": 0.0, "lr": cfg.lr, "train_loss": "", "train_acc": "", "active": "",
                   "val_acc": acc, **health})
    bar = Progress(total=cfg.steps, desc="train", callback=progress, enabled=progress is None and dist.rank == 0)
    bar.done = step
    # Started only now: the baseline above used the sampler (its lazy caches), and from here the thread owns it.
    feed = _feed(train_sampler, cfg.batch_size, device, prefetch if step < cfg.steps else False, dist.local_world)
    try:
        while step < cfg.steps:
            _apply_unfreeze(cfg, model, step)
            model.train()
            trip = feed.next()
            x = torch.cat([augment(trip.anchor), augment(trip.positive), augment(trip.negative)])
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                emb = ddp_model(x)
            ea, ep, en = emb.float().split(cfg.batch_size)
            loss, stats = objective(cfg, ea, ep, en, trip, aux)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            window["loss"] += loss.item()
            window["acc"] += float(stats["accuracy"])
            window["active"] += float(stats.get("active", 0.0))
            window["n"] += 1
            elapsed = elapsed_before + time.monotonic() - t0
            row = None
            if step % cfg.log_every == 0 or step % cfg.val_every == 0 or step == cfg.steps:
                n = max(window["n"], 1)
                row = {"step": step, "elapsed_s": round(elapsed, 2), "lr": opt.param_groups[0]["lr"],
                       "train_loss": window["loss"] / n, "train_acc": window["acc"] / n,
                       "active": window["active"] / n, "val_acc": ""}
                window = {"loss": 0.0, "acc": 0.0, "active": 0.0, "n": 0}
            out_of_time = cfg.max_minutes is not None and elapsed > cfg.max_minutes * 60
            if step % cfg.val_every == 0 or step == cfg.steps or out_of_time:
                acc, health = _validate(net, val_triplets, cfg.batch_size)
                if row is None:
                    row = {"step": step, "elapsed_s": round(elapsed, 2), "lr": opt.param_groups[0]["lr"],
                           "train_loss": "", "train_acc": "", "active": "", "val_acc": ""}
                row["val_acc"] = acc
                row.update(health)
                improved = acc > best
                best, stale = (acc, 0) if improved else (best, stale + 1)
                if dist.rank == 0:
                    payload = _payload(model, meta, opt, sched, scaler, step, best, feed, augment, cfg, aux)
                    save_checkpoint(run / "last.pt", payload)
                    if improved:
                        save_checkpoint(run / "best.pt", payload)
                log.write(row)
                row = None
                if dist.rank == 0:
                    _plot_curves(run / "metrics.csv", run / "curves.png", baseline_acc)
                if stale >= cfg.patience:
                    stopped = "early"
            if row is not None:
                log.write(row)
            bar.update(1, f"loss {loss.item():.3f} acc {float(stats['accuracy']):.2f} best val {max(best, 0):.3f}")
            if out_of_time:
                stopped = "time"
            if stopped != "steps":
                break
    except Cancelled:
        stopped = "cancelled"
        if dist.rank == 0:
            save_checkpoint(run / "last.pt",
                            _payload(model, meta, opt, sched, scaler, step, best, feed, augment, cfg, aux))
    except torch.cuda.OutOfMemoryError:
        raise Loc2VecError(f"the GPU ran out of memory at batch size {cfg.batch_size} with {cfg.tile_size_px}-px tiles",
                           f"use a smaller --batch-size (e.g. {max(cfg.batch_size // 2, 2)}) or --tile-size") from None
    finally:
        feed.close()  # before anything else: a sampler thread must not outlive the run, whatever stopped it
        bar.close()
        dist.close()
    result = RunResult(run, step, best, baseline_acc, stopped)
    if Path(run).is_dir() and dist.rank == 0:
        summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
        (run / "summary.json").write_text(json.dumps(summary, indent=2))
    return result


# ---- set-up ------------------------------------------------------------------------------------

def _prepare_run_dir(run: Path, cfg: TrainConfig, resume: bool) -> None:
    if resume:
        if not (run / "last.pt").is_file():
            raise Loc2VecError(f"nothing to resume in {run}: no last.pt", "start a new run without --resume")
        return
    if (run / "last.pt").exists():
        raise Loc2VecError(f"run folder {run} already holds a run", "continue it with --resume, or choose another --out")
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Loc2VecError(f"cannot create run folder {run}: {e.strerror}", "choose a folder you can write to") from None
    cfg.save(run / "config.json")


def _resumed_config(run: Path, cfg: TrainConfig) -> TrainConfig:
    """The saved config, with the budget (steps, minutes) the resuming command asks for."""
    saved = TrainConfig.load(run / "config.json")
    saved.steps, saved.max_minutes, saved.device = cfg.steps, cfg.max_minutes, cfg.device
    return saved


def _device(name: str, dist):
    import torch

    if name == "auto":
        name = f"cuda:{dist.local_rank}" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise Loc2VecError("CUDA was asked for but no GPU is visible", "use --device cpu, or check the driver")
    return torch.device(name)


def _load_areas(cfg: TrainConfig):
    from ..channels import get_spec
    from ..tiles import PalettedArea

    spec = get_spec(cfg.extra.get("spec", "default"))
    return [PalettedArea.from_raster(p, spec=spec) for p in cfg.areas]


def _build_model(cfg: TrainConfig, areas, device):
    from ..encoders import create_encoder

    model = create_encoder(cfg.encoder, in_channels=areas[0].count, embedding_dim=cfg.embedding_dim,
                           pretrained=cfg.pretrained).to(device)
    # What export and inference need to cut tiles the way the model saw them.
    meta = dict(model.meta)
    meta.update(tile_size_px=cfg.tile_size_px, tile_size_m=cfg.tile_size_m, channel_names=list(areas[0].channel_names),
                training_areas=[Path(a).name for a in cfg.areas])
    return model, meta


def _blocks(cfg: TrainConfig, areas) -> list:
    """Train/val/test blocks per area. An area too small to hold all three (a city centre extract)
    goes wholly to training, so that validation only ever sees ground of the larger areas."""
    from .blocks import auto_block_m, guard_margin_m, split_blocks

    out, train_only = [], []
    for area in areas:
        margin = guard_margin_m(cfg.tile_size_m, 1 + cfg.scale_jitter, cfg.max_shift_px * area.pixel_size)
        block = cfg.block_size_m or auto_block_m(margin)
        split = split_blocks(area, block_m=block, seed=cfg.seed)
        if not all(split.allowed(s, margin).any() for s in ("train", "val", "test")):
            split = split_blocks(area, block_m=block, fractions=(1.0, 0.0, 0.0), seed=cfg.seed)
            train_only.append(len(out))
        out.append(split)
    if len(train_only) == len(out):
        raise Loc2VecError("no area is large enough for separate train, validation and test blocks",
                           "add a larger area raster (e.g. a whole town, ≥ 10 x 10 km), or use smaller tiles")
    return out, train_only


def _samplers(cfg: TrainConfig, areas, device, rank: int):
    from .triplets import TripletSampler

    blocks, train_only = _blocks(cfg, areas)
    common = dict(tile_size_px=cfg.tile_size_px, tile_size_m=cfg.tile_size_m, pos_range_m=tuple(cfg.pos_range_m),
                  neg_min_m=cfg.neg_min_m, max_shift_px=cfg.max_shift_px, scale_jitter=cfg.scale_jitter,
                  device=device, backend=_sampler_backend(device))
    train_s = TripletSampler(areas, split="train", seed=cfg.seed + 1000 * rank, built_up_weight=cfg.built_up_weight,
                             balance_areas=cfg.balance_areas, neg_mode=cfg.neg_mode, semantic_share=cfg.semantic_share,
                             blocks=blocks, **common)
    held = [i for i in range(len(areas)) if i not in train_only]
    val_s = TripletSampler([areas[i] for i in held], split="val", seed=cfg.seed, blocks=[blocks[i] for i in held],
                           **common)
    return train_s, val_s.fixed(cfg.val_triplets, seed=cfg.seed)


def _sampler_backend(device) -> str:
    """numba on the CPU (the torch back-end there is ≈ 10x slower); torch gathers on a GPU."""
    return "cpu" if device.type == "cpu" else "torch"


def _feed(sampler, batch_size: int, device, prefetch: bool | None, processes: int):
    """Where training batches come from. On the numba back-end a thread can draw the next batch during the
    step (its kernels release the GIL); by default only with a core to spare, as without one it slowed
    the step. On a GPU the torch back-end's kernels already run asynchronously, and a thread would add
    CUDA's per-thread device state for little gain, so batches are drawn in line."""
    import torch

    from .prefetch import DirectFeed, Prefetcher, spare_core

    if prefetch is None:
        prefetch = spare_core(torch.get_num_threads(), processes)
    if prefetch and _sampler_backend(device) == "cpu":
        return Prefetcher(sampler, batch_size)
    return DirectFeed(sampler, batch_size)


def _augment(cfg: TrainConfig, device, rank: int):
    from .augment import Augment

    return Augment(noise_std=cfg.noise_std, channel_dropout=cfg.channel_dropout,
                   intensity_jitter=cfg.intensity_jitter, seed=cfg.seed + 7 + 1000 * rank, device=device)


def _apply_unfreeze(cfg: TrainConfig, model, step: int) -> None:
    """``--unfreeze head:200,last:600``: only the head trains for 200 steps, then the last stages, then all."""
    if not cfg.unfreeze:
        return
    from ..encoders import set_trainable

    stage = "all"
    for part in reversed(cfg.unfreeze.split(",")):
        name, _, until = part.partition(":")
        if step < int(until):
            stage = name
    if getattr(model, "_loc2vec_stage", None) != stage:
        set_trainable(model, stage)
        model._loc2vec_stage = stage


# ---- validation ----------------------------------------------------------------------------------

def _validate(model, triplets, batch_size: int) -> tuple[float, dict]:
    """Triplet accuracy on the validation triplets, and the health of the anchors' embeddings
    (``mean_cos``, ``eff_rank``: a collapsing embedding shows before the accuracy says why)."""
    import torch

    from ..evaluation.health import effective_rank, mean_pairwise_cosine

    model.eval()
    hits, total, anchors = 0, 0, []
    with torch.no_grad():
        for i in range(0, triplets.anchor.shape[0], batch_size):
            sl = slice(i, i + batch_size)
            a, p, n = (model(t[sl]).float() for t in (triplets.anchor, triplets.positive, triplets.negative))
            hits += int(((a - p).pow(2).sum(1) < (a - n).pow(2).sum(1)).sum())
            total += a.shape[0]
            anchors.append(a.cpu())
    e = torch.cat(anchors).numpy() if anchors else None
    health = {"mean_cos": mean_pairwise_cosine(e), "eff_rank": effective_rank(e)} if e is not None and len(e) > 1 \
        else {"mean_cos": "", "eff_rank": ""}
    return hits / max(total, 1), health


def _baseline_accuracy(val, train_sampler) -> float:
    """The no-learning baseline on the same validation triplets: standardised channel fractions."""
    from .baselines import FractionsBaseline, channel_fractions

    ref = train_sampler.fixed(256, seed=12345)
    base = FractionsBaseline.fit(channel_fractions(ref.anchor))
    ea, ep, en = (base.embed(channel_fractions(t)) for t in (val.anchor, val.positive, val.negative))
    d_ap = ((ea - ep) ** 2).sum(1)
    d_an = ((ea - en) ** 2).sum(1)
    return float((d_ap < d_an).float().mean()) if hasattr(d_ap, "float") else float((d_ap < d_an).mean())


# ---- state ----------------------------------------------------------------------------------------

def _payload(model, meta, opt, sched, scaler, step, best, feed, augment, cfg, aux=None) -> dict:
    """Everything ``resume`` needs. The sampler state comes from ``feed``: with prefetching, the state before
    the batch drawn ahead but not yet trained on, so the resumed run draws that batch again."""
    import torch

    rng = {"torch": torch.get_rng_state(), "sampler": feed.state_dict(), "augment": augment.state_dict()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    payload = {"model": model.state_dict(), "meta": meta, "optimizer": opt.state_dict(),
               "scheduler": sched.state_dict(), "scaler": scaler.state_dict(), "step": step, "best": best, "rng": rng,
               "config": asdict(cfg)}
    if aux is not None:  # the composition head: trained with the encoder, needed to resume, never exported
        payload["aux"] = aux.state_dict()
    return payload


def _restore_rng(rng: dict, sampler, augment, rank: int) -> None:
    import torch

    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    sampler.load_state_dict(rng["sampler"])
    augment.load_state_dict(rng["augment"])


def _elapsed_at(run: Path, step: int) -> float:
    """Training time already spent before ``step`` (from metrics.csv), so --max-minutes spans resumes."""
    path = run / "metrics.csv"
    if step == 0 or not path.is_file():
        return 0.0
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    return float(rows[-1]["elapsed_s"]) if rows else 0.0


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint: the resumed run writes them again."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    tmp = path.with_suffix(".csv.part")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


class _MetricsLog:
    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled and not path.exists():
            with open(path, "w", newline="") as f:
                csv.DictWriter(f, fieldnames=METRIC_FIELDS).writeheader()

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=METRIC_FIELDS).writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _plot_curves(metrics: Path, out: Path, baseline_acc: float) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..atomic import atomic_output

    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    tr = [(int(r["step"]), float(r["train_loss"]), float(r["train_acc"])) for r in rows if r["train_loss"]]
    va = [(int(r["step"]), float(r["val_acc"])) for r in rows if r["val_acc"]]
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    if tr:
        ax1.plot([r[0] for r in tr], [r[1] for r in tr], color="#d7191c")
    ax1.set(xlabel="step", ylabel="triplet loss", title="training loss")
    if tr:
        ax2.plot([r[0] for r in tr], [r[2] for r in tr], color="#fdae61", label="train (mined batch)")
    if va:
        ax2.plot([r[0] for r in va], [r[1] for r in va], "o-", color="#2c7bb6", label="validation (held-out blocks)")
    if not math.isnan(baseline_acc):
        ax2.axhline(baseline_acc, ls="--", color="#666666", label=f"channel-fractions baseline {baseline_acc:.3f}")
    ax2.set(xlabel="step", ylabel="triplet accuracy", title="triplet accuracy", ylim=(0.4, 1.0))
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png")


class _Distributed:
    """torchrun's environment: DDP when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPUs), a no-op otherwise."""

    def __init__(self, rank=0, world=1, local_rank=0):
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))  # processes sharing this machine's cores

    @classmethod
    def from_env(cls):
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch
        import torch.distributed as td

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not td.is_initialized():
            td.init_process_group(backend=backend)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        return cls(td.get_rank(), world, local)

    def wrap(self, model, device):
        if self.world <= 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def barrier(self):
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def close(self):
        if self.world > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()
