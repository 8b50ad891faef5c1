// Kernels: pure functions over raw buffers, forward and backward side by side.
// Every backward *accumulates* into parameter gradients (dw, db) and *overwrites*
// the input gradient (dx), so a Sequential can zero gradients once per step.
#pragma once

#include <cstdint>
#include <string>

namespace lenet::kernels {

// Geometry of a 2-D cross-correlation:
// x[N,C,H,W] ⋆ w[O,C,KH,KW] + b[O] -> y[N,O,OH,OW], OH = (H + 2·PH − KH) / SH + 1
struct ConvGeometry {
  int n = 1, c = 1, h = 1, w = 1;  // input
  int o = 1;                       // output channels
  int kh = 1, kw = 1;              // kernel
  int sh = 1, sw = 1;              // stride
  int ph = 0, pw = 0;              // zero padding on each side
  int oh() const { return (h + 2 * ph - kh) / sh + 1; }
  int ow() const { return (w + 2 * pw - kw) / sw + 1; }
  // Throws std::invalid_argument naming `op` and the sizes when the geometry is impossible.
  void validate(const std::string& op) const;
};

// Pooling window over each channel separately:
// x[N,C,H,W] -> y[N,C,OH,OW], OH = (H + 2·PH − KH) / SH + 1  (floor, as PyTorch's default)
struct PoolGeometry {
  int n = 1, c = 1, h = 1, w = 1;
  int kh = 2, kw = 2;
  int sh = 2, sw = 2;
  int ph = 0, pw = 0;
  int oh() const { return (h + 2 * ph - kh) / sh + 1; }
  int ow() const { return (w + 2 * pw - kw) / sw + 1; }
  void validate(const std::string& op) const;
};

// ---- fast kernels (src/kernels/*.cpp) ----

// b may be null (no bias). Workspace is allocated per thread and reused.
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);
// dx may be null (first layer: no input gradient needed); db may be null.
void conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db);

// Max pooling stores the flat input index of each maximum (per sample and
// channel plane) in `argmax` for the backward pass. Padded cells never win.
void maxpool2d_forward(const PoolGeometry& g, const float* x, float* y, int32_t* argmax);
void maxpool2d_backward(const PoolGeometry& g, const float* dy, const int32_t* argmax, float* dx);
// Average pooling counts padded zeros (PyTorch's count_include_pad=True): every
// window divides by KH·KW.
void avgpool2d_forward(const PoolGeometry& g, const float* x, float* y);
void avgpool2d_backward(const PoolGeometry& g, const float* dy, float* dx);

// x[N,I] · w[O,I]ᵀ + b[O] -> y[N,O]  (weights in PyTorch's [out, in] layout)
void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y);
void linear_backward(int n, int in, int out, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db);

// Element-wise activations. Backward takes the forward output y (and x for ReLU
// would be equivalent: y > 0 exactly where x > 0).
void sigmoid_forward(int64_t n, const float* x, float* y);
void sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx);
void relu_forward(int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);
void tanh_forward(int64_t n, const float* x, float* y);
void tanh_backward(int64_t n, const float* y, const float* dy, float* dx);

// ---- batch normalisation and dropout (src/kernels/norm.cpp: plain code, compiled once;
// the engine has its own blocked versions in runtime/pipeline.cpp) ----

// x[N,C,P] (P = H·W, or 1 after a Linear), per channel c over its N·P values:
// mean[c], the biased var[c] and invstd[c] = 1 / sqrt(var[c] + eps).
void batchnorm_batch_stats(int n, int c, int64_t plane, const float* x, float eps, float* mean, float* var,
                           float* invstd);
// y = weight[c] · (x − mean[c]) · invstd[c] + bias[c]
void batchnorm_forward(int n, int c, int64_t plane, const float* x, const float* mean, const float* invstd,
                       const float* weight, const float* bias, float* y);
// dweight += Σ dy·x̂, dbias += Σ dy (x̂ = (x − mean)·invstd). dx (may be null):
// with batch statistics dx = weight·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)),
// the statistics being functions of x; with fixed (running) ones dx = weight·invstd·dy.
void batchnorm_backward(int n, int c, int64_t plane, const float* x, const float* mean, const float* invstd,
                        const float* weight, const float* dy, bool batch_statistics, float* dx, float* dweight,
                        float* dbias);

// Inverted dropout of values first..first+n−1 of a forward whose mask key is
// `key` (kernels/dropout_mask.h): y = x·mask, mask 0 with probability p, else 1/(1 − p).
void dropout_forward(int64_t n, int64_t first, float p, uint64_t key, const float* x, float* y);
// dx = dy·mask, the same mask.
void dropout_backward(int64_t n, int64_t first, float p, uint64_t key, const float* dy, float* dx);

enum class Reduction { Mean, Sum };

// Softmax + cross-entropy fused, stable through log-sum-exp.
// logits[N,K], labels[N] in [0,K). Returns the loss (mean or sum over N);
// writes dlogits = ∂loss/∂logits when it is not null. `correct`, when not
// null, receives the number of rows whose arg-max equals the label.
double softmax_cross_entropy(int n, int k, const float* logits, const int32_t* labels, float* dlogits,
                             Reduction reduction = Reduction::Mean, int64_t* correct = nullptr);
// Row-wise softmax probabilities.
void softmax(int n, int k, const float* logits, float* probs);

// Squared error Σ (y − t)², or its mean; dy = ∂loss/∂y when not null.
double squared_error(int64_t n, const float* y, const float* t, float* dy, Reduction reduction = Reduction::Sum);

// ---- reference kernels (src/kernels/reference/), plain loops to be read; the tests' oracles ----
namespace reference {
// The chapter's corr2d: one channel, no padding, stride 1. x[H,W] ⋆ k[KH,KW] -> y[H-KH+1, W-KW+1]
void corr2d(int h, int w, const float* x, int kh, int kw, const float* k, float* y);
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);
void conv2d_backward(const ConvGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db);
// The chapter's pool2d generalised to padding and stride; mode "max" or "avg".
void maxpool2d_forward(const PoolGeometry& g, const float* x, float* y);
void avgpool2d_forward(const PoolGeometry& g, const float* x, float* y);
void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y);
// Batch normalisation in training, in double: PyTorch's definition written out.
// x[N,C,P]; writes y, the batch mean[C] and the biased var[C].
void batchnorm_forward_train(int n, int c, int64_t plane, const float* x, const float* weight, const float* bias,
                             double eps, float* y, double* mean, double* var);
// Its backward, through the batch statistics: dx, and dweight/dbias (overwritten).
void batchnorm_backward_train(int n, int c, int64_t plane, const float* x, const float* weight, const float* dy,
                              double eps, float* dx, float* dweight, float* dbias);
}  // namespace reference

}  // namespace lenet::kernels
