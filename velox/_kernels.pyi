"""Types of the compiled selection loops (velox/_kernels.c).

The array arguments are C-contiguous buffers (float32 scores, float64 draws, int64 out),
checked at run time: numpy's stubs declare the buffer protocol only from Python 3.12.
"""

def top_k_rows_f32(scores: object, n: int, m: int, k: int, out: object) -> None: ...
def slot_wins(draws: object, b: int, c: int, d: int, n_chosen: int, out: object) -> None: ...
