// The fast engine's forward and backward over a whole sequence on the CPU (float32), for RNNFunction in
// rnn_core/fast.py:
//
//     H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)      O_t = H_t W_hq + b_q
//
// Same math and the same activation buffer as the Python path there: Hs (h+V+1, steps+1, batch), whose rows
// :h, column block t hold H_t^T (hidden-major) and whose rows h: hold [one-hot(x_{t+1}); 1], so one matmul
// over all steps gives dW_hh, dW_xh and db_h (an ATen/MKL call, as is dW_hq).
//
// What C++ adds: the loop over time runs here, in one OpenMP team for the whole sequence (instead of Python,
// the dispatcher and a fork and join per matmul). The batch is split over the threads: each thread runs its
// own sequences (columns) through all steps, forward and backward, and the threads meet only once per call
// (after packing the weights), never per step, so a thread that loses its core to another program delays
// the call by its own share instead of stalling every step. The weight gradients, summed over all sequences,
// are one matmul afterwards. Each step's matmul runs in small register tiles, from weights packed once per
// sequence (MKL packs them on every call), and the elementwise work is done on each tile while it is in
// registers: forward, the input x_t W_xh + b_h (a gather: no one-hot matmul), tanh, and from the same
// H_{t-1} the outputs O_{t-1}; backward, the gradient from the outputs W_hq dO_t^T and tanh' = 1 - H_t^2.
// Shapes the tiles do not cover (batch not a multiple of 8, a CPU without AVX2) run the same loop with ATen
// matmuls.
//
// Why a second copy of the recurrence: the lesson's model steps with rnn_core.model.rnn_step, one step per
// Python call and autograd for the gradients; that is the form students read and the reference. This file is
// the same recurrence fused for speed (the default engine on the CPU), so it cannot call that function: it
// is instead tested equal to it (below).
//
// Memory layout (all float32 CPU, row-major; the weights are made contiguous if they are not):
//   tokens  (steps*batch,) int64, time-major: entry t*batch + b is step t of sequence b.
//   H0 (batch, h); W_xh (V, h); W_hh (h, h); b_h (h,); W_hq (h, V); b_q (V,): the formula's own shapes.
//   Hs      (h+V+1, steps+1, batch), contiguous, the caller's buffer (fast.py's BufferPool), row stride
//           (steps+1)*batch. Rows :h, column block t: H_t^T (block 0 is H_0^T). Rows h:h+V, block t (t < steps):
//           one-hot(x_{t+1})^T; row h+V: ones. So blocks 0..steps-1 read as [H_{t-1}; x_t; 1], (h+V+1, N).
//   dA      (h, steps, batch), contiguous, the caller's buffer: block t holds dL/dA^T of step t+1, A the
//           pre-activation. dO (steps*batch, V) time-major like O; dH_T (batch, h); either may be None.
//   Returned: forward O (steps*batch, V) time-major and H_T (batch, h); backward dW_xh (V, h), dW_hh (h, h),
//           db_h (h,), dW_hq (h, V), db_q (V,), dH0 (batch, h).
//
// The constants, and why each has its value:
//   kRows = 6, tiles 16 (or 8) columns wide: AVX2 has 16 registers of 8 floats; a 6 x 16 tile holds 12
//     accumulators, plus 2 registers for a row of B and 1 for a broadcast element of A: 15 of 16, none
//     spilled to memory.
//   batch % 8 == 0 for the tiled path (tiled()): a tile's column is one whole register of 8 batch entries,
//     with no masked edge; any other batch runs the ATen loop, same math.
//   kPanel = 32 columns: a panel of B is (h, 32), 64 KiB at h = 512, and stays in a core's L2 cache while
//     the packed weights stream past (measured at batch 128: forward 18.5 ms with all columns per row block,
//     15.6 ms with panels).
//   kSmall, kT0..kT4, kP0..kP5, kLn2Hi/kLn2Lo, kClamp: Cephes' tanhf and expf (accuracy stated at tanh).
//   Scratch reallocation at "more than 4 n + 64 Ki elements": a small model after a big one gives back the
//     memory, while sizes that vary a little reuse it.
//   team_size(): torch's thread count, at most one thread per 8 columns of the batch.
//
// Checked against (tests/test_fast_engine.py, each also run on the Python path): the lesson model
// (rnn_core.model.RNN, i.e. rnn_step over time with autograd) in test_loss_and_gradients_equal_autograd_on_lesson
// (loss, outputs, state, every gradient and dH0, at h = 64 and 512), test_cpp_kernels_equal_python_path_and_lesson
// (the same against the lesson and the Python path at shapes that hit each tile edge: h = 512, 100, 64, 16;
// batch 32, 24, 5, 8; 1 and 2 threads), test_threads_split_the_batch_alike (1, 2, 3 threads,
// batches that do not divide), test_nan_propagates_like_the_lesson, test_one_step_and_no_grad_forward,
// test_gradient_through_the_new_state_alone, test_backward_through_two_pending_minibatches and
// test_twenty_epochs_end_at_the_same_perplexity.
//
// Turning it off: RNN_LAB_NO_EXT=1 in the environment (the whole process runs the Python path of
// rnn_core/fast.py), FastRNN.use_kernels = False for one model, or rnn_fast(..., cpp=False) for one call.
// Without a C++ compiler or ninja it is never built and the Python path runs (fast.kernel_status() says why).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

// ---------------------------------------------------------------- tanh

// tanh as in Cephes' tanhf, on |z| with z's sign put back (so exactly odd, like torch's): for |z| < 0.625
// an odd polynomial z + z^3 P(z^2) (no cancellation near 0); beyond, 1 - 2 / (exp(2|z|) + 1), exp as in
// Cephes' expf, 2^n p(r) with r = x - n ln 2, |r| <= ln2/2. Measured against float64 over [-12, 12]: within
// 8.1e-8 (torch's tanh: 3e-8; the Python path's 2 sigmoid(2z) - 1: 1.8e-7). NaN stays NaN, as in torch:
// a diverged run must show a non-finite loss.
constexpr float kSmall = 0.625f;  // below: the polynomial
constexpr float kT0 = -5.70498872745e-3f, kT1 = 2.06390887954e-2f, kT2 = -5.37397155531e-2f,
                kT3 = 1.33314422036e-1f, kT4 = -3.33332819422e-1f;
constexpr float kClamp = 30.0f;  // bound on 2|z|: exp(30) is finite and tanh(15) rounds to 1
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 split so n * kLn2Hi is exact
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

inline float tanh_scalar(float z) {
  if (std::isnan(z)) return z;
  if (std::fabs(z) < kSmall) {
    float s = z * z;
    return ((((kT0 * s + kT1) * s + kT2) * s + kT3) * s + kT4) * s * z + z;
  }
  float x = std::fmin(2.0f * std::fabs(z), kClamp);  // on |z|, the sign put back: tanh(-z) = -tanh(z) exactly
  float n = std::floor(x * kLog2e + 0.5f);
  float r = x - n * kLn2Hi - n * kLn2Lo;
  float p = ((((kP0 * r + kP1) * r + kP2) * r + kP3) * r + kP4) * r + kP5;
  float e = std::ldexp(p * r * r + r + 1.0f, static_cast<int>(n));  // exp(2|z|)
  return std::copysign(1.0f - 2.0f / (e + 1.0f), z);
}

#ifdef __AVX2__
inline __m256 tanh8(__m256 z) {
  const __m256 one = _mm256_set1_ps(1.0f);
  // |z| < kSmall: the polynomial.
  __m256 s = _mm256_mul_ps(z, z);
  __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(kT0), s, _mm256_set1_ps(kT1));
  q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kT2));
  q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kT3));
  q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kT4));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(q, s), z, z);
  // Otherwise 1 - 2 / (exp(2|z|) + 1) with z's sign: tanh(-z) = -tanh(z) exactly. The clamp takes the
  // bound first: min returns its second operand when one is NaN, so NaN passes through.
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 abs_z = _mm256_andnot_ps(sign, z);
  __m256 x = _mm256_min_ps(_mm256_set1_ps(kClamp), _mm256_add_ps(abs_z, abs_z));
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kP0), r, _mm256_set1_ps(kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, one));
  // 2^n: n (an integer in [-44, 44]) added to the exponent bits of 1.
  __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
  __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  big = _mm256_or_ps(big, _mm256_and_ps(sign, z));  // z's sign (big >= 0)
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(abs_z, _mm256_set1_ps(kSmall), _CMP_LT_OQ));  // NaN: big
}
#endif

// x <- tanh(x) for a (rows, cols) block with row stride ld.
void tanh_block(float* x, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * ld;
    int64_t j = 0;
#ifdef __AVX2__
    for (; j + 8 <= cols; j += 8) _mm256_storeu_ps(row + j, tanh8(_mm256_loadu_ps(row + j)));
#endif
    for (; j < cols; ++j) row[j] = tanh_scalar(row[j]);
  }
}

// dA <- dA * (1 - H^2) (tanh' from its output) for (rows, cols) blocks with row strides ld_a, ld_h.
void mul_dtanh_block(float* dA, int64_t ld_a, const float* H, int64_t ld_h, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    float* a = dA + i * ld_a;
    const float* y = H + i * ld_h;
    for (int64_t j = 0; j < cols; ++j) a[j] *= 1.0f - y[j] * y[j];
  }
}

// ---------------------------------------------------------------- the per-step matmuls, tiled

#ifdef __AVX2__
constexpr int kRows = 6;  // rows per tile: 6 x 16 floats = 12 accumulators, + 2 for B and 1 for A of 16 registers

// The per-step B operand (H_{t-1}^T forward, dA_{t+1}^T backward) is kept in a layout of its own: column
// panels of kPanel, each panel (h, width) contiguous, so element (i, j) of the panel from j0 is at
// j0*h + i*width + (j - j0). A thread takes one panel at a time through all of its row blocks: the panel
// (64 KiB at h = 512) stays in the core's L2 cache and is read with unit stride, while the packed weights
// stream past once per panel. (Taking all columns per row block re-read all of B for every block: at batch
// 128, B is 256 KiB and came from L3; the forward took 18.5 ms against 15.6 ms with panels.)
constexpr int64_t kPanel = 32;

// One product added into a tile: A's rows of this block packed as Ap[k][R] (K, R), B (K, ldb) row-major.
struct Product {
  const float* Ap;
  const float* B;
  int64_t ldb, K;  // K = 0: no product
};

// acc[r][v] += sum_k A[r][k] B[k][j + 8v]. Every loop over r and v is unrolled (here and in tile): an
// accumulator indexed at run time lives in memory, and GCC then stores all of them in every k (3x slower).
template <int R, int NV>
__attribute__((always_inline)) inline void accumulate(__m256 (&acc)[R][NV], const Product& p, int64_t j) {
  const float* __restrict a = p.Ap;
  const float* __restrict b = p.B + j;
  for (int64_t k = 0; k < p.K; ++k, b += p.ldb, a += R) {
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      __m256 ar = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
}

// Rows i0..i0+R, columns j..j+8*NV:  out = (Q + P) + epi.init,  then epi.store (the fused elementwise work).
// The products are summed from zero and the start value added last, as the lesson rounds
// X W_xh + H W_hh + b_h and as MKL adds C after its sum. P's B and the epilogue's panel are indexed by
// jp = j - j0 (in the panel), everything else by j.
template <int R, int NV, class Epi>
inline void tile(const Epi& epi, const Product& P, const Product& Q, int64_t i0, int64_t j, int64_t jp) {
  __m256 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  accumulate<R, NV>(acc, Q, j);
  accumulate<R, NV>(acc, P, jp);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      epi.store(_mm256_add_ps(acc[r][v], epi.init(i0 + r, j + 8 * v)), i0 + r, j + 8 * v, jp + 8 * v);
}

// Columns j0..j1 (one panel; a multiple of 8 wide) of the R rows from i0.
template <int R, class Epi>
void row_block(const Epi& epi, const Product& P, const Product& Q, int64_t i0, int64_t j0, int64_t j1) {
  int64_t j = j0;
  for (; j + 16 <= j1; j += 16) tile<R, 2>(epi, P, Q, i0, j, j - j0);
  if (j < j1) tile<R, 1>(epi, P, Q, i0, j, j - j0);
}

template <class Epi>
void row_block(int R, const Epi& epi, const Product& P, const Product& Q, int64_t i0, int64_t j0, int64_t j1) {
  switch (R) {
    case 6: row_block<6>(epi, P, Q, i0, j0, j1); break;
    case 5: row_block<5>(epi, P, Q, i0, j0, j1); break;
    case 4: row_block<4>(epi, P, Q, i0, j0, j1); break;
    case 3: row_block<3>(epi, P, Q, i0, j0, j1); break;
    case 2: row_block<2>(epi, P, Q, i0, j0, j1); break;
    default: row_block<1>(epi, P, Q, i0, j0, j1); break;
  }
}

// The fused elementwise work. init(i, j): the 8 values added to a tile's sums at row i, columns j..j+8;
// store(a, i, j, jp): what becomes of the 8 results (jp: the same columns within the panel).

// Forward, H_t^T: adds x_t W_xh + b_h (a gather from row i of W_xh^T: no one-hot matmul); tanh; into Hs
// and into the next step's B.
struct HiddenOut {
  const float* W_xh_T;  // (h, V): row i holds W_xh[:, i]
  const float* b_h;
  const int32_t* x_t;  // (batch,) this step's tokens
  int64_t V;
  float* C;  // H_t^T in Hs, row stride ldc
  int64_t ldc;
  float* C2;  // H_t^T's panel in the next step's B, row stride ld2 (the panel's width)
  int64_t ld2;
  inline __m256 init(int64_t i, int64_t j) const {
    __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x_t + j));
    return _mm256_add_ps(_mm256_i32gather_ps(W_xh_T + i * V, idx, 4), _mm256_set1_ps(b_h[i]));
  }
  inline void store(__m256 a, int64_t i, int64_t j, int64_t jp) const {
    a = tanh8(a);
    _mm256_storeu_ps(C + i * ldc + j, a);
    _mm256_storeu_ps(C2 + i * ld2 + jp, a);
  }
};

// Forward, O_t^T = W_hq^T H_t^T + b_q, written transposed into O's time-major rows (batch, V) of step t.
struct OutputOut {
  const float* b_q;
  float* O_t;  // (batch, V)
  int64_t V;
  inline __m256 init(int64_t i, int64_t) const { return _mm256_set1_ps(b_q[i]); }
  inline void store(__m256 a, int64_t i, int64_t j, int64_t) const {
    alignas(32) float o[8];
    _mm256_store_ps(o, a);
    for (int c = 0; c < 8; ++c) O_t[(j + c) * V + i] = o[c];
  }
};

// Backward, dA_t^T = (direct + W_hq dO_t^T + W_hh dA_{t+1}^T) * (1 - H_t^2): into dA and the next step's B.
struct GradOut {
  const float* direct;  // dH_T^T (h, batch) at the last step, else null
  int64_t batch;
  const float* H_t;  // H_t^T in Hs, row stride ld_h
  int64_t ld_h;
  float* C;  // dA_t^T in dA, row stride ldc
  int64_t ldc;
  float* C2;  // dA_t^T's panel in the next step's B, row stride ld2
  int64_t ld2;
  inline __m256 init(int64_t i, int64_t j) const {
    return direct ? _mm256_loadu_ps(direct + i * batch + j) : _mm256_setzero_ps();
  }
  inline void store(__m256 a, int64_t i, int64_t j, int64_t jp) const {
    __m256 y = _mm256_loadu_ps(H_t + i * ld_h + j);
    a = _mm256_mul_ps(a, _mm256_fnmadd_ps(y, y, _mm256_set1_ps(1.0f)));
    _mm256_storeu_ps(C + i * ldc + j, a);
    _mm256_storeu_ps(C2 + i * ld2 + jp, a);
  }
};

struct PlainOut {  // C = A B (dH0^T = W_hh dA_1^T)
  float* C;
  int64_t ldc;
  inline __m256 init(int64_t, int64_t) const { return _mm256_setzero_ps(); }
  inline void store(__m256 a, int64_t i, int64_t j, int64_t) const { _mm256_storeu_ps(C + i * ldc + j, a); }
};

int blocks(int64_t rows) { return static_cast<int>((rows + kRows - 1) / kRows); }
int block_rows(int64_t rows, int64_t ib) { return static_cast<int>(std::min<int64_t>(kRows, rows - ib * kRows)); }

// Pack block ib of a (rows, K) matrix given by element A(i, k): out[ib*kRows*K + k*R + r] = A(ib*kRows + r, k).
template <class Get>
void pack_block(int64_t rows, int64_t K, int64_t ib, float* out, Get A) {
  int R = block_rows(rows, ib);
  int64_t i0 = ib * kRows;
  float* o = out + i0 * K;
  for (int64_t k = 0; k < K; ++k)
    for (int r = 0; r < R; ++r) o[k * R + r] = A(i0 + r, k);
}

// Scratch memory reused across calls (one set per thread): a fresh megabyte per call costs page faults.
// Reallocated when a call needs more, or less than a quarter (one big model does not keep its memory for
// good). The calling thread's set holds the packed weights, which every thread of the team reads; each
// thread of the team (OpenMP keeps them from call to call) holds its own columns' B operand.
struct Scratch {
  std::vector<float> A_h;  // W_hh^T (forward) or W_hh (backward), packed: (h, h)
  std::vector<float> A_q;  // W_hq^T (forward, (V, h)) or W_hq (backward, (h, V)), packed
  std::vector<float> Bp;   // two (h, width) in panels, this thread's columns: the previous and this step's
                           // H_t^T (or dA_t^T)
  std::vector<int32_t> x;  // tokens as int32
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

template <class T>
T* grown(std::vector<T>& v, size_t n) {
  if (v.size() < n || v.size() > 4 * n + 65536) {
    v.clear();
    v.shrink_to_fit();
    v.resize(n);
  }
  return v.data();
}

// The team: torch's thread count, at most one thread per 8 columns of the batch (a tile's column is 8 batch
// entries). Not capped at the cores: the threads never wait for each other within the sequence, so one
// that shares a core delays the end of the call by its own share of the work, not every step.
int team_size(int64_t batch) {
#ifdef _OPENMP
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), batch / 8)));
#else
  return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

int team() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// This thread's share [first, last) of n work items.
std::pair<int64_t, int64_t> my_share(int64_t n) {
  int64_t id = thread_id(), nt = team();
  return {n * id / nt, n * (id + 1) / nt};
}

// This thread's columns [c0, c1) of the batch: whole groups of 8, as even as they go (batch 24 on 2 threads:
// 8 and 16).
std::pair<int64_t, int64_t> my_columns(int64_t batch) {
  auto [g0, g1] = my_share(batch / 8);
  return {8 * g0, 8 * g1};
}

inline void barrier() {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

// Forward over all steps. hs: Hs (row stride ld) with block 0 = H_0^T; O (steps*batch, V) to fill.
// The batch is split over the threads: each runs its own columns (sequences) through every step, from its
// own copy of their H_{t-1}^T in panels, so no thread waits for another within the sequence. Step t
// computes H_t from H_{t-1} and, from the same H_{t-1}, O_{t-1}; one more pass computes O_T. The weights
// are packed once, shared, by all threads together: the one barrier of the call.
void forward_tiled(float* hs, int64_t ld, const float* W_hh, const float* W_xh_T, const float* b_h,
                   const int32_t* x, const float* W_hq, const float* b_q, float* O, int64_t h, int64_t V,
                   int64_t steps, int64_t batch) {
  Scratch& s = scratch();
  float* A_h = grown(s.A_h, h * h);
  float* A_o = grown(s.A_q, V * h);
  const int nb_h = blocks(h), nb_o = blocks(V);
#pragma omp parallel num_threads(team_size(batch))
  {
    auto [p0, p1] = my_share(nb_h + nb_o);
    for (int64_t ib = p0; ib < p1; ++ib) {
      if (ib < nb_h)  // A = W_hh^T: A(i, k) = W_hh[k][i]
        pack_block(h, h, ib, A_h, [&](int64_t i, int64_t k) { return W_hh[k * h + i]; });
      else  // A = W_hq^T (V, h): A(i, k) = W_hq[k][i]
        pack_block(V, h, ib - nb_h, A_o, [&](int64_t i, int64_t k) { return W_hq[k * V + i]; });
    }
    auto [c0, c1] = my_columns(batch);
    const int64_t w = c1 - c0;
    float* Bp = grown(scratch().Bp, 2 * h * std::max<int64_t>(w, 1));  // this thread's own
    for (int64_t j0 = c0; j0 < c1; j0 += kPanel) {  // H_0^T into B's panels
      const int64_t width = std::min(kPanel, c1 - j0);
      for (int64_t i = 0; i < h; ++i) std::copy_n(hs + i * ld + j0, width, Bp + (j0 - c0) * h + i * width);
    }
    barrier();  // the packed weights complete
    const Product none{nullptr, nullptr, 0, 0};
    for (int64_t t = 1; t <= steps + 1; ++t) {
      const float* B = Bp + ((t - 1) & 1) * h * w;  // H_{t-1}^T of this thread's columns, in panels
      float* B_next = Bp + (t & 1) * h * w;
      OutputOut out{b_q, t >= 2 ? O + (t - 2) * batch * V : O, V};
      for (int64_t j0 = c0; j0 < c1; j0 += kPanel) {
        const int64_t width = std::min(kPanel, c1 - j0);
        const float* B_panel = B + (j0 - c0) * h;
        HiddenOut hid{W_xh_T, b_h, x + (t - 1) * batch, V, hs + t * batch, ld, B_next + (j0 - c0) * h, width};
        if (t <= steps)
          for (int64_t ib = 0; ib < nb_h; ++ib)
            row_block(block_rows(h, ib), hid, Product{A_h + ib * kRows * h, B_panel, width, h}, none, ib * kRows,
                      j0, j0 + width);
        if (t >= 2)
          for (int64_t ib = 0; ib < nb_o; ++ib)
            row_block(block_rows(V, ib), out, Product{A_o + ib * kRows * h, B_panel, width, h}, none, ib * kRows,
                      j0, j0 + width);
      }
    }
  }
}

// Backward over all steps. da: dA (h, steps, batch) to fill, row stride ld_a; hs: Hs (row stride ld);
// dO_T: dO^T (V, steps*batch) or null; dH_T_T: dH_T^T (h, batch) or null. Block t of dA is step t+1.
// Also dH0_T = W_hh dA_1^T (h, batch), the gradient reaching H_0, unless null. Split over the threads by
// columns as the forward is; the weight gradients are summed over all steps and columns afterwards, in one
// matmul (backward() below).
void backward_tiled(float* da, int64_t ld_a, const float* hs, int64_t ld, const float* W_hh, const float* W_hq,
                    const float* dO_T, const float* dH_T_T, int64_t h, int64_t V, int64_t steps, int64_t batch,
                    float* dH0_T) {
  Scratch& s = scratch();
  float* A_h = grown(s.A_h, h * h);
  float* A_q = grown(s.A_q, h * V);
  const int nb_h = blocks(h);
  const int64_t N = steps * batch;
#pragma omp parallel num_threads(team_size(batch))
  {
    auto [b0, b1] = my_share(nb_h);
    for (int64_t ib = b0; ib < b1; ++ib) {
      pack_block(h, h, ib, A_h, [&](int64_t i, int64_t k) { return W_hh[i * h + k]; });  // A = W_hh
      pack_block(h, V, ib, A_q, [&](int64_t i, int64_t k) { return W_hq[i * V + k]; });  // A = W_hq
    }
    auto [c0, c1] = my_columns(batch);
    const int64_t w = c1 - c0;
    float* Bp = grown(scratch().Bp, 2 * h * std::max<int64_t>(w, 1));  // this thread's own
    barrier();  // the packed weights complete
    for (int64_t t = steps - 1; t >= 0; --t) {
      const float* B = Bp + ((t + 1) & 1) * h * w;  // dA_{t+1}^T of this thread's columns, in panels
      float* B_next = Bp + (t & 1) * h * w;
      for (int64_t j0 = c0; j0 < c1; j0 += kPanel) {
        const int64_t width = std::min(kPanel, c1 - j0);
        GradOut grad{t == steps - 1 ? dH_T_T : nullptr, batch, hs + (t + 1) * batch, ld, da + t * batch, ld_a,
                     B_next + (j0 - c0) * h, width};
        for (int64_t ib = 0; ib < nb_h; ++ib) {
          Product P{A_h + ib * kRows * h, B + (j0 - c0) * h, width, t == steps - 1 ? 0 : h};  // W_hh dA_{t+1}^T
          Product Q{A_q + ib * kRows * V, dO_T ? dO_T + t * batch : nullptr, N, dO_T ? V : 0};  // W_hq dO_t^T
          row_block(block_rows(h, ib), grad, P, Q, ib * kRows, j0, j0 + width);
        }
      }
    }
    if (dH0_T) {  // W_hh dA_1^T; dA_1^T (t = 0) is in buffer 0
      const Product none{nullptr, nullptr, 0, 0};
      PlainOut plain{dH0_T, batch};
      for (int64_t j0 = c0; j0 < c1; j0 += kPanel) {
        const int64_t width = std::min(kPanel, c1 - j0);
        for (int64_t ib = 0; ib < nb_h; ++ib)
          row_block(block_rows(h, ib), plain, Product{A_h + ib * kRows * h, Bp + (j0 - c0) * h, width, h}, none,
                    ib * kRows, j0, j0 + width);
      }
    }
  }
}
#endif  // __AVX2__

bool tiled(int64_t batch) {
#ifdef __AVX2__
  return batch % 8 == 0;
#else
  return false;
#endif
}

void check_cpu_float(const at::Tensor& t) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat, "expected float32 CPU tensors");
}

}  // namespace

// Forward of the whole sequence. tokens (steps*batch,) int64 time-major; H0 (batch, h); W_xh (V, h);
// W_hh (h, h); b_h (h,); W_hq (h, V); b_q (V,); Hs (h+V+1, steps+1, batch) to fill. Returns O (steps*batch, V)
// time-major and H_T (batch, h).
std::vector<at::Tensor> forward(const at::Tensor& tokens, const at::Tensor& H0, const at::Tensor& W_xh_,
                                const at::Tensor& W_hh_, const at::Tensor& b_h_, const at::Tensor& W_hq_,
                                const at::Tensor& b_q_, const at::Tensor& Hs) {
  for (const at::Tensor* t : {&H0, &W_xh_, &W_hh_, &b_h_, &W_hq_, &b_q_, &Hs}) check_cpu_float(*t);
  const int64_t batch = H0.size(0), h = H0.size(1), V = W_xh_.size(0);
  const int64_t N = tokens.numel(), steps = N / batch;
  TORCH_CHECK(Hs.is_contiguous() && steps * batch == N && Hs.size(0) == h + V + 1 && Hs.size(1) == steps + 1 &&
              Hs.size(2) == batch, "Hs must be contiguous, of shape (h+V+1, steps+1, batch)");
  auto W_hh = W_hh_.contiguous(), b_h = b_h_.contiguous(), W_hq = W_hq_.contiguous(), b_q = b_q_.contiguous();
  const int64_t ld = (steps + 1) * batch;  // row stride of Hs
  float* hs = Hs.data_ptr<float>();
  auto tok = tokens.contiguous();
  const int64_t* x = tok.data_ptr<int64_t>();

  // Rows h:h+V+1, blocks 0..steps-1: [one-hot(x_t)^T; 1], (V+1, N) with row stride ld.
  for (int64_t v = 0; v <= V; ++v) {
    float* row = hs + (h + v) * ld;
    std::fill(row, row + N, v == V ? 1.0f : 0.0f);
    std::fill(row + N, row + ld, 0.0f);  // block `steps` is never read: keep it defined all the same
  }
  for (int64_t n = 0; n < N; ++n) {
    TORCH_CHECK(x[n] >= 0 && x[n] < V, "token index out of range");
    hs[(h + x[n]) * ld + n] = 1.0f;
  }
  auto H = Hs.narrow(0, 0, h);  // (h, steps+1, batch)
  H.select(1, 0).copy_(H0.t());  // H_0^T
  auto W_xh_T = W_xh_.t().contiguous();  // (h, V): row i holds W_xh[:, i]
  const float* wx = W_xh_T.data_ptr<float>();
  const float* bh = b_h.data_ptr<float>();
  if (tiled(batch)) {
#ifdef __AVX2__
    int32_t* x32 = grown(scratch().x, N);
    std::copy(x, x + N, x32);
    auto O = at::empty({N, V}, H0.options());
    forward_tiled(hs, ld, W_hh.data_ptr<float>(), wx, bh, x32, W_hq.data_ptr<float>(), b_q.data_ptr<float>(),
                  O.data_ptr<float>(), h, V, steps, batch);
    return {O, H.select(1, steps).t().contiguous()};
#endif
  } else {
    // Blocks 1..steps: x_t W_xh + b_h (a row gather), then A_t^T += W_hh^T H_{t-1}^T and H_t^T = tanh(A_t^T).
    for (int64_t i = 0; i < h; ++i) {
      float* row = hs + i * ld + batch;
      for (int64_t n = 0; n < N; ++n) row[n] = wx[i * V + x[n]] + bh[i];
    }
    auto W_hh_T = W_hh.t().contiguous();  // the matmul is slower on a transposed view
    for (int64_t t = 1; t <= steps; ++t) {
      H.select(1, t).addmm_(W_hh_T, H.select(1, t - 1));
      tanh_block(hs + t * batch, h, batch, ld);
    }
  }
  // O = H W_hq + b_q for all steps: (N, h) x (h, V), written time-major without a transposed copy.
  auto H_all_T = H.narrow(1, 1, steps).view({h, N});
  auto O = at::addmm(b_q, H_all_T.t(), W_hq);
  auto H_T = H.select(1, steps).t().contiguous();  // (batch, h)
  return {O, H_T};
}

// Backward of the whole sequence from Hs (filled by forward). dO (steps*batch, V) or None; dH_T (batch, h)
// or None; dA (h, steps, batch) a buffer to use. Returns dW_xh, dW_hh, db_h, dW_hq, db_q, dH0, each None
// where not needed (need_* say which of dH0, dW_hq, db_q are).
std::vector<at::Tensor> backward(const std::optional<at::Tensor>& dO_opt, const std::optional<at::Tensor>& dH_T,
                                 const at::Tensor& W_hh_, const at::Tensor& W_hq_, const at::Tensor& Hs,
                                 const at::Tensor& dA, bool need_dH0, bool need_dW_hq, bool need_db_q) {
  for (const at::Tensor* t : {&W_hh_, &W_hq_, &Hs, &dA}) check_cpu_float(*t);
  const int64_t h = W_hh_.size(0), V = W_hq_.size(1);
  const int64_t steps = Hs.size(1) - 1, batch = Hs.size(2), N = steps * batch;
  TORCH_CHECK(Hs.is_contiguous() && dA.is_contiguous() && dA.size(0) == h && dA.size(1) == steps &&
              dA.size(2) == batch, "Hs and dA must be contiguous, dA of shape (h, steps, batch)");
  auto W_hh = W_hh_.contiguous(), W_hq = W_hq_.contiguous();
  const int64_t ld = (steps + 1) * batch;  // row stride of Hs
  auto H = Hs.narrow(0, 0, h);  // (h, steps+1, batch)
  auto H_all_T = H.narrow(1, 1, steps).view({h, N});  // H_1..H_T, (h, N)
  const bool has_dO = dO_opt.has_value() && dO_opt->defined(), has_dH_T = dH_T.has_value() && dH_T->defined();
  at::Tensor dO, dW_hq, db_q, dH0;
  if (has_dO) {
    dO = dO_opt->contiguous();  // (N, V)
    if (need_dW_hq) dW_hq = at::mm(H_all_T, dO);  // (h, N) x (N, V)
    if (need_db_q) db_q = dO.sum(0);
  } else {  // only the new state was used
    if (need_dW_hq) dW_hq = at::zeros({h, V}, W_hq.options());
    if (need_db_q) db_q = at::zeros({V}, W_hq.options());
  }
  auto dA_all = dA.view({h, N});
  float* da = dA.data_ptr<float>();
  const float* hs = Hs.data_ptr<float>();
  const int64_t ld_a = N;  // row stride of dA
  if (tiled(batch)) {
#ifdef __AVX2__
    // The gradient reaching H_t from O_t, W_hq dO_t^T, is added inside each step's tiles (from dO^T).
    at::Tensor dO_T, dH_T_T, dH0_T;
    if (has_dO) dO_T = dO.t().contiguous();  // (V, N)
    if (has_dH_T) dH_T_T = dH_T->t().contiguous();  // (h, batch)
    if (need_dH0) dH0_T = at::empty({h, batch}, W_hh.options());
    backward_tiled(da, ld_a, hs, ld, W_hh.data_ptr<float>(), W_hq.data_ptr<float>(),
                   has_dO ? dO_T.data_ptr<float>() : nullptr, has_dH_T ? dH_T_T.data_ptr<float>() : nullptr,
                   h, V, steps, batch, need_dH0 ? dH0_T.data_ptr<float>() : nullptr);
    if (need_dH0) dH0 = dH0_T.t();  // (batch, h)
#endif
  } else {
    if (has_dO)
      at::mm_out(dA_all, W_hq, dO.t());  // dA^T starts as the gradient reaching H_t from O_t: (h, V) x (V, N)
    else
      dA_all.zero_();
    if (has_dH_T) dA.select(1, steps - 1).add_(dH_T->t());
    // dA_t^T = (dH_t^T + W_hh dA_{t+1}^T) * tanh'(A_t), tanh' = 1 - H_t^2; dA's block t is step t+1.
    for (int64_t t = steps - 1; t >= 0; --t) {
      mul_dtanh_block(da + t * batch, ld_a, hs + (t + 1) * batch, ld, h, batch);
      if (t > 0) dA.select(1, t - 1).addmm_(W_hh, dA.select(1, t));
    }
    if (need_dH0) dH0 = at::mm(W_hh, dA.select(1, 0)).t();  // (batch, h)
  }
  // [dW_hh; dW_xh; db_h] = [H_{t-1}; x_t; 1] dA: one (h+V+1, N) x (N, h) matmul.
  auto grads = at::mm(Hs.narrow(1, 0, steps).view({h + V + 1, N}), dA_all.t());
  return {grads.narrow(0, h, V), grads.narrow(0, 0, h), grads.select(0, h + V), dW_hq, db_q, dH0};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // The GIL is released: a training thread must not hold up the rest of the process (e.g. a web server).
  m.def("forward", &forward, "the fast engine's forward over a whole sequence (CPU, float32)",
        pybind11::call_guard<pybind11::gil_scoped_release>());
  m.def("backward", &backward, "the fast engine's backward over a whole sequence (CPU, float32)",
        pybind11::call_guard<pybind11::gil_scoped_release>());
}
