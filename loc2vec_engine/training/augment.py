"""Channel-wise augmentation of float tiles on their device (report §3.4.2), seeded and batched.

Per tile and channel: an intensity factor in [1 - jitter, 1 + jitter] (data of different quality),
Gaussian noise (mapping errors), then the whole channel zeroed with probability ``channel_dropout``
(a layer missing from the map: dropped last, so a missing layer is all zero, not noise), and a clamp
to [0, 1]. Geometric augmentation is the triplet sampler's job (rotation, shift, scale of the cut).
"""

from __future__ import annotations

import math

from ..errors import Loc2VecError


class Augment:
    """``augment(x)``: x (B, C, S, S) float in [0, 1] -> a new augmented tensor (x is not modified).

    Every random draw comes from one torch Generator on x's device, seeded by ``seed``;
    ``state_dict()`` / ``load_state_dict()`` save and restore it, so a resumed run augments alike.
    A switch of 0 (or ``enabled=False``) draws nothing for that step.
    """

    def __init__(self, noise_std: float = 0.02, channel_dropout: float = 0.1, intensity_jitter: float = 0.1,
                 seed: int = 0, device=None, enabled: bool = True):
        for name, v, hi in (("noise_std", noise_std, 1.0), ("channel_dropout", channel_dropout, 1.0),
                            ("intensity_jitter", intensity_jitter, 1.0)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= hi:
                raise Loc2VecError(f"{name}={v!r} is out of range", f"use a number in 0..{hi:g} (0 = off)")
        self.noise_std, self.channel_dropout, self.intensity_jitter = float(noise_std), float(channel_dropout), \
            float(intensity_jitter)
        self.enabled, self.seed = bool(enabled), int(seed)
        self._gen = None
        if device is not None:
            self.generator(device)

    def generator(self, device):
        """The generator on ``device``'s type, made on first use (CUDA generators live on their device)."""
        import torch

        device = torch.device(device)
        if self._gen is None:
            self._gen = torch.Generator(device=device)
            self._gen.manual_seed(self.seed)
        elif self._gen.device.type != device.type:
            raise Loc2VecError(f"this augment draws on {self._gen.device.type}, the tiles are on {device.type}",
                               "make one Augment per device (device=...)")
        return self._gen

    def __call__(self, x):
        import torch

        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise Loc2VecError("augment expects float tiles (B, C, S, S)",
                               "pass the tiles of a Triplets batch (float32 in [0, 1])")
        if not self.enabled or not (self.noise_std or self.channel_dropout or self.intensity_jitter):
            return x.clone()
        g = self.generator(x.device)
        b, c = x.shape[:2]
        out = x.clone()
        if self.intensity_jitter:
            f = torch.rand((b, c, 1, 1), generator=g, device=x.device, dtype=x.dtype)
            out.mul_(1.0 - self.intensity_jitter + 2.0 * self.intensity_jitter * f)
        if self.noise_std:
            out.add_(torch.randn(out.shape, generator=g, device=x.device, dtype=x.dtype), alpha=self.noise_std)
        if self.channel_dropout:
            keep = torch.rand((b, c, 1, 1), generator=g, device=x.device) >= self.channel_dropout
            out.mul_(keep.to(x.dtype))
        return out.clamp_(0.0, 1.0)

    def state_dict(self) -> dict:
        """The generator state (a CPU uint8 tensor, None before first use; ``torch.load(weights_only=True)`` safe)."""
        return {"generator": None if self._gen is None else self._gen.get_state(), "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        try:
            st = state["generator"]
            if st is None:
                self._gen = None  # not used yet: start afresh from the seed
                self.seed = int(state["seed"])
            else:
                self.generator(self._gen.device if self._gen is not None else "cpu").set_state(st.cpu())
        except (KeyError, TypeError, AttributeError, RuntimeError) as e:
            raise Loc2VecError(f"not an augment state for this device ({e})",
                               "pass what Augment.state_dict() returned, on an Augment made with the same device") \
                from None
