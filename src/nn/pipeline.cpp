// The fused, batch-parallel path of a Sequential; see pipeline.h.
#include "nn/pipeline.h"

#include <algorithm>
#include <initializer_list>
#include <stdexcept>

#include "kernels/blocked.h"
#include "kernels/gemm.h"
#include "kernels/simd.h"
#include "kernels/thread_pool.h"
#include "kernels/threads.h"
#include "lenet/parallel.h"

namespace lenet::detail {

namespace {

using kernels::blocked::Act;
using kernels::simd::kLanes;
namespace blocked = kernels::blocked;

Act act_of(Activation::Kind kind) {
  switch (kind) {
    case Activation::Kind::Sigmoid: return Act::Sigmoid;
    case Activation::Kind::ReLU: return Act::ReLU;
    case Activation::Kind::Tanh: return Act::Tanh;
  }
  return Act::None;
}

// Row-wise activation on rows [r0, r1) of a [N, width] matrix.
void rows_forward(Act act, int64_t count, const float* x, float* y) {
  switch (act) {
    case Act::None: std::copy_n(x, count, y); return;
    case Act::Sigmoid: return kernels::sigmoid_forward(count, x, y);
    case Act::ReLU: return kernels::relu_forward(count, x, y);
    case Act::Tanh: return kernels::tanh_forward(count, x, y);
  }
}
void rows_backward(Act act, int64_t count, const float* y, const float* dy, float* dx) {
  switch (act) {
    case Act::None: std::copy_n(dy, count, dx); return;
    case Act::Sigmoid: return kernels::sigmoid_backward(count, y, dy, dx);
    case Act::ReLU: return kernels::relu_backward(count, y, dy, dx);
    case Act::Tanh: return kernels::tanh_backward(count, y, dy, dx);
  }
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

struct SpatialOp {
  enum class Kind { Conv, Act, MaxPool, AvgPool, AddBorder };
  Kind kind = Kind::Act;
  int in = 0, out = 0;  // buffers
  Act act = Act::None;  // Act, or the activation fused into Conv
  Conv2d* conv = nullptr;
  std::unique_ptr<blocked::Plan> plan;
  kernels::PoolGeometry pool;
  std::vector<int32_t> codes;  // MaxPool: [blocks][C·OH·OW·kLanes]
  int64_t code_floats = 0;     // per block
  // MaxPool: the activation before it, whose backward it does (see
  // blocked::maxpool_backward_through); Conv/Act: that activation's backward
  // is done by the pooling after it.
  Act through = Act::None;
  bool act_done_by_next = false;
  // MaxPool after a Conv with an activation: pools the convolution's output
  // and activates only the maxima. The activations are non-decreasing, so the
  // maxima are the same; a quarter of the activations are computed.
  bool activate_maxima = false;
  int64_t grad_offset = 0;     // Conv: lane-wide sums [O·K + O][kLanes] in each thread's gradients
};

struct VectorOp {
  enum class Kind { Linear, Act };
  Kind kind = Kind::Act;
  int layer = 0;  // position in the Sequential: its output slot
  int in_width = 0, out_width = 0;
  Act act = Act::None;
  Linear* linear = nullptr;
  Tensor wt;                // Linear: wᵀ[in, out], refreshed by every forward
  int64_t grad_offset = 0;  // Linear: [O·I + O] in each thread's gradients
};

// Per-thread scratch: two blocked gradients in turn for backward, and the
// transient buffer of forward.
struct Scratch {
  Tensor a, b, transient;
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

struct Pipeline::Impl {
  Shape input;  // the input shape without the batch
  std::vector<Buffer> buffers;
  std::vector<SpatialOp> spatial;
  int flatten = -1;  // position of Flatten, -1 without one
  std::vector<VectorOp> vectors;
  int64_t image_floats = 0;    // of one input image
  int64_t macs_per_image = 0;  // to size the team
  int64_t grad_floats = 0;     // each thread's gradient sums
  int64_t max_block = 0;       // floats of the largest blocked buffer
  int64_t max_transient = 0;   // floats of the largest transient buffer
  int widest = 0;              // widest row of the vector layers
  // Backward stops at the first convolution: nothing before it has parameters.
  int first_conv = -1;

  // State of the last forward.
  int n = 0, blocks = 0, threads = 1;
  int ran = 1;  // the team that ran the forward (1 inside another parallel run)
  const float* x = nullptr;
  std::vector<Tensor> thread_grads;
  Tensor rows_a, rows_b;

  const Buffer& last() const { return buffers.back(); }
  // Blocks [b0, b1) and rows [r0, r1) of thread t.
  void share(int t, int team, int64_t& b0, int64_t& b1, int64_t& r0, int64_t& r1) const {
    kernels::share(blocks, t, team, b0, b1);
    r0 = std::min<int64_t>(b0 * kLanes, n);
    r1 = std::min<int64_t>(b1 * kLanes, n);
  }
  const float* vector_input(const std::vector<Tensor>& outputs) const {
    if (!spatial.empty()) return outputs[static_cast<size_t>(flatten)].data();
    return x;  // Flatten of an image, or rows, is the input itself
  }
  void spatial_forward(int64_t b, int nv, std::vector<Tensor>& outputs);
  // d: the gradient of this block's images at the last image layer's output.
  void spatial_backward(int64_t b, int nv, const float* d, float* grads);
};

std::unique_ptr<Pipeline> Pipeline::build(const std::vector<std::unique_ptr<Module>>& layers, const Shape& input) {
  if (layers.empty() || input.size() < 2) return nullptr;
  std::vector<Shape> shapes;
  Shape s = input;
  try {
    for (auto& l : layers) shapes.push_back(s = l->output_shape(s));
  } catch (const std::exception&) {
    return nullptr;  // the layer-by-layer path reports the error
  }
  auto impl = std::make_unique<Impl>();
  Impl& p = *impl;
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
      } else if (dynamic_cast<Flatten*>(l)) {
        p.flatten = static_cast<int>(i++);
        break;
      } else {
        return nullptr;
      }
      p.spatial.push_back(std::move(op));
    }
    if (p.flatten < 0 && i < layers.size()) return nullptr;
  }
  // Vector layers, on rows.
  for (; i < layers.size(); ++i) {
    Module* l = layers[i].get();
    const Shape& in_shape = i ? shapes[i - 1] : input;
    if (in_shape.size() != 2) return nullptr;
    VectorOp op;
    op.layer = static_cast<int>(i);
    op.in_width = static_cast<int>(in_shape[1]);
    op.out_width = static_cast<int>(shapes[i][1]);
    if (auto* fc = dynamic_cast<Linear*>(l)) {
      op.kind = VectorOp::Kind::Linear;
      op.linear = fc;
      p.macs_per_image += static_cast<int64_t>(op.in_width) * op.out_width;
    } else if (auto* act = dynamic_cast<Activation*>(l)) {
      op.kind = VectorOp::Kind::Act;
      op.act = act_of(act->kind());
    } else {
      return nullptr;
    }
    p.widest = std::max({p.widest, op.in_width, op.out_width});
    p.vectors.push_back(std::move(op));
  }
  // Each thread's gradient sums: lane-wide for convolutions, plain for Linear.
  for (auto& op : p.spatial) {
    if (op.kind != SpatialOp::Kind::Conv) continue;
    op.grad_offset = p.grad_floats;
    p.grad_floats += (op.plan->weight_size() + op.plan->g.o) * kLanes;
  }
  for (auto& op : p.vectors) {
    if (op.kind != VectorOp::Kind::Linear) continue;
    op.grad_offset = p.grad_floats;
    p.grad_floats += static_cast<int64_t>(op.out_width) * (op.in_width + 1);
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
  for (size_t k = 0; k < p.spatial.size() && p.first_conv < 0; ++k)
    if (p.spatial[k].kind == SpatialOp::Kind::Conv) p.first_conv = static_cast<int>(k);
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(impl)));
}

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::~Pipeline() = default;

bool Pipeline::fits(const Shape& input) const {
  return input.size() == impl_->input.size() + 1 && std::equal(input.begin() + 1, input.end(), impl_->input.begin());
}

void Pipeline::Impl::spatial_forward(int64_t b, int nv, std::vector<Tensor>& outputs) {
  Scratch& s = scratch();
  ensure(s.transient, max_transient);
  float* t = s.transient.data();
  Buffer& in = buffers[0];
  blocked::pack(x + b * kLanes * image_floats, nv, in.c, in.h, in.w, in.ph, in.pw, in.block(b, t));
  for (auto& op : spatial) {
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
        if (op.activate_maxima) blocked::activation_forward(op.through, dst.block_floats(), dst.block(b, t), dst.block(b, t));
        break;
      case SpatialOp::Kind::AvgPool:
        blocked::avgpool_forward(op.pool, src.block(b, t), dst.block(b, t));
        break;
      case SpatialOp::Kind::AddBorder:
        blocked::add_border(src.block(b, t), dst.c, dst.h, dst.w, dst.ph, dst.pw, dst.block(b, t));
        break;
    }
  }
  const Buffer& out = last();
  // Flatten's rows, or the final image output: the same NCHW layout.
  Tensor& rows = outputs[flatten >= 0 ? static_cast<size_t>(flatten) : outputs.size() - 1];
  const int64_t per_image = static_cast<int64_t>(out.c) * out.h * out.w;
  blocked::unpack(buffers.back().block(b), nv, out.c, out.h, out.w, 0, 0, rows.data() + b * kLanes * per_image);
}

void Pipeline::forward(const Tensor& x, std::vector<Tensor>& outputs) {
  Impl& p = *impl_;
  p.x = x.data();
  p.n = static_cast<int>(x.size(0));
  p.blocks = (p.n + kLanes - 1) / kLanes;
  for (auto& b : p.buffers)
    if (!b.transient) reshape(b.data, {p.blocks * b.block_floats()});
  for (auto& op : p.spatial)
    if (op.kind == SpatialOp::Kind::MaxPool) op.codes.resize(static_cast<size_t>(p.blocks * op.code_floats));
  if (!p.spatial.empty()) {
    const Buffer& out = p.last();
    const int idx = p.flatten >= 0 ? p.flatten : static_cast<int>(outputs.size()) - 1;
    if (p.flatten >= 0) reshape(outputs[static_cast<size_t>(idx)], {p.n, static_cast<int64_t>(out.c) * out.h * out.w});
    else reshape(outputs[static_cast<size_t>(idx)], {p.n, out.c, out.h, out.w});
  }
  for (auto& op : p.vectors) {
    reshape(outputs[static_cast<size_t>(op.layer)], {p.n, op.out_width});
    if (op.kind == VectorOp::Kind::Linear) {
      reshape(op.wt, {static_cast<int64_t>(op.in_width) * op.out_width});
      kernels::gemm::transpose(op.out_width, op.in_width, op.linear->parameters()[0].value, op.in_width, op.wt.data(),
                               op.out_width);
    }
  }
  p.threads = std::max(1, std::min(kernels::kernel_threads(p.n * std::max<int64_t>(p.macs_per_image, 1), 1 << 19), p.blocks));
  kernels::parallel_run(p.threads, [&](int t, int team) {
    if (t == 0) p.ran = team;
    int64_t b0, b1, r0, r1;
    p.share(t, team, b0, b1, r0, r1);
    if (!p.spatial.empty())
      for (int64_t b = b0; b < b1; ++b) p.spatial_forward(b, static_cast<int>(std::min<int64_t>(kLanes, p.n - b * kLanes)), outputs);
    const int64_t rows = r1 - r0;
    const float* in = p.vector_input(outputs);
    for (auto& op : p.vectors) {
      float* out = outputs[static_cast<size_t>(op.layer)].data();
      if (op.kind == VectorOp::Kind::Linear) {
        const auto& params = op.linear->parameters();
        kernels::gemm::multiply(static_cast<int>(rows), op.out_width, op.in_width, in + r0 * op.in_width, op.in_width,
                                1, op.wt.data(), op.out_width, out + r0 * op.out_width, op.out_width, false,
                                params.size() > 1 ? params[1].value : nullptr);
      } else {
        rows_forward(op.act, rows * op.out_width, in + r0 * op.in_width, out + r0 * op.out_width);
      }
      in = out;
    }
  });
}

void Pipeline::Impl::spatial_backward(int64_t b, int nv, const float* d, float* grads) {
  Scratch& s = scratch();
  ensure(s.a, max_block);
  ensure(s.b, max_block);
  float* cur = s.a.data();
  float* other = s.b.data();
  const Buffer& out = last();
  blocked::pack(d, nv, out.c, out.h, out.w, 0, 0, cur);
  for (size_t k = spatial.size(); k-- > static_cast<size_t>(first_conv);) {
    SpatialOp& op = spatial[k];
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
      case SpatialOp::Kind::AvgPool:
        blocked::avgpool_backward(op.pool, cur, other);
        break;
      case SpatialOp::Kind::AddBorder:
        blocked::remove_border(cur, dst.c, dst.h, dst.w, dst.ph, dst.pw, other);
        break;
      case SpatialOp::Kind::Conv: {
        if (op.act != Act::None && !op.act_done_by_next) {
          blocked::activation_backward(op.act, dst.block_floats(), dst.block(b), cur, other);
          std::swap(cur, other);
        }
        const auto& params = op.conv->parameters();
        float* acc = grads + op.grad_offset;
        op.plan->weight_grad(src.block(b), cur, acc, params.size() > 1 ? acc + op.plan->weight_size() * kLanes : nullptr);
        if (static_cast<int>(k) == first_conv) return;  // nothing before needs a gradient
        op.plan->input_grad(cur, params[0].value, other);
        break;
      }
    }
    std::swap(cur, other);
  }
}

void Pipeline::backward(const Tensor& dy, const std::vector<Tensor>& outputs) {
  Impl& p = *impl_;
  if (dy.numel() != outputs.back().numel())
    throw std::invalid_argument("Sequential backward: gradient " + to_string(dy.shape()) + " does not match output " +
                                to_string(outputs.back().shape()));
  if (static_cast<int>(p.thread_grads.size()) < p.threads) p.thread_grads.resize(static_cast<size_t>(p.threads));
  for (int t = 0; t < p.threads; ++t) ensure(p.thread_grads[static_cast<size_t>(t)], p.grad_floats);
  if (!p.vectors.empty()) {
    ensure(p.rows_a, static_cast<int64_t>(p.n) * p.widest);
    ensure(p.rows_b, static_cast<int64_t>(p.n) * p.widest);
  }
  kernels::parallel_run(p.ran, [&](int t, int team) {
    float* grads = p.thread_grads[static_cast<size_t>(t)].data();
    std::fill_n(grads, p.grad_floats, 0.0f);
    int64_t b0, b1, r0, r1;
    p.share(t, team, b0, b1, r0, r1);
    const int rows = static_cast<int>(r1 - r0);
    // Row gradients of this thread's rows, packed at the current width: each
    // thread has its own stretch of rows_a and rows_b (threads reach layers of
    // different widths at different times).
    const float* d = dy.data() + r0 * (p.vectors.empty() ? 0 : p.vectors.back().out_width);
    float* mine[2] = {p.rows_a.data() + r0 * p.widest, p.rows_b.data() + r0 * p.widest};
    int turn = 0;
    for (size_t k = p.vectors.size(); k-- > 0;) {
      VectorOp& op = p.vectors[k];
      const float* in = (k ? outputs[static_cast<size_t>(p.vectors[k - 1].layer)].data() : p.vector_input(outputs)) +
                        r0 * op.in_width;
      float* next = mine[turn];
      turn ^= 1;
      if (op.kind == VectorOp::Kind::Act) {
        rows_backward(op.act, static_cast<int64_t>(rows) * op.out_width,
                      outputs[static_cast<size_t>(op.layer)].data() + r0 * op.out_width, d, next);
        d = next;
        continue;
      }
      const auto& params = op.linear->parameters();
      float* gw = grads + op.grad_offset;
      // dW[O,I] += dYᵀ·X over this thread's rows; db[O] += Σ dY
      kernels::gemm::multiply(op.out_width, op.in_width, rows, d, 1, op.out_width, in, op.in_width, gw, op.in_width,
                              true, nullptr);
      float* gb = gw + static_cast<int64_t>(op.out_width) * op.in_width;
      for (int r = 0; r < rows; ++r)
        for (int o = 0; o < op.out_width; ++o) gb[o] += d[static_cast<int64_t>(r) * op.out_width + o];
      if (k == 0 && p.first_conv < 0) break;  // nothing before needs a gradient
      // dX = dY·W
      kernels::gemm::multiply(rows, op.in_width, op.out_width, d, op.out_width, 1, params[0].value, op.in_width, next,
                              op.in_width, false, nullptr);
      d = next;
    }
    if (p.first_conv >= 0) {
      const Buffer& out = p.last();
      const int64_t per_image = static_cast<int64_t>(out.c) * out.h * out.w;
      if (p.vectors.empty()) d = dy.data() + r0 * per_image;
      for (int64_t b = b0; b < b1; ++b)
        p.spatial_backward(b, static_cast<int>(std::min<int64_t>(kLanes, p.n - b * kLanes)),
                           d + (b * kLanes - r0) * per_image, grads);
    }
  });
  // Per-thread sums into the model's gradients, in thread order.
  for (auto& op : p.spatial) {
    if (op.kind != SpatialOp::Kind::Conv) continue;
    const auto& params = op.conv->parameters();
    const int64_t wsize = op.plan->weight_size(), o = op.plan->g.o;
    for (int64_t e = 0; e < wsize + (params.size() > 1 ? o : 0); ++e) {
      kernels::simd::vf sum = kernels::simd::zero();
      for (int t = 0; t < p.ran; ++t)
        sum += kernels::simd::load(p.thread_grads[static_cast<size_t>(t)].data() + op.grad_offset + e * kLanes);
      const float total = kernels::simd::reduce_add(sum);
      if (e < wsize) params[0].grad[e] += total;
      else params[1].grad[e - wsize] += total;
    }
  }
  for (auto& op : p.vectors) {
    if (op.kind != VectorOp::Kind::Linear) continue;
    const auto& params = op.linear->parameters();
    const int64_t wsize = static_cast<int64_t>(op.out_width) * op.in_width;
    for (int64_t e = 0; e < wsize + (params.size() > 1 ? op.out_width : 0); ++e) {
      float sum = 0;
      for (int t = 0; t < p.ran; ++t) sum += p.thread_grads[static_cast<size_t>(t)][op.grad_offset + e];
      if (e < wsize) params[0].grad[e] += sum;
      else params[1].grad[e - wsize] += sum;
    }
  }
}

}  // namespace lenet::detail
