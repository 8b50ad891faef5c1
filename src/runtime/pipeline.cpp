// The planned engine of a Sequential, compiled once per ISA (runtime/isa.h):
// the whole stack run in one parallel region per pass, each thread taking
// whole blocks of simd::kLanes images through every layer while they are in
// its cache.
//
//   x ─pack─► conv(+act) ─► act ─► pool ─► … ─unpack─► flatten rows ─► linear ─► act ─► …
//            └──────── blocked: batch in the lanes ─────────┘        └── rows of the block ──┘
//
// Convolutions, activations and pooling keep the blocked layout from the input
// to Flatten (no transposes between them; an activation right after a
// convolution is applied as its output is written, or after a max pooling to
// the maxima only); Linear layers and what follows work on rows.
//
// Each block of kLanes images is one chunk of work: the chunks depend only on
// the batch size, and threads take them as they come (a thread the machine
// delays takes fewer), so every worker of --threads N has work while there
// are blocks left. Convolution weight gradients are summed per chunk and the
// chunks added in chunk order; Linear weight gradients are computed over the
// whole batch afterwards, split by output feature. Results are therefore
// bit-identical for the same seed whatever the thread count. All buffers are
// kept between steps: a training step allocates nothing.
//
// A forward pass of a few images (direct::kMaxBatch: single-image latency)
// takes the per-image kernels instead, layer by layer on NCHW tensors (the
// direct convolution of conv_direct.h): a block would be mostly empty. A
// backward pass after such a forward first runs the blocked forward, whose
// buffers it needs.
#include "runtime/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <stdexcept>

#include "kernels/blocked.h"
#include "kernels/conv_direct.h"
#include "kernels/dropout_mask.h"
#include "kernels/fast.h"
#include "kernels/gemm.h"
#include "kernels/simd.h"
#include "lenet/nn.h"
#include "lenet/parallel.h"
#include "runtime/thread_pool.h"
#include "runtime/threads.h"

namespace lenet::kernels::LENET_ISA_NAMESPACE {

namespace {

using blocked::Act;
using simd::kLanes;

Act act_of(Activation::Kind kind) {
  switch (kind) {
    case Activation::Kind::Sigmoid: return Act::Sigmoid;
    case Activation::Kind::ReLU: return Act::ReLU;
    case Activation::Kind::Tanh: return Act::Tanh;
  }
  return Act::None;
}

// A blocked tensor for the whole batch: [blocks][C][H+2PH][W+2PW][kLanes].
struct Buffer {
  int c = 1, h = 1, w = 1, ph = 0, pw = 0;
  // Read only by the next layer's forward: lives in a per-thread scratch
  // block (in L2) instead of a buffer for the whole batch.
  bool transient = false;
  Tensor data;
  int64_t block_floats() const { return static_cast<int64_t>(c) * (h + 2 * ph) * (w + 2 * pw) * kLanes; }
  float* block(int64_t b) { return data.data() + b * block_floats(); }
  float* block(int64_t b, float* scratch) { return transient ? scratch : block(b); }
};

// int32 storage that grows and is kept (no std::vector<int32_t> here: its
// members would be instantiated per ISA under one name; see isa_namespace.h).
struct Codes {
  std::unique_ptr<int32_t[]> p;
  int64_t size = 0;
  void ensure(int64_t n) {
    if (n > size) p.reset(new int32_t[static_cast<size_t>(size = n)]);
  }
  int32_t* data() { return p.get(); }
};

// float64 storage that grows and is kept (see Codes).
struct Doubles {
  std::unique_ptr<double[]> p;
  int64_t size = 0;
  void ensure(int64_t n) {
    if (n > size) p.reset(new double[static_cast<size_t>(size = n)]);
  }
  double* data() { return p.get(); }
};

// A BatchNorm inside the engine. With batch statistics (training) it splits
// the pass: every chunk adds up its images' values per channel (and, after
// the mean is known, the squared deviations), the chunks' sums are added in
// chunk order, then the next stage normalises. Backward likewise sums Σ dy
// and Σ dy·x̂ per chunk before the input gradient.
struct NormState {
  BatchNorm* bn = nullptr;
  bool batch = false;  // the last forward used the batch's statistics
  int c = 0;
  int64_t plane = 1, h = 1, w = 1;    // values per channel per image: h·w
  Tensor mean, invstd, scale, shift;  // [C] of the last forward
  Tensor mean_dy, mean_dy_xhat;       // [C] backward's coefficients
  Tensor grad;                        // blocked: d(loss)/d(normalised output), the whole batch
  int64_t stat_offset = 0;            // its 2·C doubles in a chunk's statistics
};

// A Dropout inside the engine: its mask of the last training forward.
struct DropState {
  Dropout* dropout = nullptr;
  bool active = false;  // the last forward was in training mode with p > 0
  uint64_t key = 0;
  Tensor mask;  // blocked [blocks][block_floats] or rows [N, F]
};

struct SpatialOp {
  enum class Kind { Conv, Act, MaxPool, AvgPool, AddBorder, Norm, Dropout };
  Kind kind = Kind::Act;
  int in = 0, out = 0;  // buffers
  Act act = Act::None;  // Act, or the activation fused into Conv
  Conv2d* conv = nullptr;
  std::unique_ptr<blocked::Plan> plan;
  PoolGeometry pool;
  Codes codes;              // MaxPool: [blocks][C·OH·OW·kLanes]
  int64_t code_floats = 0;  // per block
  // MaxPool: the activation before it, whose backward it does (see
  // blocked::maxpool_backward_through); Conv/Act: that activation's backward
  // is done by the pooling after it.
  Act through = Act::None;
  bool act_done_by_next = false;
  // MaxPool after a Conv with an activation: pools the convolution's output
  // and activates only the maxima. The activations are non-decreasing, so the
  // maxima are the same, with one activation per window instead of KH·KW.
  bool activate_maxima = false;
  int64_t lane_offset = 0;   // Conv: its lane-wide sums [O·K + O][kLanes] in a thread's scratch
  int64_t chunk_offset = 0;  // Conv: its sums [O·K + O] in a chunk's gradients
  int layer = 0;             // position in the Sequential (for messages)
  NormState norm;            // Norm (with `act` applied after it)
  DropState drop;            // Dropout
};

struct VectorOp {
  enum class Kind { Linear, Act, Flatten, Norm, Dropout };
  Kind kind = Kind::Act;
  int layer = 0;  // position in the Sequential: its output slot
  int in_width = 0, out_width = 0;
  Act act = Act::None;
  Linear* linear = nullptr;
  Tensor wt;  // Linear: wᵀ[in, out], refreshed by every forward
  NormState norm;
  DropState drop;
};

// One layer of the direct (few images) forward, on NCHW tensors.
struct DirectOp {
  Module* layer = nullptr;
  enum class Kind { Conv, Act, MaxPool, AvgPool, Copy, Linear, Norm } kind = Kind::Copy;
  ConvGeometry conv;  // Conv, with n = 1
  PoolGeometry pool;  // pooling, with n = 1
  Act act = Act::None;
  int in_width = 0, out_width = 0;  // Linear
  int64_t out_floats = 0;           // per image
  Shape out_shape;                  // without the batch
  // An activation before a max pooling: the pooling runs first and the
  // activation is applied to its maxima (the same maxima: the activations are
  // non-decreasing); the activation's own output is not made.
  bool skip = false;
  Act then = Act::None;             // MaxPool: the activation applied afterwards
  const NormState* norm = nullptr;  // Norm: the engine's state of that BatchNorm
};

// A tensor slot that survives a vector's resize without copying Tensors
// across ISAs (see Codes).
struct Slot {
  Tensor t;
};

// Per-thread scratch: two blocked gradients in turn for backward, the
// transient buffer of forward, and the lane-wide convolution gradient sums.
struct Scratch {
  Tensor a, b, transient, lanes;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

void ensure(Tensor& t, int64_t n) {
  if (t.numel() < n) t.resize({n});
}

// t.resize(shape) only when the shape changes: a Shape is a vector, and the
// training step should not allocate.
void reshape(Tensor& t, std::initializer_list<int64_t> dims) {
  if (t.dim() == static_cast<int>(dims.size()) && std::equal(dims.begin(), dims.end(), t.shape().begin())) return;
  t.resize(Shape(dims));
}

}  // namespace

class Engine final : public runtime::Pipeline {
 public:
  Shape input;  // the input shape without the batch
  std::vector<Buffer> buffers;
  std::vector<SpatialOp> spatial;
  int flatten = -1;  // position of Flatten, -1 without one
  std::vector<VectorOp> vectors;
  int64_t image_floats = 0;    // of one input image
  int64_t macs_per_image = 0;  // to size the team
  int64_t lane_floats = 0;     // a thread's lane-wide convolution gradient sums
  int64_t chunk_floats = 0;    // a chunk's convolution gradient sums
  int64_t max_block = 0;       // floats of the largest blocked buffer
  int64_t max_transient = 0;   // floats of the largest transient buffer
  // Backward stops at the first layer with parameters (a position: spatial
  // ops 0..S−1, then vector ops S..S+V−1); -1 without parameters.
  int first_param = -1;
  int64_t stat_doubles = 0;  // a chunk's BatchNorm sums
  Doubles chunk_stats;       // [chunks][stat_doubles]

  // State of the last forward.
  int n = 0, blocks = 0, chunks = 1, threads = 1;
  const float* x_data = nullptr;  // the input images
  // dvec[k]: d(loss)/d(input of vector layer k), [N, in_width], for every
  // layer whose input gradient is needed.
  std::vector<Slot> dvec;
  Tensor chunk_grads;  // [chunks][chunk_floats]
  // The direct forward of a few images; direct_last: the last forward took it.
  std::vector<DirectOp> direct;
  Codes direct_codes;
  bool direct_last = false;
  const Tensor* input_tensor = nullptr;  // of the last forward

  const Buffer& last() const { return buffers.back(); }
  // Chunk c: blocks [b0, b1) and rows [r0, r1). The chunks depend only on the
  // batch size; threads take them in any order.
  void chunk(int c, int64_t& b0, int64_t& b1, int64_t& r0, int64_t& r1) const {
    kernels::share(blocks, c, chunks, b0, b1);
    r0 = std::min<int64_t>(b0 * kLanes, n);
    r1 = std::min<int64_t>(b1 * kLanes, n);
  }
  const float* vector_input(const std::vector<Tensor>& outputs) const {
    // Convolutions without a Flatten after them end the stack: no row layers follow.
    if (!spatial.empty()) return flatten >= 0 ? outputs[static_cast<size_t>(flatten)].data() : nullptr;
    return x_data;  // Flatten of an image, or rows, is the input itself
  }
  const float* output_grad(size_t k, const Tensor& dy) const {
    return k + 1 == vectors.size() ? dy.data() : dvec[k + 1].t.data();
  }
  int positions() const { return static_cast<int>(spatial.size() + vectors.size()); }
  int spatial_count() const { return static_cast<int>(spatial.size()); }
  // The BatchNorm at a position, or null.
  NormState* norm_at(int pos) {
    if (pos < 0 || pos >= positions()) return nullptr;
    if (pos < spatial_count()) {
      SpatialOp& op = spatial[static_cast<size_t>(pos)];
      return op.kind == SpatialOp::Kind::Norm ? &op.norm : nullptr;
    }
    VectorOp& op = vectors[static_cast<size_t>(pos - spatial_count())];
    return op.kind == VectorOp::Kind::Norm ? &op.norm : nullptr;
  }
  // The rows a vector op reads.
  const float* vector_rows(size_t k, const std::vector<Tensor>& outputs) const {
    return k ? outputs[static_cast<size_t>(vectors[k - 1].layer)].data() : vector_input(outputs);
  }
  bool fits(const Shape& input) const override;
  void forward(const Tensor& x, std::vector<Tensor>& outputs) override;
  void backward(const Tensor& dy, const std::vector<Tensor>& outputs) override;
  void prepare_modes(bool& direct_ok);
  void blocked_forward(const Tensor& x, std::vector<Tensor>& outputs);
  void direct_forward(const Tensor& x, std::vector<Tensor>& outputs);
  // Stage [from, to) of the forward for chunk c; with batch statistics at
  // `to`, the chunk's sums of that BatchNorm's input.
  void forward_chunk(int c, int from, int to, std::vector<Tensor>& outputs);
  void spatial_forward(int64_t b, int nv, int from, int to, std::vector<Tensor>& outputs, double* stats);
  // The squared deviations from the batch mean of the BatchNorm at `pos`, per chunk.
  void variance_chunk(int c, int pos, const std::vector<Tensor>& outputs);
  // The chunks' sums of the BatchNorm at pos, in chunk order: its statistics
  // (forward) or its gradient sums (backward).
  void finish_norm_forward(int pos);
  void finish_norm_backward(int pos);
  // Stage (lo, hi) of the backward for chunk c: the second half of the
  // BatchNorm at hi (its input gradient; not at the top), the layers between,
  // and the first half of the BatchNorm at lo (its sums) or the layer at lo.
  void backward_chunk(int c, int hi, int lo, const Tensor& dy, const std::vector<Tensor>& outputs);
  void weight_gradients(int t, int team, const Tensor& dy, const std::vector<Tensor>& outputs);
  // d: the gradient of this block's images at the last image layer's output;
  // lanes: the thread's lane-wide convolution gradient sums.
  void spatial_backward(int64_t b, int nv, int hi, int lo, const float* d, float* lanes, double* stats);
};

std::unique_ptr<runtime::Pipeline> build_pipeline(const std::vector<std::unique_ptr<Module>>& layers,
                                                  const Shape& input) {
  if (layers.empty() || input.size() < 2) return nullptr;
  std::vector<Shape> shapes;
  Shape s = input;
  try {
    for (auto& l : layers) shapes.push_back(s = l->output_shape(s));
  } catch (const std::exception&) {
    return nullptr;  // Sequential reports the error (layer_shapes)
  }
  auto engine = std::make_unique<Engine>();
  Engine& p = *engine;
  p.input.assign(input.begin() + 1, input.end());
  p.image_floats = numel(p.input);
  size_t i = 0;
  // Image layers, in blocked buffers.
  if (input.size() == 4) {
    Buffer in;
    in.c = static_cast<int>(input[1]);
    in.h = static_cast<int>(input[2]);
    in.w = static_cast<int>(input[3]);
    p.buffers.push_back(std::move(in));
    auto add_buffer = [&](const Shape& shape) {
      Buffer b;
      b.c = static_cast<int>(shape[1]);
      b.h = static_cast<int>(shape[2]);
      b.w = static_cast<int>(shape[3]);
      p.buffers.push_back(std::move(b));
      return static_cast<int>(p.buffers.size()) - 1;
    };
    for (; i < layers.size(); ++i) {
      Module* l = layers[i].get();
      const int cur = static_cast<int>(p.buffers.size()) - 1;
      SpatialOp op;
      op.in = cur;
      op.layer = static_cast<int>(i);
      if (auto* conv = dynamic_cast<Conv2d*>(l)) {
        const auto& o = conv->options();
        if (o.ph || o.pw) {
          if (cur == 0) {
            p.buffers[0].ph = o.ph;
            p.buffers[0].pw = o.pw;
          } else {
            SpatialOp border;
            border.kind = SpatialOp::Kind::AddBorder;
            border.in = cur;
            const Buffer& from = p.buffers[static_cast<size_t>(cur)];
            Buffer b;
            b.c = from.c;
            b.h = from.h;
            b.w = from.w;
            b.ph = o.ph;
            b.pw = o.pw;
            p.buffers.push_back(std::move(b));
            border.out = op.in = static_cast<int>(p.buffers.size()) - 1;
            p.spatial.push_back(std::move(border));
          }
        }
        op.kind = SpatialOp::Kind::Conv;
        op.conv = conv;
        op.plan = std::make_unique<blocked::Plan>(conv->geometry(i ? shapes[i - 1] : input));
        p.macs_per_image += numel(shapes[i]) / input[0] * o.in * o.kh * o.kw;
        // An activation right after the convolution is applied as it is written.
        if (i + 1 < layers.size())
          if (auto* act = dynamic_cast<Activation*>(layers[i + 1].get())) {
            op.act = act_of(act->kind());
            ++i;
          }
        op.out = add_buffer(shapes[i]);
      } else if (auto* act = dynamic_cast<Activation*>(l)) {
        op.kind = SpatialOp::Kind::Act;
        op.act = act_of(act->kind());
        op.out = add_buffer(shapes[i]);
      } else if (auto* pool = dynamic_cast<Pool2d*>(l)) {
        op.kind = pool->mode() == Pool2d::Mode::Max ? SpatialOp::Kind::MaxPool : SpatialOp::Kind::AvgPool;
        op.pool = pool->geometry(i ? shapes[i - 1] : input);
        op.out = add_buffer(shapes[i]);
        op.code_floats = numel(shapes[i]) / shapes[i][0] * kLanes;
      } else if (auto* bn = dynamic_cast<BatchNorm*>(l)) {
        if (!bn->spatial()) return nullptr;
        op.kind = SpatialOp::Kind::Norm;
        op.norm.bn = bn;
        op.norm.c = bn->features();
        op.norm.h = shapes[i][2];
        op.norm.w = shapes[i][3];
        op.norm.plane = shapes[i][2] * shapes[i][3];
        // An activation right after it is applied as it normalises.
        if (i + 1 < layers.size())
          if (auto* after = dynamic_cast<Activation*>(layers[i + 1].get())) {
            op.act = act_of(after->kind());
            ++i;
          }
        op.out = add_buffer(shapes[i]);
      } else if (auto* drop = dynamic_cast<Dropout*>(l)) {
        op.kind = SpatialOp::Kind::Dropout;
        op.drop.dropout = drop;
        op.out = add_buffer(shapes[i]);
      } else if (dynamic_cast<Flatten*>(l)) {
        p.flatten = static_cast<int>(i++);
        break;
      } else {
        return nullptr;
      }
      // BatchNorm and Dropout read and write unpadded buffers (a padded
      // convolution after them gets its own border op).
      if ((op.kind == SpatialOp::Kind::Norm || op.kind == SpatialOp::Kind::Dropout) &&
          (p.buffers[static_cast<size_t>(op.in)].ph || p.buffers[static_cast<size_t>(op.in)].pw))
        return nullptr;
      p.spatial.push_back(std::move(op));
    }
    if (p.flatten < 0 && i < layers.size()) return nullptr;
  }
  // Vector layers, on rows.
  for (; i < layers.size(); ++i) {
    Module* l = layers[i].get();
    const Shape& in_shape = i ? shapes[i - 1] : input;
    const bool flatten = dynamic_cast<Flatten*>(l) != nullptr;
    if (in_shape.size() != 2 && !flatten) return nullptr;
    VectorOp op;
    op.layer = static_cast<int>(i);
    op.in_width = static_cast<int>(numel(in_shape) / in_shape[0]);
    op.out_width = static_cast<int>(shapes[i][1]);
    if (flatten) {
      op.kind = VectorOp::Kind::Flatten;  // rows stay rows: a copy
    } else if (auto* fc = dynamic_cast<Linear*>(l)) {
      op.kind = VectorOp::Kind::Linear;
      op.linear = fc;
      p.macs_per_image += static_cast<int64_t>(op.in_width) * op.out_width;
    } else if (auto* act = dynamic_cast<Activation*>(l)) {
      op.kind = VectorOp::Kind::Act;
      op.act = act_of(act->kind());
    } else if (auto* bn = dynamic_cast<BatchNorm*>(l)) {
      if (bn->spatial()) return nullptr;
      op.kind = VectorOp::Kind::Norm;
      op.norm.bn = bn;
      op.norm.c = bn->features();
    } else if (auto* drop = dynamic_cast<Dropout*>(l)) {
      op.kind = VectorOp::Kind::Dropout;
      op.drop.dropout = drop;
    } else {
      return nullptr;
    }
    p.vectors.push_back(std::move(op));
  }
  // Convolution gradients: lane-wide sums per thread, plain sums per chunk.
  for (auto& op : p.spatial) {
    if (op.kind != SpatialOp::Kind::Conv) continue;
    const int64_t count = op.plan->weight_size() + op.plan->g.o;
    op.lane_offset = p.lane_floats;
    op.chunk_offset = p.chunk_floats;
    p.lane_floats += count * kLanes;
    p.chunk_floats += count;
  }
  // An activation followed by a max pooling that tiles its input: the pooling
  // does the activation's backward from the pooled maxima, and the
  // activation's output is never kept.
  for (size_t k = 1; k < p.spatial.size(); ++k) {
    SpatialOp& pool = p.spatial[k];
    SpatialOp& before = p.spatial[k - 1];
    const bool activates = before.kind == SpatialOp::Kind::Act ||
                           (before.kind == SpatialOp::Kind::Conv && before.act != Act::None);
    if (pool.kind != SpatialOp::Kind::MaxPool || !activates || !blocked::tiles_input(pool.pool)) continue;
    pool.through = before.act;
    before.act_done_by_next = true;
    pool.activate_maxima = before.kind == SpatialOp::Kind::Conv;
    p.buffers[static_cast<size_t>(before.out)].transient = true;
  }
  for (auto& b : p.buffers) {
    p.max_block = std::max(p.max_block, b.block_floats());
    if (b.transient) p.max_transient = std::max(p.max_transient, b.block_floats());
  }
  // Per-channel state of every BatchNorm, and its place in a chunk's sums.
  for (int pos = 0; pos < p.positions(); ++pos)
    if (NormState* norm = p.norm_at(pos)) {
      for (Tensor* t : {&norm->mean, &norm->invstd, &norm->scale, &norm->shift, &norm->mean_dy, &norm->mean_dy_xhat})
        t->resize({norm->c}, true);
      norm->stat_offset = p.stat_doubles;
      p.stat_doubles += 2 * static_cast<int64_t>(norm->c);
    }
  for (size_t k = 0; k < p.spatial.size() && p.first_param < 0; ++k)
    if (p.spatial[k].kind == SpatialOp::Kind::Conv || p.spatial[k].kind == SpatialOp::Kind::Norm)
      p.first_param = static_cast<int>(k);
  for (size_t k = 0; k < p.vectors.size() && p.first_param < 0; ++k)
    if (p.vectors[k].kind == VectorOp::Kind::Linear || p.vectors[k].kind == VectorOp::Kind::Norm)
      p.first_param = p.spatial_count() + static_cast<int>(k);
  p.dvec.resize(p.vectors.size());
  // The direct forward: every layer on NCHW tensors, for a single image.
  for (size_t k = 0; k < layers.size(); ++k) {
    Module* l = layers[k].get();
    const Shape one = [&] {
      Shape s1 = k ? shapes[k - 1] : input;
      s1[0] = 1;
      return s1;
    }();
    DirectOp op;
    op.layer = l;
    op.out_shape.assign(shapes[k].begin() + 1, shapes[k].end());
    op.out_floats = numel(op.out_shape);
    if (auto* conv = dynamic_cast<Conv2d*>(l)) {
      op.kind = DirectOp::Kind::Conv;
      op.conv = conv->geometry(one);
    } else if (auto* act = dynamic_cast<Activation*>(l)) {
      op.kind = DirectOp::Kind::Act;
      op.act = act_of(act->kind());
    } else if (auto* pool = dynamic_cast<Pool2d*>(l)) {
      op.kind = pool->mode() == Pool2d::Mode::Max ? DirectOp::Kind::MaxPool : DirectOp::Kind::AvgPool;
      op.pool = pool->geometry(one);
      if (op.kind == DirectOp::Kind::MaxPool && !p.direct.empty() && p.direct.back().kind == DirectOp::Kind::Act) {
        p.direct.back().skip = true;
        op.then = p.direct.back().act;
      }
    } else if (auto* fc = dynamic_cast<Linear*>(l)) {
      op.kind = DirectOp::Kind::Linear;
      op.in_width = fc->in_features();
      op.out_width = fc->out_features();
    } else if (auto* bn = dynamic_cast<BatchNorm*>(l)) {
      op.kind = DirectOp::Kind::Norm;  // evaluation only: y = scale · x + shift per channel
      for (int pos = 0; pos < p.positions(); ++pos)
        if (const NormState* state = p.norm_at(pos); state && state->bn == bn) op.norm = state;
    } else {
      op.kind = DirectOp::Kind::Copy;  // Flatten, or Dropout in evaluation: the same floats
    }
    p.direct.push_back(std::move(op));
  }
  return engine;
}

namespace {

// Per channel of one block [C][plane][kLanes]: Σ x over the valid lanes (or
// Σ (x − mean)² when mean is given), added to sums[C] in lane order.
void block_channel_sums(const float* xb, int c_count, int64_t plane, int nv, const float* mean, double* sums) {
  alignas(64) float lane[kLanes];
  for (int ch = 0; ch < c_count; ++ch) {
    const float* x = xb + static_cast<int64_t>(ch) * plane * kLanes;
    simd::vf acc = simd::zero();
    if (mean) {
      const simd::vf m = simd::splat(mean[ch]);
      for (int64_t e = 0; e < plane; ++e) {
        const simd::vf d = simd::load(x + e * kLanes) - m;
        acc = simd::fmadd(d, d, acc);
      }
    } else {
      for (int64_t e = 0; e < plane; ++e) acc += simd::load(x + e * kLanes);
    }
    simd::store(lane, acc);
    double sum = 0;
    for (int l = 0; l < nv; ++l) sum += lane[l];
    sums[ch] += sum;
  }
}

// The same over rows x[rows][C].
void row_channel_sums(const float* x, int64_t rows, int c_count, const float* mean, double* sums) {
  for (int64_t r = 0; r < rows; ++r)
    for (int ch = 0; ch < c_count; ++ch) {
      const float v = x[r * c_count + ch];
      sums[ch] += mean ? static_cast<double>(v - mean[ch]) * (v - mean[ch]) : v;
    }
}

// y = scale · x + shift per channel of a block.
void block_normalise(const NormState& s, const float* xb, float* yb) {
  for (int ch = 0; ch < s.c; ++ch) {
    const simd::vf a = simd::splat(s.scale.data()[ch]), b = simd::splat(s.shift.data()[ch]);
    const int64_t at = static_cast<int64_t>(ch) * s.plane * kLanes;
    for (int64_t e = 0; e < s.plane; ++e)
      simd::store(yb + at + e * kLanes, simd::fmadd(simd::load(xb + at + e * kLanes), a, b));
  }
}

// Σ g and Σ g·x̂ per channel of a block (valid lanes), added to sums[0..C) and sums[C..2C).
void block_norm_grad_sums(const NormState& s, const float* xb, const float* gb, int nv, double* sums) {
  alignas(64) float lane_g[kLanes], lane_gx[kLanes];
  for (int ch = 0; ch < s.c; ++ch) {
    const simd::vf m = simd::splat(s.mean.data()[ch]), is = simd::splat(s.invstd.data()[ch]);
    const int64_t at = static_cast<int64_t>(ch) * s.plane * kLanes;
    simd::vf ag = simd::zero(), agx = simd::zero();
    for (int64_t e = 0; e < s.plane; ++e) {
      const simd::vf g = simd::load(gb + at + e * kLanes);
      const simd::vf xhat = (simd::load(xb + at + e * kLanes) - m) * is;
      ag += g;
      agx = simd::fmadd(g, xhat, agx);
    }
    simd::store(lane_g, ag);
    simd::store(lane_gx, agx);
    double sg = 0, sgx = 0;
    for (int l = 0; l < nv; ++l) {
      sg += lane_g[l];
      sgx += lane_gx[l];
    }
    sums[ch] += sg;
    sums[s.c + ch] += sgx;
  }
}

// dx = scale · (g − mean_dy − x̂ · mean_dy_xhat) per channel of a block, and
// 0 in the lanes beyond n_valid (the layers below sum over every lane).
void block_norm_input_grad(const NormState& s, const float* xb, const float* gb, int nv, float* dxb) {
  alignas(64) float valid[kLanes];
  for (int l = 0; l < kLanes; ++l) valid[l] = l < nv ? 1.0f : 0.0f;
  const simd::vf keep = simd::load(valid);
  for (int ch = 0; ch < s.c; ++ch) {
    const simd::vf m = simd::splat(s.mean.data()[ch]), is = simd::splat(s.invstd.data()[ch]);
    const simd::vf a = simd::splat(s.scale.data()[ch]), mdy = simd::splat(s.mean_dy.data()[ch]);
    const simd::vf mdx = simd::splat(s.mean_dy_xhat.data()[ch]);
    const int64_t at = static_cast<int64_t>(ch) * s.plane * kLanes;
    for (int64_t e = 0; e < s.plane; ++e) {
      const simd::vf xhat = (simd::load(xb + at + e * kLanes) - m) * is;
      const simd::vf g = simd::load(gb + at + e * kLanes);
      simd::store(dxb + at + e * kLanes, keep * (a * (g - mdy - xhat * mdx)));
    }
  }
}

// A block's dropout mask: lane l is image b·kLanes + l (zero beyond n_valid);
// value e of an image is index image·per_image + e of the mask's hash.
void block_dropout_mask(const DropState& d, int64_t b, int nv, int64_t per_image, float* mask) {
  const float p = d.dropout->p(), scale = dropout_keep_scale(p);
  for (int64_t e = 0; e < per_image; ++e)
    for (int l = 0; l < kLanes; ++l)
      mask[e * kLanes + l] = l < nv ? dropout_scale(d.key, (b * kLanes + l) * per_image + e, p, scale) : 0.0f;
}

void multiply(int64_t n, const float* x, const float* m, float* y) {
  for (int64_t e = 0; e < n; ++e) y[e] = x[e] * m[e];
}

}  // namespace

bool Engine::fits(const Shape& x) const {
  return x.size() == input.size() + 1 && std::equal(x.begin() + 1, x.end(), input.begin());
}

void Engine::spatial_forward(int64_t b, int nv, int from, int to, std::vector<Tensor>& outputs, double* stats) {
  Scratch& s = scratch();
  ensure(s.transient, max_transient);
  float* t = s.transient.data();
  Buffer& in = buffers[0];
  if (from == 0) blocked::pack(x_data + b * kLanes * image_floats, nv, in.c, in.h, in.w, in.ph, in.pw, in.block(b, t));
  for (int k = from; k < to; ++k) {
    SpatialOp& op = spatial[static_cast<size_t>(k)];
    Buffer& src = buffers[static_cast<size_t>(op.in)];
    Buffer& dst = buffers[static_cast<size_t>(op.out)];
    switch (op.kind) {
      case SpatialOp::Kind::Conv: {
        const auto& params = op.conv->parameters();
        // (An activation done after the max pooling is not applied here.)
        op.plan->forward(src.block(b, t), params[0].value, params.size() > 1 ? params[1].value : nullptr,
                         dst.block(b, t), op.act_done_by_next ? Act::None : op.act);
        break;
      }
      case SpatialOp::Kind::Act:
        blocked::activation_forward(op.act, dst.block_floats(), src.block(b, t), dst.block(b, t));
        break;
      case SpatialOp::Kind::MaxPool:
        blocked::maxpool_forward(op.pool, src.block(b, t), dst.block(b, t), op.codes.data() + b * op.code_floats);
        if (op.activate_maxima)
          blocked::activation_forward(op.through, dst.block_floats(), dst.block(b, t), dst.block(b, t));
        break;
      case SpatialOp::Kind::AvgPool: blocked::avgpool_forward(op.pool, src.block(b, t), dst.block(b, t)); break;
      case SpatialOp::Kind::AddBorder:
        blocked::add_border(src.block(b, t), dst.c, dst.h, dst.w, dst.ph, dst.pw, dst.block(b, t));
        break;
      case SpatialOp::Kind::Norm:
        block_normalise(op.norm, src.block(b, t), dst.block(b, t));
        if (op.act != Act::None)
          blocked::activation_forward(op.act, dst.block_floats(), dst.block(b, t), dst.block(b, t));
        break;
      case SpatialOp::Kind::Dropout:
        if (op.drop.active) {
          float* mask = op.drop.mask.data() + b * dst.block_floats();
          block_dropout_mask(op.drop, b, nv, dst.block_floats() / kLanes, mask);
          multiply(dst.block_floats(), src.block(b, t), mask, dst.block(b, t));
        } else {
          std::copy_n(src.block(b, t), dst.block_floats(), dst.block(b, t));
        }
        break;
    }
  }
  if (to < spatial_count()) {
    // The next stage starts with a BatchNorm on batch statistics: this block's share of its sums.
    const SpatialOp& op = spatial[static_cast<size_t>(to)];
    block_channel_sums(buffers[static_cast<size_t>(op.in)].block(b), op.norm.c, op.norm.plane, nv, nullptr,
                       stats + op.norm.stat_offset);
    return;
  }
  const Buffer& out = last();
  // Flatten's rows, or the final image output: the same NCHW layout.
  Tensor& rows = outputs[flatten >= 0 ? static_cast<size_t>(flatten) : outputs.size() - 1];
  const int64_t per_image = static_cast<int64_t>(out.c) * out.h * out.w;
  blocked::unpack(buffers.back().block(b), nv, out.c, out.h, out.w, 0, 0, rows.data() + b * kLanes * per_image);
}

// The modes of the layers for this forward: which BatchNorms normalise with
// batch statistics (checking that the batch has more than one value per
// channel, as PyTorch does), their scale and shift from the running estimates
// otherwise, and which dropouts drop. Nothing changes before every check passed.
void Engine::prepare_modes(bool& direct_ok) {
  direct_ok = true;
  const int nimg = static_cast<int>(input_tensor->size(0));
  for (int pass = 0; pass < 2; ++pass)
    for (int pos = 0; pos < positions(); ++pos) {
      if (NormState* s = norm_at(pos)) {
        if (pass == 0) {
          if (s->bn->training()) {
            try {
              s->bn->check_batch(s->bn->spatial() ? Shape{nimg, s->c, s->h, s->w} : Shape{nimg, s->c});
            } catch (const std::invalid_argument& e) {
              const int layer = pos < spatial_count() ? spatial[static_cast<size_t>(pos)].layer
                                                      : vectors[static_cast<size_t>(pos - spatial_count())].layer;
              throw std::invalid_argument("layer " + std::to_string(layer + 1) + " (bn): " + e.what());
            }
          }
          continue;
        }
        s->batch = s->bn->training();
        if (s->batch) {
          direct_ok = false;
          continue;
        }
        const float* w = s->bn->parameters()[0].value;
        const float* bias = s->bn->parameters()[1].value;
        for (int ch = 0; ch < s->c; ++ch) {
          s->mean.data()[ch] = s->bn->running_mean()[ch];
          s->invstd.data()[ch] = 1.0f / std::sqrt(s->bn->running_var()[ch] + s->bn->eps());
          s->scale.data()[ch] = w[ch] * s->invstd.data()[ch];
          s->shift.data()[ch] = bias[ch] - s->mean.data()[ch] * s->scale.data()[ch];
        }
        continue;
      }
      if (pass == 0) continue;
      DropState* d = pos < spatial_count() ? &spatial[static_cast<size_t>(pos)].drop
                                           : &vectors[static_cast<size_t>(pos - spatial_count())].drop;
      if (!d->dropout) continue;
      d->active = d->dropout->training() && d->dropout->p() > 0;
      if (d->active) {
        d->key = d->dropout->next_key();
        direct_ok = false;
      }
    }
}

void Engine::forward(const Tensor& x, std::vector<Tensor>& outputs) {
  input_tensor = &x;
  bool direct_ok = true;
  prepare_modes(direct_ok);
  direct_last = direct_ok && x.size(0) <= direct::kMaxBatch;
  if (direct_last) return direct_forward(x, outputs);
  blocked_forward(x, outputs);
}

void Engine::direct_forward(const Tensor& x, std::vector<Tensor>& outputs) {
  const int nimg = static_cast<int>(x.size(0));
  const float* in = x.data();
  for (size_t k = 0; k < direct.size(); ++k) {
    DirectOp& op = direct[k];
    Tensor& out = outputs[k];
    if (out.dim() != static_cast<int>(op.out_shape.size()) + 1 || out.size(0) != nimg ||
        !std::equal(op.out_shape.begin(), op.out_shape.end(), out.shape().begin() + 1)) {
      Shape s{nimg};
      s.insert(s.end(), op.out_shape.begin(), op.out_shape.end());
      out.resize(s);
    }
    if (op.skip) continue;  // made by the max pooling after it
    float* y = out.data();
    const auto& params = op.layer->parameters();
    const float* w = params.empty() ? nullptr : params[0].value;
    const float* b = params.size() > 1 ? params[1].value : nullptr;
    switch (op.kind) {
      case DirectOp::Kind::Conv: {
        ConvGeometry g = op.conv;
        g.n = nimg;
        if (direct::supports(g))
          direct::forward(g, in, w, b, y);
        else
          LENET_ISA_NAMESPACE::conv2d_forward(g, in, w, b, y);  // (qualified: no ADL to the public one)
        break;
      }
      case DirectOp::Kind::Act: blocked::activation_forward(op.act, nimg * op.out_floats, in, y); break;
      case DirectOp::Kind::MaxPool: {
        PoolGeometry g = op.pool;
        g.n = nimg;
        direct_codes.ensure(nimg * op.out_floats);
        // After a skipped activation: pool its input, then activate the maxima.
        LENET_ISA_NAMESPACE::maxpool2d_forward(g,
                                               op.then != Act::None ? (k > 1 ? outputs[k - 2].data() : x.data()) : in,
                                               y, direct_codes.data());
        if (op.then != Act::None) blocked::activation_forward(op.then, nimg * op.out_floats, y, y);
        break;
      }
      case DirectOp::Kind::AvgPool: {
        PoolGeometry g = op.pool;
        g.n = nimg;
        LENET_ISA_NAMESPACE::avgpool2d_forward(g, in, y);
        break;
      }
      case DirectOp::Kind::Linear: linear_forward(nimg, op.in_width, op.out_width, in, w, b, y); break;
      case DirectOp::Kind::Norm: {  // evaluation: the running estimates' scale and shift
        const NormState& s = *op.norm;
        const int64_t plane = op.out_floats / s.c;
        for (int i = 0; i < nimg; ++i)
          for (int ch = 0; ch < s.c; ++ch) {
            const float a = s.scale.data()[ch], sh = s.shift.data()[ch];
            const int64_t at = (static_cast<int64_t>(i) * s.c + ch) * plane;
            for (int64_t e = 0; e < plane; ++e) y[at + e] = in[at + e] * a + sh;
          }
        break;
      }
      case DirectOp::Kind::Copy: std::copy_n(in, nimg * op.out_floats, y); break;
    }
    in = y;
  }
}

void Engine::blocked_forward(const Tensor& x, std::vector<Tensor>& outputs) {
  Engine& p = *this;
  p.x_data = x.data();
  p.n = static_cast<int>(x.size(0));
  p.blocks = (p.n + kLanes - 1) / kLanes;
  for (auto& b : p.buffers)
    if (!b.transient) reshape(b.data, {p.blocks * b.block_floats()});
  for (auto& op : p.spatial) {
    if (op.kind == SpatialOp::Kind::MaxPool) op.codes.ensure(p.blocks * op.code_floats);
    if (op.kind == SpatialOp::Kind::Dropout && op.drop.active)
      reshape(op.drop.mask, {p.blocks * p.buffers[static_cast<size_t>(op.out)].block_floats()});
  }
  if (!p.spatial.empty()) {
    const Buffer& out = p.last();
    const int idx = p.flatten >= 0 ? p.flatten : static_cast<int>(outputs.size()) - 1;
    if (p.flatten >= 0)
      reshape(outputs[static_cast<size_t>(idx)], {p.n, static_cast<int64_t>(out.c) * out.h * out.w});
    else
      reshape(outputs[static_cast<size_t>(idx)], {p.n, out.c, out.h, out.w});
  }
  for (auto& op : p.vectors) {
    reshape(outputs[static_cast<size_t>(op.layer)], {p.n, op.out_width});
    if (op.kind == VectorOp::Kind::Linear) {
      reshape(op.wt, {static_cast<int64_t>(op.in_width) * op.out_width});
      gemm::transpose(op.out_width, op.in_width, op.linear->parameters()[0].value, op.in_width, op.wt.data(),
                      op.out_width);
    }
    if (op.kind == VectorOp::Kind::Dropout && op.drop.active) reshape(op.drop.mask, {p.n, op.out_width});
  }
  // One chunk per block; threads take them as they come (a thread the
  // machine delays takes fewer), results do not depend on which takes which.
  p.chunks = p.blocks;
  p.threads = std::max(1, std::min(kernels::kernel_threads(p.n * std::max<int64_t>(p.macs_per_image, 1), 1 << 19),
                                   p.chunks));
  p.chunk_stats.ensure(std::max<int64_t>(1, p.chunks * p.stat_doubles));
  // Stages end where a BatchNorm needs the whole batch's statistics.
  for (int from = 0, first = 1; from < p.positions() || first; first = 0) {
    int to = first ? from : from + 1;
    while (to < p.positions() && !(p.norm_at(to) && p.norm_at(to)->batch)) ++to;
    std::atomic<int> next{0};
    kernels::parallel_run(p.threads, [&](int, int) {
      // Every member sizes its scratch, whether or not it gets a chunk this
      // time: a later step must not allocate.
      ensure(scratch().transient, p.max_transient);
      for (int c; (c = next.fetch_add(1, std::memory_order_relaxed)) < p.chunks;) p.forward_chunk(c, from, to, outputs);
    });
    if (to == p.positions()) break;
    // The mean is known: the squared deviations, then the statistics.
    NormState& s = *p.norm_at(to);
    for (int ch = 0; ch < s.c; ++ch) {
      double sum = 0;
      for (int c = 0; c < p.chunks; ++c)
        sum += p.chunk_stats.data()[static_cast<int64_t>(c) * p.stat_doubles + s.stat_offset + ch];
      s.mean.data()[ch] = static_cast<float>(sum / (static_cast<double>(p.n) * static_cast<double>(s.plane)));
    }
    std::atomic<int> next_var{0};
    kernels::parallel_run(p.threads, [&](int, int) {
      for (int c; (c = next_var.fetch_add(1, std::memory_order_relaxed)) < p.chunks;) p.variance_chunk(c, to, outputs);
    });
    p.finish_norm_forward(to);
    from = to;
  }
}

void Engine::forward_chunk(int c, int from, int to, std::vector<Tensor>& outputs) {
  int64_t b0, b1, r0, r1;
  chunk(c, b0, b1, r0, r1);
  const int s_count = spatial_count();
  double* stats = chunk_stats.data() + static_cast<int64_t>(c) * stat_doubles;
  if (NormState* s = norm_at(to))
    if (s->batch) std::fill_n(stats + s->stat_offset, 2 * s->c, 0.0);
  if (from < s_count)
    for (int64_t b = b0; b < b1; ++b)
      spatial_forward(b, static_cast<int>(std::min<int64_t>(kLanes, n - b * kLanes)), from, std::min(to, s_count),
                      outputs, stats);
  if (to < s_count) return;
  const int64_t rows = r1 - r0;
  for (int k = std::max(from, s_count) - s_count; k < to - s_count; ++k) {
    VectorOp& op = vectors[static_cast<size_t>(k)];
    const float* in = vector_rows(static_cast<size_t>(k), outputs) + r0 * op.in_width;
    float* out = outputs[static_cast<size_t>(op.layer)].data() + r0 * op.out_width;
    switch (op.kind) {
      case VectorOp::Kind::Linear: {
        const auto& params = op.linear->parameters();
        gemm::multiply(static_cast<int>(rows), op.out_width, op.in_width, in, op.in_width, 1, op.wt.data(),
                       op.out_width, out, op.out_width, false, params.size() > 1 ? params[1].value : nullptr);
        break;
      }
      case VectorOp::Kind::Norm:
        for (int64_t r = 0; r < rows; ++r)
          for (int ch = 0; ch < op.out_width; ++ch)
            out[r * op.out_width + ch] = in[r * op.in_width + ch] * op.norm.scale.data()[ch] + op.norm.shift.data()[ch];
        break;
      case VectorOp::Kind::Dropout:
        if (op.drop.active) {
          float* mask = op.drop.mask.data() + r0 * op.out_width;
          const float pr = op.drop.dropout->p(), scale = dropout_keep_scale(pr);
          for (int64_t e = 0; e < rows * op.out_width; ++e)
            mask[e] = dropout_scale(op.drop.key, r0 * op.out_width + e, pr, scale);
          multiply(rows * op.out_width, in, mask, out);
        } else {
          std::copy_n(in, rows * op.out_width, out);
        }
        break;
      default: blocked::activation_forward(op.act, rows * op.out_width, in, out); break;
    }
  }
  if (to < positions()) {
    const size_t k = static_cast<size_t>(to - s_count);
    const NormState& s = vectors[k].norm;
    row_channel_sums(vector_rows(k, outputs) + r0 * s.c, r1 - r0, s.c, nullptr, stats + s.stat_offset);
  }
}

void Engine::variance_chunk(int c, int pos, const std::vector<Tensor>& outputs) {
  int64_t b0, b1, r0, r1;
  chunk(c, b0, b1, r0, r1);
  double* stats = chunk_stats.data() + static_cast<int64_t>(c) * stat_doubles;
  NormState& s = *norm_at(pos);
  double* sums = stats + s.stat_offset + s.c;
  if (pos < spatial_count()) {
    Buffer& src = buffers[static_cast<size_t>(spatial[static_cast<size_t>(pos)].in)];
    for (int64_t b = b0; b < b1; ++b)
      block_channel_sums(src.block(b), s.c, s.plane, static_cast<int>(std::min<int64_t>(kLanes, n - b * kLanes)),
                         s.mean.data(), sums);
  } else {
    const size_t k = static_cast<size_t>(pos - spatial_count());
    row_channel_sums(vector_rows(k, outputs) + r0 * s.c, r1 - r0, s.c, s.mean.data(), sums);
  }
}

void Engine::finish_norm_forward(int pos) {
  NormState& s = *norm_at(pos);
  BatchNorm& bn = *s.bn;
  const double count = static_cast<double>(n) * static_cast<double>(s.plane);
  const float m = bn.momentum();
  const float* w = bn.parameters()[0].value;
  const float* bias = bn.parameters()[1].value;
  for (int ch = 0; ch < s.c; ++ch) {
    double sq = 0;
    for (int c = 0; c < chunks; ++c)
      sq += chunk_stats.data()[static_cast<int64_t>(c) * stat_doubles + s.stat_offset + s.c + ch];
    const double var = sq / count;  // biased: normalises
    s.invstd.data()[ch] = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(bn.eps())));
    s.scale.data()[ch] = w[ch] * s.invstd.data()[ch];
    s.shift.data()[ch] = bias[ch] - s.mean.data()[ch] * s.scale.data()[ch];
    // The running estimates: the mean, and the unbiased variance.
    bn.running_mean()[ch] = (1 - m) * bn.running_mean()[ch] + m * s.mean.data()[ch];
    bn.running_var()[ch] = (1 - m) * bn.running_var()[ch] + m * static_cast<float>(var * count / (count - 1));
  }
  *bn.batches_tracked() += 1;
}

void Engine::spatial_backward(int64_t b, int nv, int hi, int lo, const float* d, float* lanes, double* stats) {
  Scratch& s = scratch();
  ensure(s.a, max_block);
  ensure(s.b, max_block);
  float* cur = s.a.data();
  float* other = s.b.data();
  const int s_count = spatial_count();
  if (hi >= s_count) {
    const Buffer& out = last();
    blocked::pack(d, nv, out.c, out.h, out.w, 0, 0, cur);
  } else {  // the input gradient of the BatchNorm at hi, from its stored gradient and the chunks' sums
    const SpatialOp& op = spatial[static_cast<size_t>(hi)];
    const int64_t bf = buffers[static_cast<size_t>(op.out)].block_floats();
    block_norm_input_grad(op.norm, buffers[static_cast<size_t>(op.in)].block(b), op.norm.grad.data() + b * bf, nv, cur);
  }
  for (int k = std::min(hi, s_count) - 1; k >= lo; --k) {
    SpatialOp& op = spatial[static_cast<size_t>(k)];
    Buffer& src = buffers[static_cast<size_t>(op.in)];
    Buffer& dst = buffers[static_cast<size_t>(op.out)];
    switch (op.kind) {
      case SpatialOp::Kind::Act:
        if (op.act_done_by_next) continue;
        blocked::activation_backward(op.act, dst.block_floats(), dst.block(b), cur, other);
        break;
      case SpatialOp::Kind::MaxPool:
        if (op.through != Act::None)
          blocked::maxpool_backward_through(op.through, op.pool, cur, op.codes.data() + b * op.code_floats,
                                            dst.block(b), other);
        else
          blocked::maxpool_backward(op.pool, cur, op.codes.data() + b * op.code_floats, other);
        break;
      case SpatialOp::Kind::AvgPool: blocked::avgpool_backward(op.pool, cur, other); break;
      case SpatialOp::Kind::AddBorder: blocked::remove_border(cur, dst.c, dst.h, dst.w, dst.ph, dst.pw, other); break;
      case SpatialOp::Kind::Dropout:
        if (op.drop.active)
          multiply(dst.block_floats(), cur, op.drop.mask.data() + b * dst.block_floats(), other);
        else
          std::copy_n(cur, dst.block_floats(), other);
        break;
      case SpatialOp::Kind::Norm: {  // always at lo: its gradient, kept for the next stage, and its sums
        float* g = op.norm.grad.data() + b * dst.block_floats();
        if (op.act != Act::None)
          blocked::activation_backward(op.act, dst.block_floats(), dst.block(b), cur, g);
        else
          std::copy_n(cur, dst.block_floats(), g);
        block_norm_grad_sums(op.norm, src.block(b), g, nv, stats + op.norm.stat_offset);
        return;
      }
      case SpatialOp::Kind::Conv: {
        if (op.act != Act::None && !op.act_done_by_next) {
          blocked::activation_backward(op.act, dst.block_floats(), dst.block(b), cur, other);
          std::swap(cur, other);
        }
        const auto& params = op.conv->parameters();
        float* acc = lanes + op.lane_offset;
        op.plan->weight_grad(src.block(b), cur, acc,
                             params.size() > 1 ? acc + op.plan->weight_size() * kLanes : nullptr);
        if (k == first_param) return;  // nothing before needs a gradient
        op.plan->input_grad(cur, params[0].value, other);
        break;
      }
    }
    std::swap(cur, other);
  }
}

void Engine::backward(const Tensor& dy, const std::vector<Tensor>& outputs) {
  Engine& p = *this;
  if (dy.numel() != outputs.back().numel())
    throw std::invalid_argument("Sequential backward: gradient " + to_string(dy.shape()) + " does not match output " +
                                to_string(outputs.back().shape()));
  // The blocked buffers backward reads (outputs is the Sequential's own).
  if (direct_last) {
    blocked_forward(*input_tensor, const_cast<std::vector<Tensor>&>(outputs));
    direct_last = false;
  }
  if (p.first_param < 0) return;  // no parameters
  for (size_t k = 0; k < p.vectors.size(); ++k)
    if (p.spatial_count() + static_cast<int>(k) > p.first_param) reshape(p.dvec[k].t, {p.n, p.vectors[k].in_width});
  for (auto& op : p.spatial)
    if (op.kind == SpatialOp::Kind::Norm)
      reshape(op.norm.grad, {p.blocks * p.buffers[static_cast<size_t>(op.out)].block_floats()});
  reshape(p.chunk_grads, {std::max<int64_t>(1, p.chunks * p.chunk_floats)});
  p.chunk_stats.ensure(std::max<int64_t>(1, p.chunks * p.stat_doubles));
  // Input gradients and the convolutions' sums, chunk by chunk, in stages
  // that end at each BatchNorm (its sums need the whole batch); then the
  // weight gradients of Linear layers over the whole batch and the chunks'
  // sums in chunk order, split by parameter.
  for (int hi = p.positions();;) {
    int lo = hi - 1;
    while (lo > p.first_param && !p.norm_at(lo)) --lo;
    std::atomic<int> next{0};
    kernels::parallel_run(p.threads, [&](int, int) {
      Scratch& s = scratch();
      ensure(s.a, p.max_block);
      ensure(s.b, p.max_block);
      ensure(s.lanes, p.lane_floats);
      for (int c; (c = next.fetch_add(1, std::memory_order_relaxed)) < p.chunks;)
        p.backward_chunk(c, hi, lo, dy, outputs);
    });
    if (!p.norm_at(lo)) break;
    p.finish_norm_backward(lo);
    if (lo == p.first_param) break;  // nothing before needs its input gradient
    hi = lo;
  }
  kernels::parallel_run(p.threads, [&](int t, int team) { p.weight_gradients(t, team, dy, outputs); });
}

void Engine::backward_chunk(int c, int hi, int lo, const Tensor& dy, const std::vector<Tensor>& outputs) {
  int64_t b0, b1, r0, r1;
  chunk(c, b0, b1, r0, r1);
  const int rows = static_cast<int>(r1 - r0);
  const int s_count = spatial_count();
  const bool top = hi == positions();
  double* stats = chunk_stats.data() + static_cast<int64_t>(c) * stat_doubles;
  if (NormState* s = norm_at(lo)) std::fill_n(stats + s->stat_offset, 2 * s->c, 0.0);
  for (int k = static_cast<int>(vectors.size()) - 1; k >= 0; --k) {
    const int pos = s_count + k;
    if (pos > hi || (pos == hi && top)) continue;
    if (pos < lo) break;
    VectorOp& op = vectors[static_cast<size_t>(k)];
    const float* d = output_grad(static_cast<size_t>(k), dy) + r0 * op.out_width;
    if (op.kind == VectorOp::Kind::Norm) {
      const NormState& s = op.norm;
      const float* x = vector_rows(static_cast<size_t>(k), outputs) + r0 * s.c;
      if (pos == hi) {  // second half: dx from the batch's sums
        float* dx = dvec[static_cast<size_t>(k)].t.data() + r0 * op.in_width;
        for (int r = 0; r < rows; ++r)
          for (int ch = 0; ch < s.c; ++ch) {
            const int64_t at = static_cast<int64_t>(r) * s.c + ch;
            const float xhat = (x[at] - s.mean.data()[ch]) * s.invstd.data()[ch];
            dx[at] = s.scale.data()[ch] * (d[at] - s.mean_dy.data()[ch] - xhat * s.mean_dy_xhat.data()[ch]);
          }
        continue;
      }
      // pos == lo: first half, this chunk's Σ dy and Σ dy·x̂
      double* sums = stats + s.stat_offset;
      for (int r = 0; r < rows; ++r)
        for (int ch = 0; ch < s.c; ++ch) {
          const int64_t at = static_cast<int64_t>(r) * s.c + ch;
          sums[ch] += d[at];
          sums[s.c + ch] += static_cast<double>(d[at]) * ((x[at] - s.mean.data()[ch]) * s.invstd.data()[ch]);
        }
      return;
    }
    if (pos == first_param) break;  // a Linear's weights: weight_gradients; no input gradient needed
    float* dx = dvec[static_cast<size_t>(k)].t.data() + r0 * op.in_width;
    if (op.kind == VectorOp::Kind::Linear)  // dX = dY·W
      gemm::multiply(rows, op.in_width, op.out_width, d, op.out_width, 1, op.linear->parameters()[0].value, op.in_width,
                     dx, op.in_width, false, nullptr);
    else if (op.kind == VectorOp::Kind::Dropout && op.drop.active)
      multiply(static_cast<int64_t>(rows) * op.out_width, d, op.drop.mask.data() + r0 * op.out_width, dx);
    else if (op.kind == VectorOp::Kind::Dropout)
      std::copy_n(d, static_cast<int64_t>(rows) * op.out_width, dx);
    else  // an activation, or Flatten's copy
      blocked::activation_backward(op.act, static_cast<int64_t>(rows) * op.out_width,
                                   outputs[static_cast<size_t>(op.layer)].data() + r0 * op.out_width, d, dx);
  }
  if (lo >= s_count) return;
  Scratch& s = scratch();
  ensure(s.lanes, lane_floats);
  // The lane-wide sums of this stage's convolutions.
  const int top_spatial = std::min(hi, s_count);
  for (int k = lo; k < top_spatial; ++k) {
    const SpatialOp& op = spatial[static_cast<size_t>(k)];
    if (op.kind == SpatialOp::Kind::Conv)
      std::fill_n(s.lanes.data() + op.lane_offset, (op.plan->weight_size() + op.plan->g.o) * kLanes, 0.0f);
  }
  const Buffer& out = last();
  const int64_t per_image = static_cast<int64_t>(out.c) * out.h * out.w;
  const float* d = vectors.empty() ? dy.data() : dvec[0].t.data();
  for (int64_t b = b0; b < b1; ++b)
    spatial_backward(b, static_cast<int>(std::min<int64_t>(kLanes, n - b * kLanes)), hi, lo, d + b * kLanes * per_image,
                     s.lanes.data(), stats);
  // This chunk's sums: the lanes added in a fixed order.
  float* mine = chunk_grads.data() + static_cast<int64_t>(c) * chunk_floats;
  for (int k = lo; k < top_spatial; ++k) {
    const SpatialOp& op = spatial[static_cast<size_t>(k)];
    if (op.kind != SpatialOp::Kind::Conv) continue;
    const int64_t count = op.plan->weight_size() + op.plan->g.o;
    for (int64_t e = 0; e < count; ++e)
      mine[op.chunk_offset + e] = simd::reduce_add(simd::load(s.lanes.data() + op.lane_offset + e * kLanes));
  }
}

void Engine::finish_norm_backward(int pos) {
  NormState& s = *norm_at(pos);
  const double count = static_cast<double>(n) * static_cast<double>(s.plane);
  float* dw = s.bn->parameters()[0].grad;
  float* db = s.bn->parameters()[1].grad;
  for (int ch = 0; ch < s.c; ++ch) {
    double sg = 0, sgx = 0;
    for (int c = 0; c < chunks; ++c) {
      const double* st = chunk_stats.data() + static_cast<int64_t>(c) * stat_doubles + s.stat_offset;
      sg += st[ch];
      sgx += st[s.c + ch];
    }
    dw[ch] += static_cast<float>(sgx);
    db[ch] += static_cast<float>(sg);
    // With fixed (running) statistics the input gradient is scale · dy alone.
    s.mean_dy.data()[ch] = s.batch ? static_cast<float>(sg / count) : 0.0f;
    s.mean_dy_xhat.data()[ch] = s.batch ? static_cast<float>(sgx / count) : 0.0f;
  }
}

void Engine::weight_gradients(int t, int team, const Tensor& dy, const std::vector<Tensor>& outputs) {
  // Linear: dW[O,I] += dYᵀ·X and db[O] += Σ_n dY over the whole batch in row
  // order, each thread a share of the output features.
  for (size_t k = 0; k < vectors.size(); ++k) {
    VectorOp& op = vectors[k];
    if (op.kind != VectorOp::Kind::Linear) continue;
    int64_t o0, o1;
    kernels::share(op.out_width, t, team, o0, o1);
    if (o1 == o0) continue;
    const auto& params = op.linear->parameters();
    const float* d = output_grad(k, dy);
    const float* x_rows = k ? outputs[static_cast<size_t>(vectors[k - 1].layer)].data() : vector_input(outputs);
    gemm::multiply(static_cast<int>(o1 - o0), op.in_width, n, d + o0, 1, op.out_width, x_rows, op.in_width,
                   params[0].grad + o0 * op.in_width, op.in_width, true, nullptr);
    if (params.size() > 1)
      for (int64_t o = o0; o < o1; ++o) {
        float sum = 0;
        for (int r = 0; r < n; ++r) sum += d[static_cast<int64_t>(r) * op.out_width + o];
        params[1].grad[o] += sum;
      }
  }
  // Convolutions: the chunks' sums in chunk order.
  int64_t e0, e1;
  kernels::share(chunk_floats, t, team, e0, e1);
  for (auto& op : spatial) {
    if (op.kind != SpatialOp::Kind::Conv) continue;
    const auto& params = op.conv->parameters();
    const int64_t wsize = op.plan->weight_size(), count = wsize + op.plan->g.o;
    const int64_t from = std::max(e0, op.chunk_offset), to = std::min(e1, op.chunk_offset + count);
    for (int64_t e = from; e < to; ++e) {
      float sum = 0;
      for (int c = 0; c < chunks; ++c) sum += chunk_grads[static_cast<int64_t>(c) * chunk_floats + e];
      const int64_t i = e - op.chunk_offset;
      if (i < wsize)
        params[0].grad[i] += sum;
      else if (params.size() > 1)
        params[1].grad[i - wsize] += sum;
    }
  }
}

}  // namespace lenet::kernels::LENET_ISA_NAMESPACE
