// The int8 plan of a quantized Sequential (lenet/quant.h), compiled once per
// ISA: "int8 is another plan" of the same engine. Each Conv2d and Linear runs
// on the integer kernels of kernels/int8.h (input quantized to uint8 with its
// layer's scale, int8 weights packed once here, int32 sums, dequantized to
// float with the per-channel scales); pooling and activations run on the float
// kernels in between, except where they are fused into the layer before:
//   - an activation right after a Conv2d or Linear is applied as its sums are
//     dequantized (no pass of its own);
//   - a max pooling after a Conv2d (and its activation) takes the maxima of the
//     int32 sums, and only the maxima are dequantized and activated: the scale
//     is positive and every activation is non-decreasing, so this is the value
//     the layers give one after the other (as in the float engine).
//
// Work is cut into chunks of at most kChunk images (kTailChunk for the last
// kTail of a batch) that threads take as they come; a chunk goes through
// every layer while it is in the thread's cache: image layers image by image
// (NCHW), then the layers after Flatten on the chunk's rows. Every value is
// computed the same way whatever the chunking, so results do not depend on
// the thread count.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels/activation_simd.h"
#include "kernels/fast.h"
#include "kernels/int8.h"
#include "kernels/simd.h"
#include "lenet/nn.h"
#include "lenet/quant.h"
#include "runtime/thread_pool.h"
#include "runtime/threads.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

namespace {

// Small chunks keep two threads even at the end of a batch (256 images: 32
// chunks; with 32-image chunks one late start cost up to an eighth of the
// batch, bench/RESULTS.md 2026-12-03). A Linear layer's weights are read per
// tile of 8 rows either way.
constexpr int kChunk = 8, kTail = 32, kTailChunk = 2;

// The first m (≤ kLanes) values of r, each in 0..255, as bytes.
inline void store_bytes(simd::vi32 r, int m, uint8_t* out) {
#if defined(__AVX512F__)
  _mm512_mask_cvtepi32_storeu_epi8(out, simd::Mask(m).bits, std::bit_cast<__m512i>(r));  // one masked vpmovdb
#else
  uint8_t bytes[simd::kLanes];
  uint8_t* dst = m == simd::kLanes ? out : bytes;  // a short vector through `bytes`
#if defined(__AVX2__)
  const __m256i v = std::bit_cast<__m256i>(r);
  const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(v, v), _mm256_setzero_si256());  // bytes 0-3 | 4-7 per half
  const __m128i both = _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), both);
#elif defined(__SSE2__)
  const __m128i v = std::bit_cast<__m128i>(r);
  const int32_t four = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(v, v), _mm_setzero_si128()));
  std::memcpy(dst, &four, sizeof four);
#else
  for (int k = 0; k < simd::kLanes; ++k) dst[k] = static_cast<uint8_t>(r[k]);
#endif
  if (dst != out) std::memcpy(out, bytes, static_cast<size_t>(m));
#endif
}

// q = saturate(round_half_even(x / scale) + zero_point) to 0..255, as ONNX's
// QuantizeLinear, a vector of kLanes at a time. Adding and subtracting
// 1.5·2^23 rounds a float of magnitude below 2^22 to the nearest integer, ties
// to even (IEEE's default rounding), exactly as std::nearbyint; the clamp to
// ±512 first keeps every value in that range. The division stays a division
// (x · (1 / scale) may round the other way, and checking for that per vector
// cost more than dividing on Zen 4), as in the oracle of the tests.
inline simd::vi32 quantize_lanes(simd::vf v, simd::vf scale, int32_t zero_point) {
  v = v / scale;
  v = simd::min(simd::max(v, simd::splat(-512.0f)), simd::splat(512.0f));  // in this order a NaN becomes -512
  const simd::vf round = simd::splat(12582912.0f);                         // 1.5 · 2^23
  v = (v + round) - round;
  simd::vi32 r = __builtin_convertvector(v, simd::vi32) + zero_point;
  r = r < 0 ? simd::vi32{} : r;
  return r > 255 ? simd::vi32{} + 255 : r;
}

void quantize(int64_t n, const float* x, float scale, int32_t zero_point, uint8_t* q) {
  using simd::kLanes;
  const simd::vf s = simd::splat(scale);
  for (int64_t i = 0; i < n; i += kLanes) {
    const int m = static_cast<int>(std::min<int64_t>(kLanes, n - i));
    store_bytes(quantize_lanes(simd::load(x + i, simd::Mask(m)), s, zero_point), m, q + i);
  }
}

// QuantizeLinear of one planar image x [C][H][W] into the interleaved padded
// image of the implicit convolution (int8::pad_hwc's layout), kLanes pixels of
// a row at a time: the channels' bytes are ORed into one 64-bit word per pixel
// (channels from C to 7 set to the zero point) and each word stored 8 bytes
// at the pixel, in increasing order, so a word's spare bytes land on the next
// pixel (written next) or on padding (the zero point). Up to 8 channels.
void quantize_hwc(const ConvGeometry& g, const float* x, float scale, int32_t zero_point, uint8_t* padded) {
  using simd::kLanes;
  typedef uint32_t vu32 __attribute__((vector_size(sizeof(simd::vi32))));  // shifts into the top byte
  const int wp = g.w + 2 * g.pw;
  const simd::vf s = simd::splat(scale);
  const auto zp = static_cast<uint32_t>(zero_point);
  std::memset(padded, zero_point, static_cast<size_t>(int8::padded_bytes(g)));
  vu32 spare_lo{}, spare_hi{};  // two variables, not an array: they stay in registers
  for (int c = g.c; c < 8; ++c) (c < 4 ? spare_lo : spare_hi) |= zp << (8 * (c % 4));
  for (int r = 0; r < g.h; ++r)
    for (int j0 = 0; j0 < g.w; j0 += kLanes) {
      const int m = std::min(kLanes, g.w - j0);
      vu32 word_lo = spare_lo, word_hi = spare_hi;
      for (int c = 0; c < g.c; ++c) {
        const float* src = x + (static_cast<int64_t>(c) * g.h + r) * g.w + j0;
        const vu32 q = __builtin_convertvector(quantize_lanes(simd::load(src, simd::Mask(m)), s, zero_point), vu32)
                       << (8 * (c % 4));
        if (c < 4)
          word_lo |= q;
        else
          word_hi |= q;
      }
      uint32_t lo[kLanes], hi[kLanes];
      std::memcpy(lo, &word_lo, sizeof lo);
      std::memcpy(hi, &word_hi, sizeof hi);
      uint8_t* dst = padded + ((static_cast<int64_t>(r) + g.ph) * wp + g.pw + j0) * g.c;
      for (int p = 0; p < m; ++p) {
        const uint64_t v = lo[p] | (static_cast<uint64_t>(hi[p]) << 32);
        std::memcpy(dst + p * g.c, &v, sizeof v);
      }
    }
}

// y[k] = acc[k] · scale[k] for k < n.
void dequantize(int n, const int32_t* acc, const float* scale, float* y) {
  for (int k = 0; k < n; k += simd::kLanes) {
    const simd::Mask m(std::min(simd::kLanes, n - k));
    simd::store(y + k, __builtin_convertvector(simd::load(acc + k, m), simd::vf) * simd::load(scale + k, m), m);
  }
}

// y[k] = f(acc[k] · scale) for k < n.
template <class F>
void dequantize(int64_t n, const int32_t* acc, float scale, float* y, F f) {
  const simd::vf s = simd::splat(scale);
  for (int64_t k = 0; k < n; k += simd::kLanes) {
    const simd::Mask m(static_cast<int>(std::min<int64_t>(simd::kLanes, n - k)));
    simd::store(y + k, f(__builtin_convertvector(simd::load(acc + k, m), simd::vf) * s), m);
  }
}

// run(f) with f the lane function of `kind` (the activation kernels', so the
// same values as the float layers), or the identity if !fused. The int8
// plan applies them itself, in place or as its sums are dequantized: its
// arrays are a few hundred values, which the kernels' dispatch (threads,
// tails) would cost more than.
template <class Run>
void with_activation(bool fused, Activation::Kind kind, Run run) {
  if (!fused) return run([](simd::vf v) { return v; });
  switch (kind) {
    case Activation::Kind::Sigmoid: return run([](simd::vf v) { return simd::sigmoid(v); });
    case Activation::Kind::ReLU: return run([](simd::vf v) { return simd::relu(v); });
    case Activation::Kind::Tanh: return run([](simd::vf v) { return simd::tanh(v); });
  }
}

void activate(Activation::Kind kind, int64_t n, float* x) {
  with_activation(true, kind, [&](auto f) {
    for (int64_t i = 0; i < n; i += simd::kLanes) {
      const simd::Mask m(static_cast<int>(std::min<int64_t>(simd::kLanes, n - i)));
      simd::store(x + i, f(simd::load(x + i, m)), m);
    }
  });
}

struct Op {
  enum class Kind { Conv, Linear, MaxPool, AvgPool, Act } kind = Kind::Act;
  ConvGeometry conv;  // one image
  PoolGeometry pool;  // one image
  Activation::Kind act = Activation::Kind::ReLU;
  bool fused_act = false;  // Conv/Linear: act applied to the dequantized sums
  bool fused_max = false;  // Conv: `pool` is a max pooling of its output, taken on the int32 sums
  float input_scale = 1.0f;
  int32_t zero_point = 0;
  bool direct = false;  // Conv: int8::conv_direct with `dw` (sums planar), else conv_implicit with `iw`
  // Conv, implicit, the last image layer before a Linear: its output stays
  // interleaved, (i, j, o) not (o, i, j), as its sums come, and the Linear's
  // weights are reordered to match (no transposition per image).
  bool interleaved_out = false;
  size_t quant = 0;          // Conv, Linear: its LayerQuantization
  int8::PackedWeights w;     // Linear
  int8::ImplicitWeights iw;  // Conv, not direct
  int8::DirectWeights dw;
  std::unique_ptr<float[]> out_scale;     // input_scale · weight_scale[o]
  int64_t in_values = 0, out_values = 0;  // per image

  // Conv, direct, with a 2×2 stride-2 max pooling: int8::conv_direct_max2x2 takes both.
  bool max2x2() const { return kind == Kind::Conv && direct && fused_max && is_2x2_stride_2(pool); }
};

template <class T>
std::unique_ptr<T[]> zeros(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]());
}

struct Scratch {
  std::unique_ptr<float[]> img0, img1, row0, row1;
  std::unique_ptr<uint8_t[]> q, rows;
  std::unique_ptr<int32_t[]> acc, argmax, direct;  // direct: conv_direct's workspace
};

class Int8Engine final : public runtime::Pipeline {
 public:
  Shape input;  // per image
  std::vector<Op> spatial, rows;
  int64_t features = 0, classes = 0;
  int64_t max_image = 0, max_row = 0, max_q = 0, max_rows = 0, max_acc = 0, max_direct = 0;

  bool fits(const Shape& s) const override {
    return s.size() == input.size() + 1 && s[0] >= 1 && std::equal(input.begin(), input.end(), s.begin() + 1);
  }

  void forward(const Tensor& x, std::vector<Tensor>& outputs) override {
    const int64_t n = x.shape()[0];
    Tensor& y = outputs.back();
    y.resize({n, classes});
    // The last kTail images in chunks of kTailChunk, so that the threads
    // finish close together (a whole chunk left to one thread at the end of
    // a batch is ~40 µs of int8 work).
    const int64_t head = std::max<int64_t>(n - kTail, 0) / kChunk, tail_first = head * kChunk;
    const int64_t chunks = head + (n - tail_first + kTailChunk - 1) / kTailChunk;
    const int team = static_cast<int>(std::min<int64_t>(chunks, std::max(1, num_threads())));
    while (static_cast<int>(scratch_.size()) < team) scratch_.push_back(make_scratch());
    std::atomic<int64_t> next{0};
    parallel_run(team, [&](int t, int) {
      Scratch& s = scratch_[static_cast<size_t>(t)];
      for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
        const int64_t first = c < head ? c * kChunk : tail_first + (c - head) * kTailChunk;
        const int64_t count = std::min<int64_t>(c < head ? kChunk : kTailChunk, n - first);
        run_chunk(x.data() + first * numel(input), static_cast<int>(count), s, y.data() + first * classes,
                  x.data() + n * numel(input));
      }
    });
  }

  void backward(const Tensor&, const std::vector<Tensor>&) override {
    throw std::logic_error("Sequential: an int8 model runs inference only (train the float model, then quantize it)");
  }

 private:
  std::vector<Scratch> scratch_;

  Scratch make_scratch() const {
    Scratch s;
    s.img0 = zeros<float>(max_image);
    s.img1 = zeros<float>(max_image);
    s.row0 = zeros<float>(kChunk * max_row);
    s.row1 = zeros<float>(kChunk * max_row);
    s.q = zeros<uint8_t>(max_q);
    s.rows = zeros<uint8_t>(max_rows);
    s.acc = zeros<int32_t>(max_acc);
    s.argmax = zeros<int32_t>(max_image);
    s.direct = zeros<int32_t>(max_direct);
    return s;
  }

  // Image layers image by image (ping-pong in img0/img1), the last one
  // writing the image's row of features; then the row layers on the chunk.
  // `end`: the end of the batch's images.
  void run_chunk(const float* x, int count, Scratch& s, float* logits, const float* end) {
    const int64_t image = numel(input);
    float* cur = s.row0.get();
    float* other = s.row1.get();
    if (spatial.empty()) {
      std::memcpy(cur, x, sizeof(float) * static_cast<size_t>(count * image));
    } else {
      for (int i = 0; i < count; ++i) {
        const float* in = x + i * image;
        // The next image of the batch (this chunk's or the next one's) into
        // L2 while this one runs: the first layer's loads of a 3 KB image
        // straight from memory were ~8 % of the int8 time (rdtsc per stage),
        // the hardware prefetcher alone not covering them.
        if (in + 2 * image <= end)
          for (int64_t b = 0; b < image; b += 64 / static_cast<int64_t>(sizeof(float)))
            __builtin_prefetch(in + image + b, 0, 2);
        for (size_t k = 0; k < spatial.size(); ++k) {
          float* dst = k + 1 == spatial.size() ? cur + i * features
                                               : (in == s.img0.get() ? s.img1.get() : s.img0.get());
          run_spatial(spatial[k], in, dst, s);
          in = dst;
        }
      }
    }
    for (size_t k = 0; k < rows.size(); ++k) {
      const Op& op = rows[k];
      float* dst = k + 1 == rows.size() ? logits : other;
      if (op.kind == Op::Kind::Linear) {
        quantize_rows(op, count, cur, s);
        int32_t* acc = s.acc.get();
        int8::gemm(count, s.rows.get(), op.w.kp, op.w, acc, op.w.n);
        for (int r = 0; r < count; ++r) dequantize(op.w.n, acc + r * op.w.n, op.out_scale.get(), dst + r * op.w.n);
        if (op.fused_act) activate(op.act, static_cast<int64_t>(count) * op.w.n, dst);
      } else {
        std::memcpy(dst, cur, sizeof(float) * static_cast<size_t>(count * op.in_values));
        activate(op.act, count * op.in_values, dst);
      }
      std::swap(cur, other);
    }
    if (rows.empty()) std::memcpy(logits, cur, sizeof(float) * static_cast<size_t>(count * classes));
  }

  void quantize_rows(const Op& op, int count, const float* x, Scratch& s) const {
    for (int r = 0; r < count; ++r)
      quantize(op.w.k, x + r * op.w.k, op.input_scale, op.zero_point, s.rows.get() + static_cast<int64_t>(r) * op.w.kp);
  }

  // y[o][i][j] (or y[i][j][o] if interleaved_out) = activate(the largest sum
  // of channel o in pooling window (i, j), dequantized; −∞ for a window all
  // in the padding, as the float kernel), from sums acc[p][o] (the implicit
  // convolution's), a vector of channels at a time.
  template <class F>
  static void max_pool_sums(const Op& op, const int32_t* acc, float* y, F activate) {
    constexpr int kCols = int8::kCols, kStep = std::min(simd::kLanes, kCols);
    const PoolGeometry& g = op.pool;
    const int oh = g.oh(), ow = g.ow(), np = op.iw.w.np, channels = op.conv.o;
    const int64_t planes = static_cast<int64_t>(oh) * ow;
    const bool two_by_two = is_2x2_stride_2(g);
    for (int i = 0; i < oh; ++i) {
      const int r0 = std::max(i * g.sh - g.ph, 0), r1 = std::min(i * g.sh - g.ph + g.kh, g.h);
      for (int j = 0; j < ow; ++j) {
        const int c0 = std::max(j * g.sw - g.pw, 0), c1 = std::min(j * g.sw - g.pw + g.kw, g.w);
        const bool empty = r0 >= r1 || c0 >= c1;
        for (int ch0 = 0; ch0 < channels; ch0 += kStep) {
          const int count = std::min(kStep, channels - ch0);
          const simd::Mask m(kStep), valid(count);
          auto larger = [](simd::vi32 a, simd::vi32 b) { return a > b ? a : b; };
          simd::vi32 best = simd::vi32{} + std::numeric_limits<int32_t>::min();
          if (two_by_two) {  // the common case, without the window's bounds
            const int32_t* a = acc + static_cast<int64_t>(2 * i * g.w + 2 * j) * np + ch0;
            const int64_t down = static_cast<int64_t>(g.w) * np;
            best = larger(larger(simd::load(a, m), simd::load(a + np, m)),
                          larger(simd::load(a + down, m), simd::load(a + down + np, m)));
          } else {
            for (int r = r0; r < r1; ++r)
              for (int c = c0; c < c1; ++c)
                best = larger(simd::load(acc + static_cast<int64_t>(r * g.w + c) * np + ch0, m), best);
          }
          const simd::vf v = activate(empty ? simd::splat(-std::numeric_limits<float>::infinity())
                                            : __builtin_convertvector(best, simd::vf) *
                                                  simd::load(op.out_scale.get() + ch0, valid));
          if (op.interleaved_out) {
            simd::store(y + (i * ow + j) * channels + ch0, v, valid);
          } else {
            float out[simd::kLanes];
            simd::store(out, v);
            for (int o = 0; o < count; ++o) y[(ch0 + o) * planes + i * ow + j] = out[o];
          }
        }
      }
    }
  }

  // The same from planar sums acc[o][i][j] (the direct convolution's), for
  // poolings other than 2×2 stride 2 (which the kernel takes itself).
  static void max_pool_planes(const Op& op, const int32_t* acc, float* y) {
    const PoolGeometry& g = op.pool;
    const int oh = g.oh(), ow = g.ow();
    const int64_t planes = static_cast<int64_t>(oh) * ow, in_plane = static_cast<int64_t>(g.h) * g.w;
    for (int o = 0; o < op.conv.o; ++o) {
      const int32_t* in = acc + o * in_plane;
      float* out = y + o * planes;
      const float scale = op.out_scale[o];
      for (int i = 0; i < oh; ++i) {
        const int r0 = std::max(i * g.sh - g.ph, 0), r1 = std::min(i * g.sh - g.ph + g.kh, g.h);
        for (int j = 0; j < ow; ++j) {
          const int c0 = std::max(j * g.sw - g.pw, 0), c1 = std::min(j * g.sw - g.pw + g.kw, g.w);
          int32_t best = std::numeric_limits<int32_t>::min();
          for (int r = r0; r < r1; ++r)
            for (int c = c0; c < c1; ++c) best = std::max(best, in[r * g.w + c]);
          out[i * ow + j] = r0 >= r1 || c0 >= c1 ? -std::numeric_limits<float>::infinity()
                                                 : static_cast<float>(best) * scale;
        }
      }
    }
  }

  void run_spatial(const Op& op, const float* x, float* y, Scratch& s) const {
    switch (op.kind) {
      case Op::Kind::Conv: {
        const ConvGeometry& g = op.conv;
        // Quantized straight into the planar padded image of the direct
        // convolution, or into the interleaved one of the implicit one.
        const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
        uint8_t* padded = s.q.get();
        if (!op.direct && g.c <= 8) {
          quantize_hwc(g, x, op.input_scale, op.zero_point, padded);
        } else if (!op.direct) {
          quantize(static_cast<int64_t>(g.c) * g.h * g.w, x, op.input_scale, op.zero_point, s.rows.get());
          int8::pad_hwc(g, s.rows.get(), static_cast<uint8_t>(op.zero_point), padded);
        } else if (g.ph == 0 && g.pw == 0) {  // the padded image is the image: one pass
          quantize(static_cast<int64_t>(g.c) * g.h * g.w, x, op.input_scale, op.zero_point, padded);
          std::memset(padded + static_cast<int64_t>(g.c) * g.h * g.w, 0, int8::kSlack);
        } else {
          std::memset(padded, op.zero_point, static_cast<size_t>(int8::padded_bytes(g)));
          for (int c = 0; c < g.c; ++c)
            for (int r = 0; r < g.h; ++r)
              quantize(g.w, x + (static_cast<int64_t>(c) * g.h + r) * g.w, op.input_scale, op.zero_point,
                       padded + (static_cast<int64_t>(c) * hp + r + g.ph) * wp + g.pw);
        }
        const int pixels = g.oh() * g.ow();
        const int64_t planes = op.fused_max ? static_cast<int64_t>(op.pool.oh()) * op.pool.ow() : pixels;
        int32_t* acc = s.acc.get();
        if (op.max2x2()) {
          int8::conv_direct_max2x2(g, padded, op.dw, s.direct.get(), acc);  // acc[o][i][j], pooled
          with_activation(op.fused_act, op.act, [&](auto f) {               // the activation in the same pass
            for (int o = 0; o < g.o; ++o) dequantize(planes, acc + o * planes, op.out_scale[o], y + o * planes, f);
          });
          break;
        } else if (op.direct) {
          int8::conv_direct(g, padded, op.dw, s.direct.get(), acc);  // acc[o][p]
          if (op.fused_max) {
            max_pool_planes(op, acc, y);
          } else {
            for (int o = 0; o < g.o; ++o)
              for (int p = 0; p < pixels; ++p)
                y[o * planes + p] = static_cast<float>(acc[o * pixels + p]) * op.out_scale[o];
          }
        } else {
          const int np = op.iw.w.np;  // acc[p][o]: whole blocks of channels a pixel
          int8::conv_implicit(g, padded, op.iw, acc);
          if (op.fused_max) {
            with_activation(op.fused_act, op.act, [&](auto f) { max_pool_sums(op, acc, y, f); });
            break;  // activated as it is stored
          } else {
            for (int p = 0; p < pixels; ++p)
              if (op.interleaved_out)
                dequantize(g.o, acc + p * np, op.out_scale.get(), y + p * g.o);
              else
                for (int o = 0; o < g.o; ++o) y[o * planes + p] = static_cast<float>(acc[p * np + o]) * op.out_scale[o];
          }
        }
        if (op.fused_act) activate(op.act, g.o * planes, y);
        break;
      }
      case Op::Kind::MaxPool: LENET_ISA_NAMESPACE::maxpool2d_forward(op.pool, x, y, s.argmax.get()); break;
      case Op::Kind::AvgPool: LENET_ISA_NAMESPACE::avgpool2d_forward(op.pool, x, y); break;
      case Op::Kind::Act:
        std::memcpy(y, x, sizeof(float) * static_cast<size_t>(op.in_values));
        activate(op.act, op.in_values, y);
        break;
      case Op::Kind::Linear: break;  // not an image layer
    }
  }
};

// Folds an activation into the Conv2d/Linear before it, and a max pooling
// into the Conv2d (with its activation) before it; see the top of the file.
void fuse(std::vector<Op>& ops) {
  std::vector<Op> out;
  for (size_t k = 0; k < ops.size(); ++k) {
    Op op = std::move(ops[k]);
    if (op.kind == Op::Kind::Conv || op.kind == Op::Kind::Linear) {
      if (k + 1 < ops.size() && ops[k + 1].kind == Op::Kind::Act) {
        op.fused_act = true;
        op.act = ops[++k].act;
      }
      if (op.kind == Op::Kind::Conv && k + 1 < ops.size() && ops[k + 1].kind == Op::Kind::MaxPool) {
        op.fused_max = true;
        op.pool = ops[++k].pool;
      }
    }
    out.push_back(std::move(op));
  }
  ops = std::move(out);
}

// Keeps the last image layer's output interleaved when it is an implicit
// Conv and the next layer that depends on the order is a Linear (activations
// do not): the Linear is packed again with its columns permuted, column
// (o, p) of the flattened planar features moving to (p, o). Integer sums do not
// depend on the order of their terms, so the results are the same.
void interleave_features(Int8Engine& e, const Quantization& quant) {
  if (e.spatial.empty()) return;
  Op& conv = e.spatial.back();
  if (conv.kind != Op::Kind::Conv || conv.direct) return;
  auto linear = std::find_if(e.rows.begin(), e.rows.end(), [](const Op& op) { return op.kind != Op::Kind::Act; });
  if (linear == e.rows.end() || linear->kind != Op::Kind::Linear) return;
  const LayerQuantization& q = quant.layers[linear->quant];
  const int channels = conv.conv.o,
            pixels = conv.fused_max ? conv.pool.oh() * conv.pool.ow() : conv.conv.oh() * conv.conv.ow();
  const int n = linear->w.n, k = linear->w.k;
  if (static_cast<int64_t>(channels) * pixels != k) return;
  std::unique_ptr<int8_t[]> w(new int8_t[static_cast<size_t>(n) * k]);
  for (int r = 0; r < n; ++r)
    for (int o = 0; o < channels; ++o)
      for (int p = 0; p < pixels; ++p)
        w[static_cast<size_t>(r) * k + p * channels + o] = q.weights[static_cast<size_t>(r) * k + o * pixels + p];
  int8::pack(n, k, w.get(), q.bias.empty() ? nullptr : q.bias.data(), q.input_zero_point, linear->w);
  conv.interleaved_out = true;
}

}  // namespace

std::unique_ptr<runtime::Pipeline> build_int8_pipeline(const std::vector<std::unique_ptr<Module>>& layers,
                                                       const Quantization& quant, const Shape& input) {
  if (layers.empty() || input.size() < 2) return nullptr;
  auto e = std::make_unique<Int8Engine>();
  e->input.assign(input.begin() + 1, input.end());
  Shape s = {1};
  s.insert(s.end(), e->input.begin(), e->input.end());
  size_t next_q = 0;
  bool image = s.size() == 4;
  e->max_image = numel(s);
  for (size_t i = 0; i < layers.size(); ++i) {
    Module* l = layers[i].get();
    Shape out;
    try {
      out = l->output_shape(s);
    } catch (const std::exception&) {
      return nullptr;
    }
    Op op;
    op.in_values = numel(s);
    op.out_values = numel(out);
    auto take_quant = [&](int n, int k, const ConvGeometry* conv_geometry = nullptr) -> bool {
      if (next_q >= quant.layers.size() || quant.layers[next_q].layer != i) return false;
      op.quant = next_q;
      const LayerQuantization& q = quant.layers[next_q++];
      if (k > int8::kMaxDepth) return false;
      op.input_scale = q.input_scale;
      op.zero_point = q.input_zero_point;
      const int32_t* bias = q.bias.empty() ? nullptr : q.bias.data();
      op.direct = conv_geometry && int8::direct_fits(*conv_geometry);
      if (op.direct)
        int8::pack_direct(*conv_geometry, q.weights.data(), bias, q.input_zero_point, op.dw);
      else if (conv_geometry)
        int8::pack_implicit(*conv_geometry, q.weights.data(), bias, q.input_zero_point, op.iw);
      else
        int8::pack(n, k, q.weights.data(), bias, q.input_zero_point, op.w);
      op.out_scale = zeros<float>(n);
      for (int o = 0; o < n; ++o) op.out_scale[o] = q.input_scale * q.weight_scales[static_cast<size_t>(o)];
      return true;
    };
    if (auto* conv = dynamic_cast<Conv2d*>(l)) {
      if (!image) return nullptr;
      op.kind = Op::Kind::Conv;
      op.conv = conv->geometry(s);
      const auto& o = conv->options();
      if (!take_quant(o.out, o.in * o.kh * o.kw, &op.conv)) return nullptr;
      const int64_t pixels = static_cast<int64_t>(op.conv.oh()) * op.conv.ow();
      e->max_q = std::max(e->max_q, int8::padded_bytes(op.conv));
      if (op.direct)
        e->max_direct = std::max(e->max_direct, int8::direct_workspace(op.conv));
      else
        e->max_rows = std::max(e->max_rows, numel(s));  // the planar bytes before interleaving
      e->max_acc = std::max(e->max_acc, pixels * (op.direct ? o.out : op.iw.w.np));
    } else if (auto* lin = dynamic_cast<Linear*>(l)) {
      if (image) return nullptr;
      op.kind = Op::Kind::Linear;
      if (!take_quant(lin->out_features(), lin->in_features())) return nullptr;
      e->max_rows = std::max(e->max_rows, static_cast<int64_t>(kChunk) * op.w.kp + int8::kSlack);
      e->max_acc = std::max(e->max_acc, static_cast<int64_t>(kChunk) * lin->out_features());
    } else if (auto* pool = dynamic_cast<Pool2d*>(l)) {
      if (!image) return nullptr;
      op.kind = pool->mode() == Pool2d::Mode::Max ? Op::Kind::MaxPool : Op::Kind::AvgPool;
      op.pool = pool->geometry(s);
    } else if (auto* act = dynamic_cast<Activation*>(l)) {
      op.kind = Op::Kind::Act;
      op.act = act->kind();
    } else if (dynamic_cast<Flatten*>(l)) {
      if (!image) return nullptr;
      image = false;
      e->features = numel(out);
      e->max_row = std::max(e->max_row, e->features);
      s = out;
      continue;
    } else {
      return nullptr;  // a layer without an int8 plan
    }
    if (image) {
      e->max_image = std::max(e->max_image, op.out_values);
    } else {
      e->max_row = std::max({e->max_row, op.in_values, op.out_values});
    }
    (image ? e->spatial : e->rows).push_back(std::move(op));
    s = out;
  }
  if (image || next_q != quant.layers.size() || s.size() != 2) return nullptr;
  fuse(e->spatial);
  fuse(e->rows);
  interleave_features(*e, quant);
  for (const Op& op : e->spatial)
    if (op.max2x2()) e->max_direct = std::max(e->max_direct, int8::direct_workspace(op.conv, true));
  if (e->spatial.empty()) e->features = numel(e->input);
  e->classes = s[1];
  e->max_row = std::max({e->max_row, e->features, e->classes});
  return e;
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE
