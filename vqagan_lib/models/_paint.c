/* Drawing decoded pictures in 8 bits, in C: the last steps of the slot and layered decoders' draw().

The slot decoder finds, in torch, which pixels each sprite lights (integer offsets, exact); what is left is
writing 3-byte colours there, which torch does as several passes over the batch per slot (index arithmetic,
masks, a scatter) and here is one loop in the same order, so it writes the same bytes. The layered decoder's
sprites are sampled here too (lit_pixels), with every sample too near the 0.5 threshold to be sure of left to
torch's grid_sample. tests/models check draw() against the float decoder with and without this file.
Optional: where it is not built, draw() samples and paints with torch.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
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

/* lit_pixels(masks, sprite, which, gx, gy, size, margin, lit, unsure) -> (lit count, unsure count)
   The layered decoder's sprites masks (U,T,T) float32 sampled as grid_sample samples them (bilinear, zero
   padding, align_corners=False) at each image's columns gx (B,S) and rows gy (B,S) float32, sprite which (B,)
   int64. A pixel whose value is above 0.5 by more than `margin` goes to lit (int32 indices into the B*S*S
   pixels); one within `margin` of 0.5 goes to unsure, for torch's grid_sample to settle. The sums here are
   in doubles from the same float32 inputs, so they differ from grid_sample's float32 arithmetic by far less
   than any margin worth using (1e-4 by default, against errors of about 1e-6): a pixel decided here is decided
   as grid_sample decides it. Samples at |g| >= 1 + 1/T read padding alone and are 0, so only the columns
   and rows inside that bound are visited. */
static PyObject *lit_pixels(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer masks, which, gx, gy, lit, unsure;
    Py_ssize_t sprite, size;
    double margin;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*ndw*w*", &masks, &sprite, &which, &gx, &gy, &size, &margin, &lit, &unsure))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t images = which.len / 8, cells = sprite * sprite, looks = cells > 0 ? masks.len / 4 / cells : 0;
    if (sprite < 1 || size < 1 || masks.len != 4 * looks * cells || gx.len != 4 * images * size || gy.len != gx.len ||
        lit.len < 4 * images * size * size || unsure.len < lit.len) {
        PyErr_SetString(PyExc_ValueError, "lit_pixels: buffers of the wrong sizes");
        goto done;
    }
    const int64_t *look = which.buf;
    for (Py_ssize_t b = 0; b < images; b++)
        if (look[b] < 0 || look[b] >= looks) {
            PyErr_SetString(PyExc_ValueError, "lit_pixels: an image names no sprite");
            goto done;
        }
    const float *mask = masks.buf, *xs = gx.buf, *ys = gy.buf;
    int32_t *lit_out = lit.buf, *unsure_out = unsure.buf;
    Py_ssize_t n_lit = 0, n_unsure = 0;
    double reach = 1.0 + 1.0 / (double)sprite, t = (double)sprite;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < images; b++) {
        const float *m = mask + look[b] * cells;
        const float *x = xs + b * size, *y = ys + b * size;
        for (Py_ssize_t r = 0; r < size; r++) {
            double gyv = (double)y[r];
            if (!(gyv > -reach && gyv < reach)) continue;
            double iy = ((gyv + 1.0) * t - 1.0) / 2.0, fy = floor(iy), wy = iy - fy;
            long y0 = (long)fy, y1 = y0 + 1;
            for (Py_ssize_t c = 0; c < size; c++) {
                double gxv = (double)x[c];
                if (!(gxv > -reach && gxv < reach)) continue;
                double ix = ((gxv + 1.0) * t - 1.0) / 2.0, fx = floor(ix), wx = ix - fx;
                long x0 = (long)fx, x1 = x0 + 1;
                double v = 0.0;
                if (y0 >= 0 && y0 < sprite) {
                    if (x0 >= 0 && x0 < sprite) v += (double)m[y0 * sprite + x0] * (1 - wx) * (1 - wy);
                    if (x1 >= 0 && x1 < sprite) v += (double)m[y0 * sprite + x1] * wx * (1 - wy);
                }
                if (y1 >= 0 && y1 < sprite) {
                    if (x0 >= 0 && x0 < sprite) v += (double)m[y1 * sprite + x0] * (1 - wx) * wy;
                    if (x1 >= 0 && x1 < sprite) v += (double)m[y1 * sprite + x1] * wx * wy;
                }
                int32_t at = (int32_t)((b * size + r) * size + c);
                if (v > 0.5 + margin) lit_out[n_lit++] = at;
                else if (v >= 0.5 - margin) unsure_out[n_unsure++] = at;
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", n_lit, n_unsure);
done:
    PyBuffer_Release(&masks), PyBuffer_Release(&which), PyBuffer_Release(&gx);
    PyBuffer_Release(&gy), PyBuffer_Release(&lit), PyBuffer_Release(&unsure);
    return result;
}

static PyMethodDef methods[] = {
    {"lit_pixels", lit_pixels, METH_VARARGS, "a layered decoder's lit pixels, with the ones too near 0.5 apart"},
    {"paint_stamps", paint_stamps, METH_VARARGS, "paint each slot's stamp at its centre, in slot order"},
    {"paint_pixels", paint_pixels, METH_VARARGS, "paint each image's colour at its lit pixels"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_paint", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__paint(void) { return PyModule_Create(&module); }
