// The chapter walk-through: one function per section of the convolution and LeNet
// chapters of "Dive into Deep Learning", each in examples/<NN>_<name>.cpp. Every
// example prints its inputs and results to `out` and returns them, so the tests
// assert exactly the numbers a reader sees. `lenet tutorial` runs them.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "lenet/nn.h"
#include "lenet/tensor.h"

namespace lenet::examples {

// ---- small helpers the examples share (tutorial.cpp) ----

// Prints "name = " and the tensor, its later lines aligned under the first.
void show(std::ostream& out, std::string_view name, const Tensor& t);
// start, start + 1, ... in the given shape: torch.arange(n).reshape(shape) + start.
Tensor arange(const Shape& shape, float start = 0);
// X[i]: the i-th slice along the first dimension, as a copy.
Tensor slice(const Tensor& x, int64_t i);
// Equally shaped tensors stacked along a new first dimension (torch.stack).
Tensor stack(const std::vector<Tensor>& parts);
// m(x): runs a module's forward and returns its output.
Tensor forward(Module& m, const Tensor& x);

// ---- 1. 01_corr2d.cpp: the cross-correlation operation ----
// The chapter's corr2d on 2-D tensors: X[H, W] ⋆ K[KH, KW] -> Y[H-KH+1, W-KW+1].
Tensor corr2d(const Tensor& X, const Tensor& K);
struct Corr2dExample {
  Tensor X, K, Y;
};
Corr2dExample corr2d_example(std::ostream& out);

// ---- 2. 02_conv2d_module.cpp: a convolutional layer ----
struct Conv2dModuleExample {
  Tensor X, weight, bias;
  Tensor Y;          // the chapter's Conv2D: corr2d(X, weight) + bias
  Tensor Y_library;  // lenet::Conv2d holding the same weight and bias, on X as [1, 1, 3, 3]
};
Conv2dModuleExample conv2d_module_example(std::ostream& out, uint64_t seed);

// ---- 3. 03_edge_detection.cpp: object edge detection in images ----
// 6×8 ones with columns 2–5 set to zero: a dark band between two vertical edges.
Tensor edge_image();
struct EdgeDetectionExample {
  Tensor X, K, Y, Y_transposed;
};
EdgeDetectionExample edge_detection_example(std::ostream& out);

// ---- 4. 04_learn_kernel.cpp: learning a kernel ----
struct LearnKernelExample {
  std::vector<double> losses;  // summed squared error before each of the 10 updates
  Tensor kernel;               // the learned [1, 2] kernel
};
LearnKernelExample learn_kernel_example(std::ostream& out, uint64_t seed);

// ---- 5. 05_padding.cpp: padding ----
// The chapter's comp_conv2d: runs `conv` on a 2-D X (as [1, 1, H, W]) and returns the output's [OH, OW].
Shape comp_conv2d(Conv2d& conv, const Tensor& X);
struct ShapesExample {
  Shape first, second;
};
ShapesExample padding_example(std::ostream& out, uint64_t seed);

// ---- 6. 06_stride.cpp: stride ----
ShapesExample stride_example(std::ostream& out, uint64_t seed);

// ---- 7. 07_multi_in.cpp: multiple input channels ----
// X[C, H, W] ⋆ K[C, KH, KW] -> Y[OH, OW]: corr2d per channel, summed.
Tensor corr2d_multi_in(const Tensor& X, const Tensor& K);
struct MultiInExample {
  Tensor X, K, Y;
};
MultiInExample multi_in_example(std::ostream& out);

// ---- 8. 08_multi_out.cpp: multiple output channels ----
// X[C, H, W] ⋆ K[O, C, KH, KW] -> Y[O, OH, OW]: corr2d_multi_in per output channel.
Tensor corr2d_multi_in_out(const Tensor& X, const Tensor& K);
struct MultiOutExample {
  Tensor K, Y;
  Tensor Y_library;  // lenet::Conv2d(2, 3, k=2) holding K, without bias: [1, 3, 2, 2]
};
MultiOutExample multi_out_example(std::ostream& out);

// ---- 9. 09_conv1x1.cpp: 1×1 convolutional layer ----
// X[C, H, W] with K[O, C, 1, 1] as the matrix product K[O, C] · X[C, H·W] -> Y[O, H, W].
Tensor corr2d_multi_in_out_1x1(const Tensor& X, const Tensor& K);
struct Conv1x1Example {
  Tensor X, K, Y_matmul, Y_conv;
  float max_diff;
};
Conv1x1Example conv1x1_example(std::ostream& out, uint64_t seed);

// ---- 10. 10_pooling.cpp: pooling ----
struct PoolingExample {
  Tensor max2x2, avg2x2;  // on arange 3×3, window 2, stride 1
  Tensor X;               // arange 4×4 as [1, 1, 4, 4]
  Tensor window3;         // window 3, stride defaulting to 3
  Tensor window3_p1_s2;   // window 3, padding 1, stride 2
  Tensor window2x3;       // window (2, 3), padding (0, 1), stride (2, 3)
  Tensor two_channels;    // X and X + 1 stacked as channels, window 3, padding 1, stride 2
};
PoolingExample pooling_example(std::ostream& out);

// ---- 11. 11_lenet.cpp: LeNet ----
struct LayerShape {
  std::string type;
  Shape shape;
};
struct LeNetExample {
  std::vector<LayerShape> mnist;   // lenet on [1, 1, 28, 28], 10 classes
  std::vector<LayerShape> narrow;  // lenet on [1, 1, 28, 20], 9 classes
};
LeNetExample lenet_example(std::ostream& out, uint64_t seed);

// ---- the sections, in the chapter's order (tutorial.cpp) ----
struct Section {
  std::string name;   // "corr2d", as `lenet tutorial corr2d` takes it
  std::string title;  // the chapter's heading
  std::string file;   // "examples/01_corr2d.cpp"
  std::function<void(std::ostream& out, uint64_t seed)> run;
};
const std::vector<Section>& sections();
// The section named `key`, or numbered `key` ("1" is the first); null when none.
const Section* find_section(std::string_view key);

}  // namespace lenet::examples
