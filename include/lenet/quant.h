// int8: post-training static quantization and the integer kernels it runs on.
//
// A quantized model is a Sequential with a Quantization attached
// (Sequential::set_quantization): every Conv2d and Linear then runs as
//   q = clamp(round(x / input_scale) + input_zero_point, 0, 255)      (uint8, per tensor)
//   acc[o] = bias_q[o] + Σ (q − input_zero_point) · w_q[o][..]          (int8 weights, int32 sums)
//   y[o] = acc[o] · input_scale · weight_scale[o]                       (float again)
// which is exactly what the QDQ form of the ONNX file says (QuantizeLinear and
// DequantizeLinear before the Conv/Gemm, DequantizeLinear on its int8 weights
// and int32 bias), so ONNX Runtime and we compute the same integers. Pooling,
// activations and the logits stay in float: they are a few percent of the work
// and sigmoid/tanh have no integer form worth having.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lenet/kernels.h"
#include "lenet/tensor.h"

namespace lenet {

class Sequential;

// One Conv2d or Linear layer in int8.
struct LayerQuantization {
  size_t layer = 0;                  // position in the Sequential
  float input_scale = 1.0f;          // > 0, finite
  int32_t input_zero_point = 0;      // 0 .. 255 (uint8 activations)
  std::vector<float> weight_scales;  // one per output channel, > 0, finite
  std::vector<int8_t> weights;  // the layer's weight shape, symmetric: -127 .. 127 (-64 .. 64 reduced), zero point 0
  std::vector<int32_t> bias;    // one per output channel in units of input_scale·weight_scale[o] (empty: none)
};

struct Quantization {
  std::vector<LayerQuantization> layers;  // in layer order, one per Conv2d and Linear
};

enum class CalibrationMethod { MinMax, Percentile };

struct QuantizeOptions {
  CalibrationMethod method = CalibrationMethod::MinMax;
  // Percentile: the range kept on each side (the rest saturates), as a fraction.
  double percentile_tail = 1e-4;
  // Weights in 7 bits (-64..64, ONNX Runtime's reduce_range) instead of 8: for
  // ONNX Runtime on x86 CPUs without AVX-512 VNNI, whose u8×s8 kernels
  // (pmaddubsw) add pairs of products in int16 with saturation (255·127·2 >
  // 32767, while 255·64·2 fits). Each channel's scale is then the one in
  // (0.6 .. 1) · max |w| / 64 with the least rounding error (the extremes may
  // saturate). Our kernels are exact either way.
  bool reduce_range = false;
};

// Post-training static quantization of a float model: weights symmetric per
// output channel (8 bits, or 7 with reduce_range), activations asymmetric uint8 per tensor with ranges measured
// by running `calibration` ([N, C, H, W], N ≥ 1) through the float model.
// Returns the parameters; set_quantization attaches them. Throws
// std::invalid_argument naming the layer when one has no int8 path, or the
// shapes when the images do not fit the model.
Quantization quantize_model(Sequential& model, const Tensor& calibration, const QuantizeOptions& options = {});

// Checks a Quantization against a model: one entry per Conv2d/Linear, sizes,
// scales positive and finite, zero points in range, weights in -127..127.
// Throws std::invalid_argument naming the layer and the problem.
void validate_quantization(const Sequential& model, const Quantization& q);

namespace kernels {

// int8 convolution with int32 sums, the quantized engine's arithmetic:
//   y[n][o][i][j] = bias[o] + Σ_c,a,b (x[n][c][i·sh − ph + a][j·sw − pw + b] − x_zero_point) · w[o][c][a][b]
// where the padding reads x_zero_point (a float 0). x uint8 NCHW, w int8
// [O, C, KH, KW], bias int32 [O] or null, y int32 NCHW. The active ISA's kernel.
void conv2d_int8(const ConvGeometry& g, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y);
// y[n][o] = bias[o] + Σ_k (x[n][k] − x_zero_point) · w[o][k]; x uint8 [N, in], w int8 [out, in].
void linear_int8(int n, int in, int out, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y);

namespace reference {
void conv2d_int8(const ConvGeometry& g, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y);
void linear_int8(int n, int in, int out, const uint8_t* x, int32_t x_zero_point, const int8_t* w, const int32_t* bias,
                 int32_t* y);
}  // namespace reference

}  // namespace kernels

}  // namespace lenet
