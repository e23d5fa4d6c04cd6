"""Two array helpers for tall, narrow arrays (many scenarios, few columns), used by the kernel.

``blocked_matmul(a, b, out=None)``: ``a @ b`` computed in blocks of rows small enough that OpenBLAS runs each
GEMM on one thread (it threads above ``M * N * K = 65536 * 4``); its threaded GEMM on these skinny
shapes is slower than one thread, and much slower when the cores are shared with other processes.

``Scratch``: arrays kept between calls, by name, for a loop over same-sized batches: a fresh large
array costs page faults and zeroing each time the allocator hands memory back to the system, about
as much as the arithmetic on it here.

``column_extremes(a)``: ``(a.min(axis=0), a.max(axis=0))`` by halving the rows with element-wise
``minimum`` / ``maximum`` on contiguous halves: the same values, several times faster than numpy's
axis-0 reductions on such arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from risk.arrays import FloatArray

__all__ = ["Scratch", "blocked_matmul", "column_extremes"]

_BLAS_SINGLE_THREAD_MNK = 262_144


def blocked_matmul(a: FloatArray, b: FloatArray, out: FloatArray | None = None) -> FloatArray:
    n, k = a.shape
    m = b.shape[1]
    if out is None:
        out = np.empty((n, m))
    rows = max(64, _BLAS_SINGLE_THREAD_MNK // max(1, k * m))
    for i in range(0, n, rows):
        np.matmul(a[i : i + rows], b, out=out[i : i + rows])
    return out


class Scratch:
    def __init__(self) -> None:
        self._arrays: dict[str, npt.NDArray[Any]] = {}

    def get(
        self, name: str, shape: tuple[int, ...], dtype: type[np.generic] = np.float64
    ) -> npt.NDArray[Any]:
        """An uninitialized array of that shape and dtype (the same memory as the last call by that
        name when it fits: the caller must be done with the last one)."""
        have = self._arrays.get(name)
        size = int(np.prod(shape))
        if have is None or have.dtype != dtype or have.size < size:
            have = np.empty(size, dtype=dtype)
            self._arrays[name] = have
        return have[:size].reshape(shape)


def column_extremes(a: FloatArray) -> tuple[FloatArray, FloatArray]:
    lo, hi = a, a
    while lo.shape[0] > 64:
        h = lo.shape[0] // 2
        nlo, nhi = np.minimum(lo[:h], lo[h : 2 * h]), np.maximum(hi[:h], hi[h : 2 * h])
        if lo.shape[0] % 2 == 1:
            np.minimum(nlo[0], lo[-1], out=nlo[0])
            np.maximum(nhi[0], hi[-1], out=nhi[0])
        lo, hi = nlo, nhi
    return lo.min(axis=0), hi.max(axis=0)
