"""Everything a training run depends on, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import Loc2VecError


@dataclass
class TrainConfig:
    areas: list[str]
    out: str
    encoder: str = "loc2vec"
    embedding_dim: int = 128
    pretrained: str | None = None
    unfreeze: str | None = None  # e.g. "head:200,last:600" then all (report §4.3)
    tile_size_px: int = 128
    tile_size_m: float = 500.0
    batch_size: int = 32
    steps: int = 2000
    max_minutes: float | None = None
    lr: float = 1e-4
    weight_decay: float = 1e-5
    restart_steps: int = 500  # cosine annealing with warm restarts: first period, in steps
    grad_clip: float = 1.0
    margin: float = 0.2
    mining: str = "semi_hard"
    loss: str = "triplet"  # or "infonce": the own positive among every view of the batch (training/contrastive)
    temperature: float = 0.1  # InfoNCE
    false_negative_m: float = 300.0  # InfoNCE: candidates nearer than this to the anchor are not negatives
    uniformity_weight: float = 0.0  # weight of the uniformity term (spreads the embedding out)
    composition_weight: float = 0.0  # weight of the multi-scale composition head's squared error
    hybrid_share: float = 0.0  # > 0: the loss sees the hybrid (learned ⊕ composition, this share); export default
    composition_transform: str = "linear"  # of the hybrid's composition part: linear or sqrt
    pos_range_m: tuple[float, float] = (100.0, 200.0)
    neg_min_m: float = 2000.0
    neg_mode: str = "far"
    semantic_share: float = 0.0  # share of triplets with a far positive of like composition (report §3.6)
    max_shift_px: int = 50
    scale_jitter: float = 0.1
    noise_std: float = 0.02
    channel_dropout: float = 0.1
    intensity_jitter: float = 0.1
    built_up_weight: float = 0.0
    balance_areas: bool = False
    block_size_m: float | None = None  # None: automatic, large enough for the guard band (≈ 3 km)
    val_every: int = 100
    val_triplets: int = 256
    log_every: int = 10
    patience: int = 10  # validations without improvement before early stopping
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision, used on CUDA only
    extra: dict = field(default_factory=dict)

    def check(self) -> "TrainConfig":
        if not self.areas:
            raise Loc2VecError("no area rasters given", "loc2vec train AREA.tif [AREA2.tif ...] --out RUN_DIR")
        if not 16 <= int(self.embedding_dim) <= 512:
            raise Loc2VecError(f"embedding size {self.embedding_dim} is out of range", "use 16..512 (default 128)")
        if self.batch_size < 2:
            raise Loc2VecError(f"batch size {self.batch_size} is too small for triplet mining", "use at least 2")
        if self.tile_size_px < 32:
            raise Loc2VecError(f"tile size {self.tile_size_px} px is too small", "use at least 32 (default 128)")
        if self.steps < 1 or self.val_every < 1:
            raise Loc2VecError("steps and val-every must be positive", "e.g. --steps 2000 --val-every 100")
        if self.loss not in ("triplet", "infonce"):
            raise Loc2VecError(f"unknown loss {self.loss!r}", "use triplet or infonce")
        if not self.temperature > 0 or self.false_negative_m < 0:
            raise Loc2VecError("temperature must be > 0 and the false-negative radius >= 0",
                               "e.g. --temperature 0.1 --false-negative-m 300")
        if self.uniformity_weight < 0 or self.composition_weight < 0:
            raise Loc2VecError("loss weights must be >= 0", "e.g. --uniformity-weight 0.1 --composition-weight 1")
        if not 0 <= self.hybrid_share < 1 or self.composition_transform not in ("linear", "sqrt"):
            raise Loc2VecError(f"hybrid training share {self.hybrid_share} / transform {self.composition_transform!r} "
                               "is out of range", "use e.g. --hybrid-share 0.5 --composition-transform sqrt "
                               "(share 0 = train the learned embedding alone)")
        if self.hybrid_share and self.composition_weight:
            raise Loc2VecError("the composition head and hybrid training exclude each other: the hybrid already "
                               "holds the composition", "drop --composition-weight, or --hybrid-share")
        if not 0 <= self.semantic_share <= 1:
            raise Loc2VecError(f"semantic positives share {self.semantic_share} is out of range",
                               "use a fraction, e.g. --semantic-positives 0.5 (0 = near positives only)")
        if self.mining not in ("none", "batch_hard", "semi_hard"):
            raise Loc2VecError(f"unknown mining {self.mining!r}", "use none, batch_hard or semi_hard")
        return self

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        data = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in data.items() if k in known})
        cfg.pos_range_m = tuple(cfg.pos_range_m)
        return cfg
