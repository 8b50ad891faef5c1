// The int8 kernels of one ISA; see kernels/int8.h.
#include "kernels/int8.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels/fast.h"
#include "lenet/quant.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE::int8 {

namespace {

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
// 8 rows of 16 channels: per group of 4 k, one load of the weights, one
// broadcast and one vpdpbusd per row.
inline constexpr int kRows = 8;
constexpr bool kVnni = true;

// The rows of `a` are MR pointers, and group g of 4 k lies `offset(g)` bytes
// past each (4·g for a matrix; the implicit convolution's table otherwise).
template <int MR, class Offset>
void tile(const uint8_t* const* a, Offset offset, const int16_t* packed, int groups, const int32_t* add, int32_t* c,
          int64_t ldc, int cols) {
  const auto* b = reinterpret_cast<const int8_t*>(packed);
  __m512i acc[MR];
  const __m512i init = _mm512_loadu_si512(add);
  for (int r = 0; r < MR; ++r) acc[r] = init;
  for (int g = 0; g < groups; ++g) {
    const __m512i w = _mm512_loadu_si512(b + static_cast<int64_t>(g) * 64);
    const int64_t at = offset(g);
    for (int r = 0; r < MR; ++r) acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(load_u32(a[r] + at)), w);
  }
  const __mmask16 mask = static_cast<__mmask16>((1u << cols) - 1u);
  for (int r = 0; r < MR; ++r) _mm512_mask_storeu_epi32(c + r * ldc, mask, acc[r]);
}

// The direct convolution's geometry on VNNI: S segments of 16 output pixels
// of one row a step (two where a row is wider than 16), and the width of the
// rows of 4-byte windows (every window a tap group of any step may load: a
// group starts at most KW − 1 columns in).
struct QuadRows {
  int segments, width;
};
inline QuadRows quad_rows(const ConvGeometry& g) {
  const int ow = g.ow(), step = ow > 16 ? 32 : 16;
  const int width = (ow + step - 1) / step * step + g.kw - 1;
  return {step / 16, (width + 15) / 16 * 16};
}
// Column quads are needed where KW % 4 columns are left over and KH ≥ 4.
inline bool uses_columns(const ConvGeometry& g) { return g.kw % 4 != 0 && g.kh >= 4; }

// The tap groups of one input channel: (a, b, down) per group, as DirectWeights says.
// Writes them to `out` (room for 3·KH·KW: every group has a tap) and returns
// how many. (No std::vector growth here: a standard template instantiated in
// this per-ISA file would be a weak symbol outside our namespace, and the
// linker could keep its AVX-512 copy for every caller: scripts/check_isa.sh.)
int tap_layout(const ConvGeometry& g, int32_t* out) {
  int n = 0;
  auto add = [&](int a, int b, int down) {
    out[3 * n] = a, out[3 * n + 1] = b, out[3 * n + 2] = down;
    ++n;
  };
  const int full = g.kw - g.kw % 4, tall = g.kh - g.kh % 4;
  for (int a = 0; a < g.kh; ++a)
    for (int b = 0; b < full; b += 4) add(a, b, 0);
  if (full < g.kw) {
    for (int b = full; b < g.kw; ++b)
      for (int a = 0; a < tall; a += 4) add(a, b, 1);
    for (int a = tall; a < g.kh; ++a) add(a, full, 0);
  }
  return n;
}

// rows[r][j] = the 4 bytes p[r][j .. j + 3] as one dword, for every row of
// the padded image: per 16 dwords, one 32-byte load, a dword permute that puts
// bytes 4L .. 4L + 7 in 128-bit lane L, and a byte shuffle within the lanes.
void build_row_quads(const ConvGeometry& g, const uint8_t* padded, int width, int32_t* quads) {
  const int rows = g.c * (g.h + 2 * g.ph), wp = g.w + 2 * g.pw;
  const __m512i spread = _mm512_set_epi32(0, 0, 4, 3, 0, 0, 3, 2, 0, 0, 2, 1, 0, 0, 1, 0);
  const __m512i windows = _mm512_set4_epi32(0x06050403, 0x05040302, 0x04030201, 0x03020100);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* src = padded + static_cast<int64_t>(r) * wp;
    int32_t* dst = quads + static_cast<int64_t>(r) * width;
    for (int j = 0; j < width; j += 16) {
      const __m512i bytes = _mm512_maskz_loadu_epi32(0x00ff, src + j);  // 32 bytes
      const __m512i lanes = _mm512_maskz_permutexvar_epi32(0xffff, spread, bytes);
      _mm512_storeu_si512(dst + j, _mm512_shuffle_epi8(lanes, windows));
    }
  }
}

// columns[r][j] = the bytes p[r][j], p[r + 1][j], p[r + 2][j], p[r + 3][j] as
// one dword, for the rows r of each channel that have 3 below them: two
// rounds of byte and word unpacking of 4 rows, 16 columns at a time.
void build_column_quads(const ConvGeometry& g, const uint8_t* padded, int width, int32_t* quads) {
  const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
  for (int c = 0; c < g.c; ++c)
    for (int r = 0; r + 3 < hp; ++r) {
      const uint8_t* src = padded + (static_cast<int64_t>(c) * hp + r) * wp;
      int32_t* dst = quads + (static_cast<int64_t>(c) * hp + r) * width;
      for (int j = 0; j < width; j += 16) {
        auto row = [&](int t) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + t * wp + j)); };
        const __m128i r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3);
        const __m128i lo01 = _mm_unpacklo_epi8(r0, r1), hi01 = _mm_unpackhi_epi8(r0, r1);
        const __m128i lo23 = _mm_unpacklo_epi8(r2, r3), hi23 = _mm_unpackhi_epi8(r2, r3);
        auto* out = reinterpret_cast<__m128i*>(dst + j);
        _mm_storeu_si128(out, _mm_unpacklo_epi16(lo01, lo23));
        _mm_storeu_si128(out + 1, _mm_unpackhi_epi16(lo01, lo23));
        _mm_storeu_si128(out + 2, _mm_unpacklo_epi16(hi01, hi23));
        _mm_storeu_si128(out + 3, _mm_unpackhi_epi16(hi01, hi23));
      }
    }
}

// TO output channels × S segments of 16 pixels in the accumulators; per tap
// group, one load of 16 windows per segment and one vpdpbusd per channel
// (the group's 4 weights broadcast). With Pool, a 2×2 stride-2 max pooling of
// the sums: an even row's sums wait (spilled to the stack) for the odd row
// below, the larger of the two, then of each pair of columns (two permutes of
// the S segments), is stored: ⌊OH/2⌋ × ⌊OW/2⌋ a channel.
template <int TO, int S, bool Pool>
void direct(const ConvGeometry& g, const int32_t* row_quads, const int32_t* column_quads, int width,
            const DirectWeights& d, int32_t* y) {
  const int oh = g.oh(), ow = g.ow(), hp = g.h + 2 * g.ph;
  const int out_w = Pool ? ow / 2 : ow, rows = Pool ? oh / 2 * 2 : oh;
  const int64_t plane = static_cast<int64_t>(Pool ? oh / 2 : oh) * out_w, channel = static_cast<int64_t>(hp) * width;
  const int32_t* layout = d.layout.get();
  const __m512i even_lanes = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd_lanes = _mm512_add_epi32(even_lanes, _mm512_set1_epi32(1));
  [[maybe_unused]] __m512i above[TO][S] = {};  // (set: GCC cannot see that odd rows follow even ones)
  for (int j0 = 0; j0 < ow; j0 += 16 * S)
    for (int i = 0; i < rows; ++i) {
      __m512i acc[TO][S];
      for (int o = 0; o < TO; ++o)
        for (int s = 0; s < S; ++s) acc[o][s] = _mm512_set1_epi32(d.add[o]);
      const int32_t* w = d.data.get();
      for (int c = 0; c < g.c; ++c)
        for (int k = 0; k < d.groups; ++k, w += TO) {
          const int32_t* t = layout + 3 * k;
          const int32_t* row = (t[2] ? column_quads : row_quads) + c * channel +
                               static_cast<int64_t>(i * g.sh + t[0]) * width + j0 + t[1];
          __m512i x[S];
          for (int s = 0; s < S; ++s) x[s] = _mm512_loadu_si512(row + 16 * s);
          for (int o = 0; o < TO; ++o) {
            const __m512i wo = _mm512_set1_epi32(w[o]);
            for (int s = 0; s < S; ++s) acc[o][s] = _mm512_dpbusd_epi32(acc[o][s], x[s], wo);
          }
        }
      if constexpr (Pool) {
        if (i % 2 == 0) {
          for (int o = 0; o < TO; ++o)
            for (int s = 0; s < S; ++s) above[o][s] = acc[o][s];
          continue;
        }
        const int count = std::min(8 * S, out_w - j0 / 2);
        const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u);
        for (int o = 0; o < TO; ++o) {
          const __m512i v0 = _mm512_maskz_max_epi32(0xffff, acc[o][0], above[o][0]);
          const __m512i v1 = S == 2 ? _mm512_maskz_max_epi32(0xffff, acc[o][S - 1], above[o][S - 1]) : v0;
          const __m512i best = _mm512_maskz_max_epi32(0xffff, _mm512_permutex2var_epi32(v0, even_lanes, v1),
                                                      _mm512_permutex2var_epi32(v0, odd_lanes, v1));
          _mm512_mask_storeu_epi32(y + o * plane + static_cast<int64_t>(i / 2) * out_w + j0 / 2, mask, best);
        }
        continue;
      }
      for (int s = 0; s < S; ++s) {
        const int count = std::min(16, ow - j0 - 16 * s);
        if (count <= 0) break;
        const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u);
        for (int o = 0; o < TO; ++o)
          _mm512_mask_storeu_epi32(y + o * plane + static_cast<int64_t>(i) * ow + j0 + 16 * s, mask, acc[o][s]);
      }
    }
}

template <int TO, bool Pool>
void direct(const ConvGeometry& g, const int32_t* quads, const DirectWeights& d, int32_t* y) {
  const QuadRows q = quad_rows(g);
  const int32_t* columns = quads + static_cast<int64_t>(g.c) * (g.h + 2 * g.ph) * q.width;
  if (q.segments == 2)
    direct<TO, 2, Pool>(g, quads, columns, q.width, d, y);
  else
    direct<TO, 1, Pool>(g, quads, columns, q.width, d, y);
}
#else
// uint8 widened to int16 pairs (a0, a1), (a2, a3) of each group of 4 k, times
// int16 weight pairs: pmaddwd sums each pair into one int32, exactly. A tile
// covers one or two blocks of kCols channels (two share each row's widening).
#if defined(__AVX2__)
inline constexpr int kRows = 6;
using vec = __m256i;
inline vec vload(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline void vstore(void* p, vec v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
inline vec madd(vec x, vec y) { return _mm256_madd_epi16(x, y); }
inline vec add32(vec x, vec y) { return _mm256_add_epi32(x, y); }
// The group's dword in every lane, then one byte shuffle per pair: each
// dword becomes (a0, 0, a1, 0) = int16 (a0, a1), or (a2, a3).
struct Widened {
  vec lo, hi;
};
inline Widened widen(int32_t u) {
  const vec x = _mm256_set1_epi32(u);
  const vec lo = _mm256_set1_epi32(static_cast<int32_t>(0x80018000u));
  const vec hi = _mm256_set1_epi32(static_cast<int32_t>(0x80038002u));
  return {_mm256_shuffle_epi8(x, lo), _mm256_shuffle_epi8(x, hi)};
}
// Lane j: int16 (p[j], p[j + 1]), j < kCols; reads p[0 .. 8].
inline vec row_pairs(const uint8_t* p) {
  const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 1));
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
}
inline vec splat32(int32_t v) { return _mm256_set1_epi32(v); }
#elif defined(__SSE2__)
inline constexpr int kRows = 4;
using vec = __m128i;
inline vec vload(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline void vstore(void* p, vec v) { _mm_storeu_si128(static_cast<__m128i*>(p), v); }
inline vec madd(vec x, vec y) { return _mm_madd_epi16(x, y); }
inline vec add32(vec x, vec y) { return _mm_add_epi32(x, y); }
struct Widened {
  vec lo, hi;
};
inline Widened widen(int32_t u) {  // (no pshufb in SSE2: unpack, then one dword shuffle per pair)
  const vec x = _mm_unpacklo_epi8(_mm_set1_epi32(u), _mm_setzero_si128());
  return {_mm_shuffle_epi32(x, 0x00), _mm_shuffle_epi32(x, 0x55)};
}
inline vec row_pairs(const uint8_t* p) {  // reads p[0 .. 4]
  const vec a = _mm_cvtsi32_si128(load_u32(p)), b = _mm_cvtsi32_si128(load_u32(p + 1));
  return _mm_unpacklo_epi8(_mm_unpacklo_epi8(a, b), _mm_setzero_si128());
}
inline vec splat32(int32_t v) { return _mm_set1_epi32(v); }
#else
// Other CPUs (the aarch64 "generic" path): the same arithmetic lane by lane;
// a vec holds kCols int32, or 2·kCols int16 for the widened pairs.
inline constexpr int kRows = 4;
struct vec {
  int32_t v[kCols];
};
inline vec vload(const void* p) {
  vec r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
inline void vstore(void* p, vec x) { std::memcpy(p, x.v, sizeof x.v); }
inline int16_t half(const vec& x, int i) {
  int16_t h[2 * kCols];
  std::memcpy(h, x.v, sizeof h);
  return h[i];
}
inline vec madd(vec x, vec y) {
  vec r;
  for (int c = 0; c < kCols; ++c)
    r.v[c] = int32_t{half(x, 2 * c)} * half(y, 2 * c) + int32_t{half(x, 2 * c + 1)} * half(y, 2 * c + 1);
  return r;
}
inline vec add32(vec x, vec y) {
  for (int c = 0; c < kCols; ++c) x.v[c] += y.v[c];
  return x;
}
struct Widened {
  vec lo, hi;
};
// Bytes (a0, a1) widened to int16 in every pair of halves of lo, (a2, a3) of hi.
inline Widened widen(int32_t u) {
  int16_t lo[2 * kCols], hi[2 * kCols];
  for (int i = 0; i < 2 * kCols; ++i) {
    lo[i] = static_cast<int16_t>((static_cast<uint32_t>(u) >> (8 * (i % 2))) & 0xffu);
    hi[i] = static_cast<int16_t>((static_cast<uint32_t>(u) >> (8 * (2 + i % 2))) & 0xffu);
  }
  Widened w;
  std::memcpy(w.lo.v, lo, sizeof lo);
  std::memcpy(w.hi.v, hi, sizeof hi);
  return w;
}
inline vec row_pairs(const uint8_t* p) {
  int16_t h[2 * kCols];
  for (int j = 0; j < kCols; ++j) {
    h[2 * j] = p[j];
    h[2 * j + 1] = p[j + 1];
  }
  vec r;
  std::memcpy(r.v, h, sizeof h);
  return r;
}
inline vec splat32(int32_t v) {
  vec r;
  for (int32_t& x : r.v) x = v;
  return r;
}
#endif
constexpr bool kVnni = false;

// MR rows × NB blocks of kCols channels; the blocks lie block_stride int16
// apart in the packed weights, their channels consecutive in c; the last
// block stores `cols` channels. Rows and groups as in the VNNI tile.
template <int MR, int NB, class Offset>
void tile(const uint8_t* const* a, Offset offset, const int16_t* b, int64_t block_stride, int groups,
          const int32_t* add, int32_t* c, int64_t ldc, int cols) {
  vec acc[MR][NB];
  for (int j = 0; j < NB; ++j) {
    const vec init = vload(add + j * kCols);
    for (int r = 0; r < MR; ++r) acc[r][j] = init;
  }
  for (int g = 0; g < groups; ++g) {
    vec w01[NB], w23[NB];
    for (int j = 0; j < NB; ++j) {
      const int16_t* bj = b + j * block_stride + static_cast<int64_t>(g) * 4 * kCols;
      w01[j] = vload(bj);
      w23[j] = vload(bj + 2 * kCols);
    }
    const int64_t at = offset(g);
    for (int r = 0; r < MR; ++r) {
      const Widened x = widen(load_u32(a[r] + at));
      for (int j = 0; j < NB; ++j) acc[r][j] = add32(acc[r][j], add32(madd(x.lo, w01[j]), madd(x.hi, w23[j])));
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j + 1 < NB; ++j) vstore(c + r * ldc + j * kCols, acc[r][j]);
    int32_t* last = c + r * ldc + (NB - 1) * kCols;
    if (cols == kCols) {
      vstore(last, acc[r][NB - 1]);
    } else {
      int32_t tmp[kCols];
      vstore(tmp, acc[r][NB - 1]);
      std::memcpy(last, tmp, sizeof(int32_t) * static_cast<size_t>(cols));
    }
  }
}

// The direct convolution with TO (= O) output channels: kCols output pixels
// of one row a step, one pmaddwd per channel and tap pair.
template <int TO>
void direct(const ConvGeometry& g, const uint8_t* padded, const DirectWeights& d, int32_t* y) {
  const int oh = g.oh(), ow = g.ow(), hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
  const int64_t plane = static_cast<int64_t>(oh) * ow;
  const int pairs = (g.kw + 1) / 2;  // per kernel row: d.groups / KH
  for (int i = 0; i < oh; ++i)
    for (int j0 = 0; j0 < ow; j0 += kCols) {
      vec acc[TO];
      for (int o = 0; o < TO; ++o) acc[o] = splat32(d.add[o]);
      const int32_t* w = d.data.get();
      for (int c = 0; c < g.c; ++c)
        for (int a = 0; a < g.kh; ++a) {
          const uint8_t* row = padded + (static_cast<int64_t>(c) * hp + i * g.sh + a) * wp + j0;
          for (int q = 0; q < pairs; ++q, w += TO) {
            const vec x = row_pairs(row + 2 * q);
            for (int o = 0; o < TO; ++o) acc[o] = add32(acc[o], madd(x, splat32(w[o])));
          }
        }
      const int count = std::min(kCols, ow - j0);
      for (int o = 0; o < TO; ++o) {
        int32_t* dst = y + o * plane + static_cast<int64_t>(i) * ow + j0;
        if (count == kCols) {
          vstore(dst, acc[o]);
        } else {
          int32_t tmp[kCols];
          vstore(tmp, acc[o]);
          std::memcpy(dst, tmp, sizeof(int32_t) * static_cast<size_t>(count));
        }
      }
    }
}
#endif

}  // namespace

void pack(int n, int k, const int8_t* w, const int32_t* bias, int32_t zero_point, PackedWeights& p) {
  p.n = n;
  p.k = k;
  p.kp = padded_k(k);
  p.np = padded_n(n);
  p.data.reset(new int16_t[static_cast<size_t>(p.np) * p.kp]());
  p.add.reset(new int32_t[static_cast<size_t>(p.np)]());
  auto* bytes = reinterpret_cast<int8_t*>(p.data.get());
  for (int o = 0; o < n; ++o) {
    const int jb = o / kCols, col = o % kCols;
    int32_t sum = 0;
    for (int kk = 0; kk < k; ++kk) {
      // The two's-complement value, by way of unsigned char (bugprone-signed-char-misuse).
      const auto u = static_cast<uint8_t>(w[static_cast<int64_t>(o) * k + kk]);
      const int32_t wide = u >= 128 ? static_cast<int32_t>(u) - 256 : static_cast<int32_t>(u);
      const int8_t v = w[static_cast<int64_t>(o) * k + kk];
      sum += wide;
      if constexpr (kVnni) {
        bytes[static_cast<int64_t>(jb) * p.kp * kCols * 2 + (static_cast<int64_t>(kk / 4) * kCols + col) * 4 + kk % 4] =
            v;
      } else {
        p.data[((static_cast<int64_t>(jb) * (p.kp / 2) + kk / 2) * kCols + col) * 2 + kk % 2] = static_cast<int16_t>(
            wide);
      }
    }
    p.add[o] = (bias ? bias[o] : 0) - zero_point * sum;
  }
}

namespace {

// f(std::integral_constant<int, mr>) for a run-time mr in 1..Max.
template <int Max, class F>
void with_rows(int mr, F&& f) {
  [&]<int... R>(std::integer_sequence<int, R...>) {
    ((mr == R + 1 ? (f(std::integral_constant<int, R + 1>{}), 0) : 0), ...);
  }
  (std::make_integer_sequence<int, Max>{});
}

// Rows r0 .. m − 1 in tiles of at most Max rows, as equal as they come
// (10 rows: 5 + 5, not 8 + 2, whose 2-row tile would load a block of weights
// per 2 rows); f(r, mr) for each.
template <int Max, class F>
void row_tiles(int m, F&& f) {
  for (int r = 0; r < m;) {
    const int tiles = (m - r + Max - 1) / Max, mr = (m - r + tiles - 1) / tiles;
    f(r, mr);
    r += mr;
  }
}

// c[r][o] = add[o] + Σ_g Σ_t row(r)[offset(g) + t] · w[o][4g + t]: the
// product over rows that are anywhere (a matrix's, or the windows of an image
// in the implicit convolution).
template <class RowAt, class Offset>
void product(int m, RowAt row_at, Offset offset, const PackedWeights& w, int32_t* c, int64_t ldc) {
  const int groups = w.kp / 4;
  const int64_t block_stride = static_cast<int64_t>(w.kp) * kCols;
  const uint8_t* rows[kRows];
  auto rows_from = [&](int r0, int count) {
    for (int r = 0; r < count; ++r) rows[r] = row_at(r0 + r);
  };
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  for (int jb = 0; jb * kCols < w.n; ++jb) {
    const int cols = std::min(kCols, w.n - jb * kCols);
    const int16_t* b = w.data.get() + jb * block_stride;
    const int32_t* add = w.add.get() + jb * kCols;
    row_tiles<kRows>(m, [&](int r, int mr) {
      rows_from(r, mr);
      with_rows<kRows>(mr, [&](auto n) {
        tile<decltype(n)::value>(rows, offset, b, groups, add, c + r * ldc + jb * kCols, ldc, cols);
      });
    });
  }
#else
  // Two blocks at a time where two are left (the rows' widening shared),
  // with fewer rows per tile to stay within the vector registers.
  constexpr int kPairRows = kRows * 2 / 3;
  // NB blocks from block jb on, in tiles of at most MaxRows rows.
  auto blocks = [&]<int NB, int MaxRows>(int jb) {
    const int cols = std::min(kCols, w.n - (jb + NB - 1) * kCols);
    const int16_t* b = w.data.get() + jb * block_stride;
    const int32_t* add = w.add.get() + jb * kCols;
    row_tiles<MaxRows>(m, [&](int r, int mr) {
      rows_from(r, mr);
      with_rows<MaxRows>(mr, [&](auto n) {
        tile<decltype(n)::value, NB>(rows, offset, b, block_stride, groups, add, c + r * ldc + jb * kCols, ldc, cols);
      });
    });
  };
  int jb = 0;
  for (; (jb + 1) * kCols < w.n; jb += 2) blocks.template operator()<2, kPairRows>(jb);
  if (jb * kCols < w.n) blocks.template operator()<1, kRows>(jb);
#endif
}

}  // namespace

void gemm(int m, const uint8_t* a, int64_t lda, const PackedWeights& w, int32_t* c, int64_t ldc) {
  product(
      m, [=](int r) { return a + r * lda; }, [](int g) { return static_cast<int64_t>(4) * g; }, w, c, ldc);
}

void pack_implicit(const ConvGeometry& g, const int8_t* w, const int32_t* bias, int32_t zero_point,
                   ImplicitWeights& p) {
  // Kernel row a's KW·C weights in window order (b, c), padded to whole groups.
  const int run = g.kw * g.c, per_row = (run + 3) / 4 * 4;
  std::unique_ptr<int8_t[]> reordered(new int8_t[static_cast<size_t>(g.o) * g.kh * per_row]());
  for (int o = 0; o < g.o; ++o)
    for (int c = 0; c < g.c; ++c)
      for (int a = 0; a < g.kh; ++a)
        for (int b = 0; b < g.kw; ++b)
          reordered[(static_cast<size_t>(o) * g.kh + a) * per_row + b * g.c + c] =
              w[((static_cast<int64_t>(o) * g.c + c) * g.kh + a) * g.kw + b];
  pack(g.o, g.kh * per_row, reordered.get(), bias, zero_point, p.w);
  const int64_t row_bytes = static_cast<int64_t>(g.w + 2 * g.pw) * g.c;
  p.offsets.reset(new int32_t[static_cast<size_t>(g.kh) * (per_row / 4)]);
  for (int a = 0; a < g.kh; ++a)
    for (int q = 0; q < per_row / 4; ++q)
      p.offsets[static_cast<size_t>(a) * (per_row / 4) + q] = static_cast<int32_t>(a * row_bytes + 4 * q);
}

void pad_hwc(const ConvGeometry& g, const uint8_t* x, uint8_t zero_point, uint8_t* padded) {
  const int wp = g.w + 2 * g.pw;
  std::fill_n(padded, padded_bytes(g), zero_point);
  for (int r = 0; r < g.h; ++r)
    for (int j = 0; j < g.w; ++j) {
      uint8_t* dst = padded + ((static_cast<int64_t>(r) + g.ph) * wp + j + g.pw) * g.c;
      for (int c = 0; c < g.c; ++c) dst[c] = x[(static_cast<int64_t>(c) * g.h + r) * g.w + j];
    }
}

void conv_implicit(const ConvGeometry& g, const uint8_t* padded, const ImplicitWeights& p, int32_t* y) {
  const int oh = g.oh(), ow = g.ow();
  const int64_t wp = g.w + 2 * g.pw, step = static_cast<int64_t>(g.sw) * g.c;
  const int32_t* offsets = p.offsets.get();
  // One output row at a time, so that a tile never spans two.
  for (int i = 0; i < oh; ++i) {
    const uint8_t* first = padded + i * g.sh * wp * g.c;
    product(
        ow, [=](int j) { return first + j * step; }, [=](int grp) { return static_cast<int64_t>(offsets[grp]); }, p.w,
        y + static_cast<int64_t>(i) * ow * p.w.np, p.w.np);
  }
}

bool direct_fits(const ConvGeometry& g) { return g.sw == 1 && g.o <= kDirectMaxChannels; }

void pack_direct(const ConvGeometry& g, const int8_t* w, const int32_t* bias, int32_t zero_point, DirectWeights& d) {
  d.o = g.o;
  // Tap group k of one channel: kDirectTaps taps from (layout[3k], layout[3k + 1])
  // along the row, or down the column if layout[3k + 2].
  d.layout.reset(new int32_t[static_cast<size_t>(3) * g.kh * g.kw]);
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  d.groups = tap_layout(g, d.layout.get());
#else
  d.groups = 0;
  for (int a = 0; a < g.kh; ++a)
    for (int b = 0; b < g.kw; b += 2, ++d.groups) {
      d.layout[3 * d.groups] = a, d.layout[3 * d.groups + 1] = b, d.layout[3 * d.groups + 2] = 0;
    }
#endif
  d.data.reset(new int32_t[static_cast<size_t>(g.c) * d.groups * g.o]());
  d.add.reset(new int32_t[static_cast<size_t>(g.o)]);
  constexpr int kBits = 32 / kDirectTaps;  // int16 halves or int8 bytes, the first tap lowest
  auto tap = [&](int o, int c, int a, int b) {
    const auto u = static_cast<uint8_t>(w[((static_cast<int64_t>(o) * g.c + c) * g.kh + a) * g.kw + b]);
    return u >= 128 ? static_cast<int32_t>(u) - 256 : static_cast<int32_t>(u);
  };
  for (int o = 0; o < g.o; ++o) {
    int32_t sum = 0;
    for (int c = 0; c < g.c; ++c)
      for (int a = 0; a < g.kh; ++a)
        for (int b = 0; b < g.kw; ++b) sum += tap(o, c, a, b);
    for (int c = 0; c < g.c; ++c)
      for (int k = 0; k < d.groups; ++k) {
        const int32_t* q = d.layout.get() + 3 * k;
        uint32_t word = 0;
        for (int t = 0; t < kDirectTaps; ++t) {
          const int a = q[2] ? q[0] + t : q[0], b = q[2] ? q[1] : q[1] + t;
          if (a < g.kh && b < g.kw)
            word |= (static_cast<uint32_t>(tap(o, c, a, b)) & ((1u << kBits) - 1u)) << (kBits * t);
        }
        d.data[(static_cast<size_t>(c) * d.groups + k) * g.o + o] = static_cast<int32_t>(word);
      }
    d.add[o] = (bias ? bias[o] : 0) - zero_point * sum;
  }
}

int64_t direct_workspace(const ConvGeometry& g, bool max2x2) {
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  (void)max2x2;
  return static_cast<int64_t>(g.c) * (g.h + 2 * g.ph) * quad_rows(g).width * (uses_columns(g) ? 2 : 1);
#else
  return max2x2 ? static_cast<int64_t>(g.o) * g.oh() * g.ow() : 0;
#endif
}

namespace {

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
using Quads = int32_t;
#else
using Quads = uint8_t;  // the pair kernel reads the padded image itself
#endif

template <bool Pool>
void direct_channels(const ConvGeometry& g, const Quads* quads, const DirectWeights& d, int32_t* y) {
  auto run = [&]<int TO>() {
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
    direct<TO, Pool>(g, quads, d, y);
#else
    static_assert(!Pool);
    direct<TO>(g, quads, d, y);
#endif
  };
  switch (g.o) {
    case 1: return run.template operator()<1>();
    case 2: return run.template operator()<2>();
    case 3: return run.template operator()<3>();
    case 4: return run.template operator()<4>();
    case 5: return run.template operator()<5>();
    case 6: return run.template operator()<6>();
    case 7: return run.template operator()<7>();
    case 8: return run.template operator()<8>();
    default: throw std::invalid_argument("int8 conv_direct: more than 8 output channels");
  }
}

// The padded image as the direct kernels read it (VNNI: its quads, built in
// the workspace).
const Quads* direct_input(const ConvGeometry& g, const uint8_t* padded, int32_t* workspace) {
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  const int width = quad_rows(g).width;
  build_row_quads(g, padded, width, workspace);
  if (uses_columns(g))
    build_column_quads(g, padded, width, workspace + static_cast<int64_t>(g.c) * (g.h + 2 * g.ph) * width);
  return workspace;
#else
  (void)g, (void)workspace;
  return padded;
#endif
}

}  // namespace

void conv_direct(const ConvGeometry& g, const uint8_t* padded, const DirectWeights& d, int32_t* workspace, int32_t* y) {
  direct_channels<false>(g, direct_input(g, padded, workspace), d, y);
}

void conv_direct_max2x2(const ConvGeometry& g, const uint8_t* padded, const DirectWeights& d, int32_t* workspace,
                        int32_t* y) {
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  direct_channels<true>(g, direct_input(g, padded, workspace), d, y);
#else
  // The sums in the workspace, then their maxima.
  direct_channels<false>(g, padded, d, workspace);
  const int oh = g.oh(), ow = g.ow(), ph = oh / 2, pw = ow / 2;
  for (int o = 0; o < g.o; ++o)
    for (int i = 0; i < ph; ++i) {
      const int32_t* top = workspace + (static_cast<int64_t>(o) * oh + 2 * i) * ow;
      const int32_t* bottom = top + ow;
      int32_t* out = y + (static_cast<int64_t>(o) * ph + i) * pw;
      for (int j = 0; j < pw; ++j)
        out[j] = std::max(std::max(top[2 * j], top[2 * j + 1]), std::max(bottom[2 * j], bottom[2 * j + 1]));
    }
#endif
}

void pad(const ConvGeometry& g, const uint8_t* x, uint8_t zero_point, uint8_t* padded) {
  const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
  std::fill_n(padded, padded_bytes(g), zero_point);
  for (int c = 0; c < g.c; ++c)
    for (int r = 0; r < g.h; ++r)
      std::memcpy(padded + (static_cast<int64_t>(c) * hp + r + g.ph) * wp + g.pw,
                  x + (static_cast<int64_t>(c) * g.h + r) * g.w, static_cast<size_t>(g.w));
}

void conv2d_int8(const ConvGeometry& g, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y) {
  g.validate("conv2d_int8");
  const int64_t pixels = static_cast<int64_t>(g.oh()) * g.ow();
  if (direct_fits(g)) {
    DirectWeights d;
    pack_direct(g, w, bias, x_zero_point, d);
    std::unique_ptr<uint8_t[]> padded(new uint8_t[static_cast<size_t>(padded_bytes(g))]);
    std::unique_ptr<int32_t[]> workspace(new int32_t[static_cast<size_t>(std::max<int64_t>(direct_workspace(g), 1))]);
    for (int n = 0; n < g.n; ++n) {
      pad(g, x + static_cast<int64_t>(n) * g.c * g.h * g.w, static_cast<uint8_t>(x_zero_point), padded.get());
      conv_direct(g, padded.get(), d, workspace.get(), y + static_cast<int64_t>(n) * g.o * pixels);
    }
    return;
  }
  ImplicitWeights p;
  pack_implicit(g, w, bias, x_zero_point, p);
  std::unique_ptr<uint8_t[]> padded(new uint8_t[static_cast<size_t>(padded_bytes(g))]);
  std::unique_ptr<int32_t[]> out(new int32_t[static_cast<size_t>(pixels * p.w.np)]);
  for (int n = 0; n < g.n; ++n) {
    pad_hwc(g, x + static_cast<int64_t>(n) * g.c * g.h * g.w, static_cast<uint8_t>(x_zero_point), padded.get());
    conv_implicit(g, padded.get(), p, out.get());
    int32_t* yn = y + static_cast<int64_t>(n) * g.o * pixels;
    for (int64_t q = 0; q < pixels; ++q)
      for (int o = 0; o < g.o; ++o) yn[o * pixels + q] = out[static_cast<size_t>(q * p.w.np + o)];
  }
}

void linear_int8(int n, int in, int out, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y) {
  PackedWeights p;
  pack(out, in, w, bias, x_zero_point, p);
  std::unique_ptr<uint8_t[]> rows(new uint8_t[static_cast<size_t>(n) * p.kp]());
  for (int r = 0; r < n; ++r)
    std::memcpy(rows.get() + static_cast<int64_t>(r) * p.kp, x + static_cast<int64_t>(r) * in, static_cast<size_t>(in));
  gemm(n, rows.get(), p.kp, p, y, out);
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE::int8
