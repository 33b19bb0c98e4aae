/* Compiled loops for the selection hot path (velox/kernels.py says why and what falls back).
 *
 * Arrays arrive through the buffer protocol (no numpy headers at build time); the Python
 * wrapper checks dtypes, shapes and contiguity, and this file checks buffer sizes again so a
 * wrong call raises instead of reading past an array. The GIL is released while a loop runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

typedef struct {
    float value;
    Py_ssize_t index;
} Entry;

/* a ranks below b: a lower value, or an equal value at a higher index. */
static inline int ranks_below(Entry a, Entry b) {
    return a.value < b.value || (a.value == b.value && a.index > b.index);
}

/* Restore the min-heap (worst entry at the root) below position i. */
static void sift_down(Entry *heap, Py_ssize_t size, Py_ssize_t i) {
    for (;;) {
        Py_ssize_t worst = i, left = 2 * i + 1, right = left + 1;
        if (left < size && ranks_below(heap[left], heap[worst])) worst = left;
        if (right < size && ranks_below(heap[right], heap[worst])) worst = right;
        if (worst == i) return;
        Entry tmp = heap[i];
        heap[i] = heap[worst];
        heap[worst] = tmp;
        i = worst;
    }
}

/* Offer an entry to the heap of the k best seen. Entries come in index order, so an equal
 * value never displaces the root (the earlier item ranks above it). */
static inline void offer(Entry *heap, Py_ssize_t k, float value, Py_ssize_t i) {
    if (value > heap[0].value) {
        heap[0].value = value;
        heap[0].index = i;
        sift_down(heap, k, 0);
    }
}

/* The k-th largest of values[0..n) (1 <= k <= n), reordering them (quickselect). */
static float kth_largest(float *values, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = values[lo + (hi - lo) / 2];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (values[i] > pivot) i++;
            while (values[j] < pivot) j--;
            if (i <= j) {
                float tmp = values[i];
                values[i] = values[j];
                values[j] = tmp;
                i++;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return values[want];
    }
    return values[want];
}

#define BLOCK 16

/* The k best of one row, best first, in three passes. (1) The maxima of blocks of BLOCK
 * items; when there are at least k blocks, the k-th largest maximum is a threshold that at
 * least k items reach (the maxima of those k blocks), so no item of the k best is below it.
 * (2) A heap of the k best over the items at or above the threshold, in index order (few:
 * about twice k on random scores). (3) The heap emptied worst first, written back to front.
 * `scratch` holds m / BLOCK floats. Returns -1, writing nothing, when a NaN leaves fewer than
 * k items comparable. */
static int top_k_row(const float *row, Py_ssize_t m, Py_ssize_t k, Entry *heap,
                      float *scratch, int64_t *out) {
    Py_ssize_t blocks = m / BLOCK;
    float threshold = -HUGE_VALF;
    if (blocks >= k) {
        for (Py_ssize_t b = 0; b < blocks; b++) {
            const float *block = row + b * BLOCK;
            float best = block[0];
            for (Py_ssize_t j = 1; j < BLOCK; j++) best = block[j] > best ? block[j] : best;
            scratch[b] = best;
        }
        threshold = kth_largest(scratch, blocks, k);
    }
    Py_ssize_t filled = 0, i = 0;
    for (; i < m && filled < k; i++) {
        if (row[i] >= threshold) {
            heap[filled].value = row[i];
            heap[filled].index = i;
            filled++;
        }
    }
    if (filled < k) return -1;
    for (Py_ssize_t j = k / 2 - 1; j >= 0; j--) sift_down(heap, k, j);
    for (; i < m; i++) {
        if (row[i] >= threshold) offer(heap, k, row[i], i);
    }
    for (Py_ssize_t size = k; size > 0; size--) {
        out[size - 1] = (int64_t)heap[0].index;
        heap[0] = heap[size - 1];
        sift_down(heap, size - 1, 0);
    }
    return 0;
}

static PyObject *top_k_rows_f32(PyObject *self, PyObject *args) {
    Py_buffer scores, out;
    Py_ssize_t n, m, k;
    if (!PyArg_ParseTuple(args, "y*nnnw*", &scores, &n, &m, &k, &out)) return NULL;
    PyObject *result = NULL;
    Entry *heap = NULL;
    float *scratch = NULL;
    if (n < 0 || m < 1 || k < 1 || k > m || scores.len != n * m * (Py_ssize_t)sizeof(float) ||
        out.len != n * k * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "top_k_rows_f32: buffer sizes do not match n, m, k");
        goto done;
    }
    heap = PyMem_RawMalloc((size_t)k * sizeof(Entry));
    scratch = PyMem_RawMalloc((size_t)(m / BLOCK + 1) * sizeof(float));
    if (heap == NULL || scratch == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    const float *rows = scores.buf;
    int64_t *chosen = out.buf;
    for (Py_ssize_t r = 0; r < n && failed == 0; r++)
        failed = top_k_row(rows + r * m, m, k, heap, scratch, chosen + r * k);
    Py_END_ALLOW_THREADS
    if (failed) PyErr_SetString(PyExc_ValueError, "top_k_rows_f32: scores must be finite");
    else result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(heap);
    PyMem_RawFree(scratch);
    PyBuffer_Release(&scores);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *slot_wins(PyObject *self, PyObject *args) {
    Py_buffer draws, out;
    Py_ssize_t b, c, d, n_chosen;
    if (!PyArg_ParseTuple(args, "y*nnnnw*", &draws, &b, &c, &d, &n_chosen, &out)) return NULL;
    PyObject *result = NULL;
    if (b < 0 || c < 1 || d < 1 || n_chosen < 1 || n_chosen > c ||
        draws.len != b * c * d * (Py_ssize_t)sizeof(double) ||
        out.len != b * n_chosen * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "slot_wins: buffer sizes do not match b, c, d");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    const double *all = draws.buf;
    int64_t *wins = out.buf;
    for (Py_ssize_t r = 0; r < b * n_chosen; r++) wins[r] = 0;
    for (Py_ssize_t r = 0; r < b; r++) {
        const double *block = all + r * c * d;
        int64_t *row_wins = wins + r * n_chosen;
        for (Py_ssize_t t = 0; t < d; t++) {
            /* Slot j wins draw t when it beats every candidate after it. */
            double later = -HUGE_VAL;
            for (Py_ssize_t j = n_chosen; j < c; j++) {
                double v = block[j * d + t];
                if (v > later) later = v;
            }
            for (Py_ssize_t j = n_chosen - 1; j >= 0; j--) {
                double v = block[j * d + t];
                if (v > later) {
                    row_wins[j] += 1;
                    later = v;
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&draws);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"top_k_rows_f32", top_k_rows_f32, METH_VARARGS,
     "top_k_rows_f32(scores, n, m, k, out): each row's k best indices, best first."},
    {"slot_wins", slot_wins, METH_VARARGS,
     "slot_wins(draws, b, c, d, n_chosen, out): draws each shown slot wins."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "velox._kernels", "Compiled selection loops.", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
