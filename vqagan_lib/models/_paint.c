/* Painting decoded pictures in 8 bits, in C: the last step of the slot and layered decoders' draw().

Both decoders find, in torch, which pixels each sprite lights (integer offsets or pixel indices, exact);
what is left is writing 3-byte colours at those pixels, which torch does as several passes over the
batch per slot (index arithmetic, masks, a scatter). Here each is one loop, in the same order, so it
writes the same bytes (tests/models check draw() against the float decoder with and without this file).
Optional: where it is not built, draw() paints with torch.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* paint_stamps(canvas, rows, cols, which, centres, palette, slots, looks, width, size)
   canvas (B,S,S,3) uint8, already holding the background; rows, cols (K,U,M) int64 offsets from each
   sprite's centre pixel; which (B,K) int64, each slot's look; centres (B,K,2) int64 (column, row);
   palette (K+1,3) uint8, slot k painted with palette[k+1]. Slots in order: a later one covers an earlier. */
static PyObject *paint_stamps(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer canvas, rows, cols, which, centres, palette;
    Py_ssize_t slots, looks, width, size;
    if (!PyArg_ParseTuple(args, "w*y*y*y*y*y*nnnn", &canvas, &rows, &cols, &which, &centres, &palette, &slots,
                          &looks, &width, &size))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t pixels = size * size, images = slots > 0 && size > 0 ? canvas.len / (3 * pixels) : 0;
    if (slots < 1 || looks < 1 || width < 1 || size < 1 || canvas.len != images * pixels * 3 ||
        rows.len != (Py_ssize_t)(8 * slots * looks * width) || cols.len != rows.len ||
        which.len != (Py_ssize_t)(8 * images * slots) || centres.len != 2 * which.len || palette.len != 3 * (slots + 1)) {
        PyErr_SetString(PyExc_ValueError, "paint_stamps: buffers of the wrong sizes");
        goto done;
    }
    const int64_t *row = rows.buf, *col = cols.buf, *look = which.buf, *centre = centres.buf;
    for (Py_ssize_t i = 0; i < images * slots; i++)
        if (look[i] < 0 || look[i] >= looks) {
            PyErr_SetString(PyExc_ValueError, "paint_stamps: a slot names no look");
            goto done;
        }
    uint8_t *out = canvas.buf;
    const uint8_t *colour = palette.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < images; b++) {
        uint8_t *image = out + b * pixels * 3;
        for (Py_ssize_t k = 0; k < slots; k++) {
            Py_ssize_t at = b * slots + k;
            int64_t cx = centre[2 * at], cy = centre[2 * at + 1];
            const int64_t *dy = row + (k * looks + look[at]) * width, *dx = col + (k * looks + look[at]) * width;
            const uint8_t *c = colour + 3 * (k + 1);
            for (Py_ssize_t m = 0; m < width; m++) {
                int64_t y = cy + dy[m], x = cx + dx[m];
                if (y >= 0 && y < size && x >= 0 && x < size) {
                    uint8_t *p = image + 3 * (y * size + x);
                    p[0] = c[0], p[1] = c[1], p[2] = c[2];
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&canvas), PyBuffer_Release(&rows), PyBuffer_Release(&cols);
    PyBuffer_Release(&which), PyBuffer_Release(&centres), PyBuffer_Release(&palette);
    return result;
}

/* paint_pixels(canvas, lit, colours, size): canvas (B,S,S,3) uint8; lit (N,) int32 indices into its B*S*S
   pixels; colours (B,3) uint8, each image's sprite colour, written at its lit pixels. */
static PyObject *paint_pixels(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer canvas, lit, colours;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "w*y*y*n", &canvas, &lit, &colours, &size)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t pixels = size * size, images = size > 0 ? canvas.len / (3 * pixels) : 0;
    if (size < 1 || canvas.len != images * pixels * 3 || lit.len % 4 || colours.len != 3 * images) {
        PyErr_SetString(PyExc_ValueError, "paint_pixels: buffers of the wrong sizes");
        goto done;
    }
    const int32_t *index = lit.buf;
    Py_ssize_t n = lit.len / 4;
    for (Py_ssize_t i = 0; i < n; i++)
        if (index[i] < 0 || index[i] >= images * pixels) {
            PyErr_SetString(PyExc_ValueError, "paint_pixels: a pixel index outside the canvas");
            goto done;
        }
    uint8_t *out = canvas.buf;
    const uint8_t *colour = colours.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *c = colour + 3 * (index[i] / pixels);
        uint8_t *p = out + 3 * (Py_ssize_t)index[i];
        p[0] = c[0], p[1] = c[1], p[2] = c[2];
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&canvas), PyBuffer_Release(&lit), PyBuffer_Release(&colours);
    return result;
}

static PyMethodDef methods[] = {
    {"paint_stamps", paint_stamps, METH_VARARGS, "paint each slot's stamp at its centre, in slot order"},
    {"paint_pixels", paint_pixels, METH_VARARGS, "paint each image's colour at its lit pixels"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_paint", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__paint(void) { return PyModule_Create(&module); }
