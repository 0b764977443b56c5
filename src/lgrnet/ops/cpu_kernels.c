/* Fused CPU kernels for lgrnet's memory-bound ops (inference), float32 or bfloat16 storage,
 * float32 arithmetic. Built once per machine by lgrnet/ops/native.py (gcc -O3 -march=native
 * -fopenmp; OpenMP resolves to the libgomp PyTorch has loaded) and called through ctypes.
 *
 * Every function reads its tensors through pointers + element strides, so the callers pass
 * views (no layout copies). "bf16" flags say whether a tensor holds bfloat16 (uint16 bits) or
 * float32. Results are the same functions as the float32 references in lgrnet/ops (tests:
 * tests/test_ops_native.py), up to float32 rounding of the accumulation order; bfloat16 outputs
 * are rounded to nearest even once, at the end.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

typedef union {
    uint32_t u;
    float f;
} bits32;

static inline float bf16_to_f32(uint16_t b) {
    bits32 x = {((uint32_t)b) << 16};
    return x.f;
}

static inline uint16_t f32_to_bf16(float f) { /* round to nearest even; NaN stays NaN (branch-free) */
    bits32 x;
    x.f = f;
    const uint32_t u = x.u;
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x40u;
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? quiet : rounded);
}

/* exp(x) for x <= 0 (softmax after subtracting the maximum), branch-free so that loops over it
 * vectorise: 2^n * p(r), r = x - n ln 2 in [-ln2/2, ln2/2], p the degree-6 Taylor polynomial
 * (relative error < 2e-7, float32 rounding level); x below -87 gives 0 like expf's underflow. */
static inline float exp_nonpos(float x) {
    x = x < -87.f ? -87.f : x;
    const float n = __builtin_rintf(x * 1.44269504088896341f);
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
    float p = 1.f / 720.f;
    p = p * r + 1.f / 120.f;
    p = p * r + 1.f / 24.f;
    p = p * r + 1.f / 6.f;
    p = p * r + 0.5f;
    p = p * r + 1.f;
    p = p * r + 1.f;
    bits32 scale = {(uint32_t)(((int32_t)n + 127) << 23)};
    return p * scale.f;
}

#if defined(__AVX2__) && defined(__FMA__)
/* 8 values (float32 or bfloat16) as one float32 vector */
static inline __attribute__((always_inline)) __m256 load8(const void *x, int bf16) {
    if (bf16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)x)), 16));
    return _mm256_loadu_ps((const float *)x);
}

static inline __attribute__((always_inline)) __m128 load4(const void *x, int bf16) {
    if (bf16) {
        const __m128i h = _mm_loadl_epi64((const __m128i *)x);
        return _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(h), 16));
    }
    return _mm_loadu_ps((const float *)x);
}

static inline __attribute__((always_inline)) float hsum4(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline)) float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* acc[0:n] += w * x[0:n], x float32 or bfloat16 */
static inline __attribute__((always_inline)) void axpy(float *restrict acc, float w, const void *x, int bf16, int64_t n) {
#if defined(__AVX2__) && defined(__FMA__)
    if (n == 8) {
        _mm256_storeu_ps(acc, _mm256_fmadd_ps(_mm256_set1_ps(w), load8(x, bf16), _mm256_loadu_ps(acc)));
        return;
    }
    if (n == 4) {
        _mm_storeu_ps(acc, _mm_fmadd_ps(_mm_set1_ps(w), load4(x, bf16), _mm_loadu_ps(acc)));
        return;
    }
#endif
    if (bf16) {
        const uint16_t *restrict xb = (const uint16_t *)x;
        for (int64_t i = 0; i < n; i++) acc[i] += w * bf16_to_f32(xb[i]);
    } else {
        const float *restrict xf = (const float *)x;
        for (int64_t i = 0; i < n; i++) acc[i] += w * xf[i];
    }
}

static inline __attribute__((always_inline)) float dot(const float *restrict a, const void *x, int bf16, int64_t n) {
#if defined(__AVX2__) && defined(__FMA__)
    if (n == 8) return hsum8(_mm256_mul_ps(_mm256_loadu_ps(a), load8(x, bf16)));
    if (n == 4) return hsum4(_mm_mul_ps(_mm_loadu_ps(a), load4(x, bf16)));
#endif
    float s = 0.f;
    if (bf16) {
        const uint16_t *restrict xb = (const uint16_t *)x;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; i++) s += a[i] * bf16_to_f32(xb[i]);
    } else {
        const float *restrict xf = (const float *)x;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; i++) s += a[i] * xf[i];
    }
    return s;
}

static inline __attribute__((always_inline)) void load(float *restrict dst, const void *x, int bf16, int64_t n, float scale) {
    if (bf16) {
        const uint16_t *restrict xb = (const uint16_t *)x;
        for (int64_t i = 0; i < n; i++) dst[i] = scale * bf16_to_f32(xb[i]);
    } else {
        const float *restrict xf = (const float *)x;
        for (int64_t i = 0; i < n; i++) dst[i] = scale * xf[i];
    }
}

static inline __attribute__((always_inline)) void store(void *y, int bf16, const float *restrict src, int64_t n) {
    if (bf16) {
        uint16_t *restrict yb = (uint16_t *)y;
        for (int64_t i = 0; i < n; i++) yb[i] = f32_to_bf16(src[i]);
    } else {
        memcpy(y, src, (size_t)n * 4);
    }
}

#define MAX_DIM 1024

/* Multi-scale deformable attention core (grid_sample bilinear, zeros padding,
 * align_corners=False, then the weighted sum over levels and points).
 * value: (N, S, M, D) with strides (vs_n, vs_s, vs_m), D contiguous, f32 or bf16;
 * shapes: (L, 2) int64 (H_l, W_l); starts: (L,) int64 first token of each level;
 * loc: (N, Lq, M, L, P, 2) float32 contiguous (x, y in [0, 1]);
 * attn: (N, Lq, M, L, P) float32 contiguous;
 * out: (N, Lq, M, D) contiguous, f32 or bf16. */
static inline __attribute__((always_inline)) void msda_query(
        const char *vbase, const int value_bf16, const int64_t D, const int64_t M, const int64_t vs_s,
        const int64_t vs_m, const int64_t *shapes, const int64_t *starts, const int64_t L, const int64_t P,
        const float *loc, const float *attn, const int64_t n, const int64_t vs_n, const int64_t nq,
        void *out, const int out_bf16) {
    const int64_t esize = value_bf16 ? 2 : 4;
    float acc[MAX_DIM];
    for (int64_t m = 0; m < M; m++) {
        for (int64_t c = 0; c < D; c++) acc[c] = 0.f;
        const float *lp = loc + ((nq * M + m) * L * P) * 2;
        const float *ap = attn + (nq * M + m) * L * P;
        for (int64_t l = 0; l < L; l++) {
            const int64_t h = shapes[2 * l], w = shapes[2 * l + 1];
            const char *vl = vbase + (n * vs_n + starts[l] * vs_s + m * vs_m) * esize;
            for (int64_t p = 0; p < P; p++) {
                const float x = lp[(l * P + p) * 2] * (float)w - 0.5f;
                const float y = lp[(l * P + p) * 2 + 1] * (float)h - 0.5f;
                const float a = ap[l * P + p];
                if (!(x > -1.f && y > -1.f && x < (float)w && y < (float)h)) continue;
                const float xf = floorf(x), yf = floorf(y);
                const int64_t x0 = (int64_t)xf, y0 = (int64_t)yf;
                const float fx = x - xf, fy = y - yf;
                const int x0ok = x0 >= 0, x1ok = x0 + 1 < w, y0ok = y0 >= 0, y1ok = y0 + 1 < h;
                const char *v00 = vl + (y0 * w + x0) * vs_s * esize;
                if (y0ok && x0ok) axpy(acc, a * (1.f - fx) * (1.f - fy), v00, value_bf16, D);
                if (y0ok && x1ok) axpy(acc, a * fx * (1.f - fy), v00 + vs_s * esize, value_bf16, D);
                if (y1ok && x0ok) axpy(acc, a * (1.f - fx) * fy, v00 + w * vs_s * esize, value_bf16, D);
                if (y1ok && x1ok) axpy(acc, a * fx * fy, v00 + (w + 1) * vs_s * esize, value_bf16, D);
            }
        }
        store((char *)out + ((nq * M + m) * D) * (out_bf16 ? 2 : 4), out_bf16, acc, D);
    }
}

/* Multi-scale deformable attention core (grid_sample bilinear, zeros padding,
 * align_corners=False, then the weighted sum over levels and points).
 * value: (N, S, M, D) with strides (vs_n, vs_s, vs_m), D contiguous, f32 or bf16;
 * shapes: (L, 2) int64 (H_l, W_l); starts: (L,) int64 first token of each level;
 * loc: (N, Lq, M, L, P, 2) float32 contiguous (x, y in [0, 1]);
 * attn: (N, Lq, M, L, P) float32 contiguous;
 * out: (N, Lq, M, D) contiguous, f32 or bf16. */
int lgr_ms_deform_attn(const void *value, int value_bf16, int64_t N, int64_t S, int64_t M, int64_t D,
                       int64_t vs_n, int64_t vs_s, int64_t vs_m,
                       const int64_t *shapes, const int64_t *starts, int64_t L, int64_t P,
                       const float *loc, const float *attn, int64_t Lq,
                       void *out, int out_bf16, int nthreads) {
    if (D > MAX_DIM) return 1;
    const char *vbase = (const char *)value;
    (void)S;
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t nq = 0; nq < N * Lq; nq++) {
        const int64_t n = nq / Lq;
#define MSDA_CASE(DD, VB, OB) msda_query(vbase, VB, DD, M, vs_s, vs_m, shapes, starts, L, P, loc, attn, n, vs_n, nq, out, OB)
        if (D == 4 && value_bf16 && out_bf16) MSDA_CASE(4, 1, 1);
        else if (D == 4 && !value_bf16 && !out_bf16) MSDA_CASE(4, 0, 0);
        else if (D == 8 && value_bf16 && out_bf16) MSDA_CASE(8, 1, 1);
        else if (D == 8 && !value_bf16 && !out_bf16) MSDA_CASE(8, 0, 0);
        else if (D == 16 && value_bf16 && out_bf16) MSDA_CASE(16, 1, 1);
        else if (D == 16 && !value_bf16 && !out_bf16) MSDA_CASE(16, 0, 0);
        else if (D == 32 && value_bf16 && out_bf16) MSDA_CASE(32, 1, 1);
        else if (D == 32 && !value_bf16 && !out_bf16) MSDA_CASE(32, 0, 0);
        else MSDA_CASE(D, value_bf16, out_bf16);
#undef MSDA_CASE
    }
    return 0;
}

static inline __attribute__((always_inline)) void na_pixel(
        const char *qp, const char *kb, const char *vb, const int in_bf16, const int64_t d,
        const int64_t ks2, const int64_t ks3, const int64_t vs2, const int64_t vs3,
        char *op, const int out_bf16, const int64_t r0, const int64_t c0, const int64_t K, const int64_t dil,
        const float scale) {
    const int64_t es = in_bf16 ? 2 : 4;
    float qf[MAX_DIM], acc[MAX_DIM], logit[1024];
    load(qf, qp, in_bf16, d, scale);
    float mx = -INFINITY;
    for (int64_t a = 0; a < K; a++) {
        const char *kr = kb + (r0 + a * dil) * ks2 * es;
        for (int64_t c = 0; c < K; c++) {
            const float s = dot(qf, kr + (c0 + c * dil) * ks3 * es, in_bf16, d);
            logit[a * K + c] = s;
            mx = s > mx ? s : mx;
        }
    }
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t t = 0; t < K * K; t++) {
        logit[t] = exp_nonpos(logit[t] - mx);
        sum += logit[t];
    }
    const float inv = 1.f / sum;
    for (int64_t c = 0; c < d; c++) acc[c] = 0.f;
    for (int64_t a = 0; a < K; a++) {
        const char *vr = vb + (r0 + a * dil) * vs2 * es;
        for (int64_t c = 0; c < K; c++) axpy(acc, logit[a * K + c] * inv, vr + (c0 + c * dil) * vs3 * es, in_bf16, d);
    }
    store(op, out_bf16, acc, d);
}

/* 2-D neighborhood attention with precomputed window starts (NATTEN's border rule, any dilation).
 * q, k, v: (B, nh, H, W, d) with strides (s_b, s_h, s_i, s_j), d contiguous, f32 or bf16 (one
 * flag for the three); rows: (H,) int64 first key row of each query row, cols: (W,) likewise;
 * keys of query (i, j): (rows[i] + a * dil, cols[j] + b * dil), a, b < K.
 * out: (B, nh, H, W, d) with strides os_*, f32 or bf16.
 * logits = scale * q . k, softmax over the K*K window in float32, out = sum attn * v. */
int lgr_neighborhood_attention(const void *q, const void *k, const void *v, int in_bf16,
                               int64_t B, int64_t NH, int64_t H, int64_t W, int64_t d,
                               const int64_t *qs, const int64_t *ks, const int64_t *vs,
                               void *out, const int64_t *os, int out_bf16,
                               const int64_t *rows, const int64_t *cols, int64_t K, int64_t dil,
                               float scale, int nthreads) {
    if (d > MAX_DIM || K * K > 1024) return 1;
    const int64_t es = in_bf16 ? 2 : 4, eo = out_bf16 ? 2 : 4;
    const char *qb = (const char *)q, *kb = (const char *)k, *vb = (const char *)v;
#pragma omp parallel for schedule(static) num_threads(nthreads) collapse(2)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t i = 0; i < H; i++) {
            for (int64_t j = 0; j < W; j++) {
                for (int64_t hh = 0; hh < NH; hh++) {
                    const char *qp = qb + (b * qs[0] + hh * qs[1] + i * qs[2] + j * qs[3]) * es;
                    const char *kh = kb + (b * ks[0] + hh * ks[1]) * es, *vh = vb + (b * vs[0] + hh * vs[1]) * es;
                    char *op = (char *)out + (b * os[0] + hh * os[1] + i * os[2] + j * os[3]) * eo;
#define NA_CASE(DD, IB, OB) na_pixel(qp, kh, vh, IB, DD, ks[2], ks[3], vs[2], vs[3], op, OB, rows[i], cols[j], K, dil, scale)
                    if (d == 4 && in_bf16 && out_bf16) NA_CASE(4, 1, 1);
                    else if (d == 4 && !in_bf16 && !out_bf16) NA_CASE(4, 0, 0);
                    else if (d == 8 && in_bf16 && out_bf16) NA_CASE(8, 1, 1);
                    else if (d == 8 && !in_bf16 && !out_bf16) NA_CASE(8, 0, 0);
                    else if (d == 16 && in_bf16 && out_bf16) NA_CASE(16, 1, 1);
                    else if (d == 16 && !in_bf16 && !out_bf16) NA_CASE(16, 0, 0);
                    else if (d == 32 && in_bf16 && out_bf16) NA_CASE(32, 1, 1);
                    else if (d == 32 && !in_bf16 && !out_bf16) NA_CASE(32, 0, 0);
                    else NA_CASE(d, in_bf16, out_bf16);
#undef NA_CASE
                }
            }
        }
    }
    return 0;
}

/* out = LayerNorm(x + y) over the last dimension C (y may be NULL), statistics in float32.
 * x, y, out: (R, C) with row strides xs, ys, os (elements), C contiguous, each f32 or bf16
 * (flags); weight, bias: (C,) f32 or bf16 (w_bf16), either may be NULL. */
int lgr_add_layer_norm(const void *x, int x_bf16, int64_t xs, const void *y, int y_bf16, int64_t ys,
                       const void *weight, const void *bias, int w_bf16, float eps, int64_t R, int64_t C,
                       void *out, int out_bf16, int64_t os, int nthreads) {
    if (C > 8192) return 1;
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t r = 0; r < R; r++) {
        float row[8192], wb[8192];
        load(row, (const char *)x + r * xs * (x_bf16 ? 2 : 4), x_bf16, C, 1.f);
        if (y) axpy(row, 1.f, (const char *)y + r * ys * (y_bf16 ? 2 : 4), y_bf16, C);
        float mean = 0.f;
#pragma omp simd reduction(+ : mean)
        for (int64_t c = 0; c < C; c++) mean += row[c];
        mean /= (float)C;
        float var = 0.f;
#pragma omp simd reduction(+ : var)
        for (int64_t c = 0; c < C; c++) {
            const float t = row[c] - mean;
            var += t * t;
        }
        const float rstd = 1.f / sqrtf(var / (float)C + eps);
        for (int64_t c = 0; c < C; c++) row[c] = (row[c] - mean) * rstd;
        if (weight) {
            load(wb, weight, w_bf16, C, 1.f);
            for (int64_t c = 0; c < C; c++) row[c] *= wb[c];
        }
        if (bias) axpy(row, 1.f, bias, w_bf16, C);
        store((char *)out + r * os * (out_bf16 ? 2 : 4), out_bf16, row, C);
    }
    return 0;
}

/* In-place softmax over the last dimension of x (R, C) (row stride xs), logits scaled by
 * ``scale`` first; float32 arithmetic, x float32 or bfloat16. */
int lgr_softmax_rows(void *x, int bf16, int64_t R, int64_t C, int64_t xs, float scale, int nthreads) {
    if (C > 8192) return 1;
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t r = 0; r < R; r++) {
        float row[8192];
        char *xr = (char *)x + r * xs * (bf16 ? 2 : 4);
        load(row, xr, bf16, C, scale);
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t c = 0; c < C; c++) mx = row[c] > mx ? row[c] : mx;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < C; c++) {
            row[c] = exp_nonpos(row[c] - mx);
            sum += row[c];
        }
        const float inv = 1.f / sum;
        for (int64_t c = 0; c < C; c++) row[c] *= inv;
        store(xr, bf16, row, C);
    }
    return 0;
}
