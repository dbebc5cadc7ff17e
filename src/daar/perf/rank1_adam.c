/* One Adam step of batch-1 linear layers whose weight gradient is the outer product delta x^T, fused.
 *
 * torch forms the gradient (a write of every weight's gradient), then fused Adam reads it back with the
 * weight and both moments: 7 passes over each weight's memory. Here the gradient element is formed in
 * registers and never stored: 6 passes (read and write of weight, first and second moment), and one loop.
 * The arithmetic is torch's fused CPU Adam (FusedAdamKernel.cpp, vector path) operation for operation, in
 * float, with the contractions its build makes (the lerp's fma; the second moment's c2*g*g + v*beta2 as one
 * fma), so the weights are bit for bit what torch gives: daar/perf/native.py checks that on this machine
 * before it lets any head use the kernel. Compile with -ffp-contract=off so the compiler adds no other fma.
 *
 * Only layers whose member slices are a whole number of 16-float vectors come here (torch rounds the last
 * numel % vector-width elements of a tensor through scalar code of its own).
 */
#include <math.h>
#include <stdint.h>

/* A layer's descriptor: NFIELDS int64 values (pointers as integers), strides in floats between members. */
enum { P, M, V, ROWS, COLS, MEMBERS, WSTRIDE, DELTA, DSTRIDE, X, XSTRIDE, NFIELDS };

int64_t daar_rank1_adam_fields(void) { return NFIELDS; }

static void rows_step(float *p, float *m, float *v, const float *x, const float *delta, int64_t cols,
                      int64_t r0, int64_t r1, const float *cf) {
  const float c1 = cf[0], b2 = cf[1], c2 = cf[2], bc2s = cf[3], eps = cf[4], neg_step = cf[5];
  for (int64_t r = r0; r < r1; r++) {
    const float dr = delta[r];
    float *pr = p + r * cols, *mr = m + r * cols, *vr = v + r * cols;
    for (int64_t j = 0; j < cols; j++) {
      const float g = dr * x[j];                          /* the outer product: one exact product */
      const float mm = fmaf(c1, g - mr[j], mr[j]);        /* exp_avg.lerp_(grad, 1 - beta1) */
      const float vv = fmaf(c2 * g, g, vr[j] * b2);       /* exp_avg_sq * beta2 + (1 - beta2) * g * g */
      mr[j] = mm;
      vr[j] = vv;
      const float den = sqrtf(vv) / bc2s + eps;
      pr[j] = pr[j] + neg_step * mm / den;
    }
  }
}

/* Step `n_layers` layers; this call does part `part` of `parts` (rows cut evenly, members one after
 * another), so callers on several threads split the work without changing any element's arithmetic.
 * cf: 1 - beta1, beta2, 1 - beta2, sqrt(bias correction 2), eps, -lr / bias correction 1 (floats). */
void daar_rank1_adam(const int64_t *desc, int64_t n_layers, const float *cf, int64_t part, int64_t parts) {
  for (int64_t l = 0; l < n_layers; l++) {
    const int64_t *d = desc + l * NFIELDS;
    const int64_t rows = d[ROWS], cols = d[COLS], total = rows * d[MEMBERS];
    const int64_t hi = total * (part + 1) / parts;
    for (int64_t k = total * part / parts; k < hi;) {
      const int64_t mem = k / rows, r0 = k % rows;
      const int64_t r1 = (mem + 1) * rows <= hi ? rows : hi - mem * rows;
      rows_step((float *)(intptr_t)d[P] + mem * d[WSTRIDE], (float *)(intptr_t)d[M] + mem * d[WSTRIDE],
                (float *)(intptr_t)d[V] + mem * d[WSTRIDE], (const float *)(intptr_t)d[X] + mem * d[XSTRIDE],
                (const float *)(intptr_t)d[DELTA] + mem * d[DSTRIDE], cols, r0, r1, cf);
      k += r1 - r0;
    }
  }
}
