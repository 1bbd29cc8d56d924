"""Seeds derived from integer keys: per-sample and per-step random streams that survive a resume.

A stream keyed by (run seed, epoch, index) or (run seed, rank, step) is a pure
function of its keys, so a resumed run draws exactly what the uninterrupted
run would have drawn, without saving generator states.
"""

from __future__ import annotations

_M64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """One round of SplitMix64: a bijective 64-bit mixer with good avalanche."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def mix_keys(keys: tuple[int, ...]) -> int:
    """A 64-bit hash of integer keys (order matters; negative keys wrap modulo 2**64)."""
    h = 0
    for k in keys:
        h = splitmix64(h ^ (int(k) & _M64))
    return h


def pcg_state(keys: tuple[int, ...]) -> tuple[int, int]:
    """A 128-bit PCG64 state and odd increment derived from integer keys."""
    h = mix_keys(keys)
    a, b, c, d = (splitmix64(h ^ i) for i in (1, 2, 3, 4))
    return (a << 64) | b, ((c << 64) | d) | 1


def torch_seed(keys: tuple[int, ...]) -> int:
    """A seed for ``torch.Generator.manual_seed`` (63 bits) derived from integer keys."""
    return mix_keys(keys) >> 1
