// Helpers the examples share, and the table of sections `lenet tutorial` runs.
#include "tutorial.h"

#include <algorithm>
#include <stdexcept>

namespace lenet::examples {

void show(std::ostream& out, std::string_view name, const Tensor& t) {
  // Width in columns: count UTF-8 lead bytes, not bytes ("·" is two bytes, one column).
  const auto columns = std::ranges::count_if(name,
                                             [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
  const std::string indent(static_cast<size_t>(columns) + 3, ' ');
  std::string text = format_tensor(t);
  out << name << " = ";
  for (size_t i = 0; i < text.size(); ++i) {
    out << text[i];
    // Indent every later line but the blank ones between 3-D planes.
    if (text[i] == '\n' && i + 1 < text.size() && text[i + 1] != '\n') out << indent;
  }
  out << '\n';
}

Tensor arange(const Shape& shape, float start) {
  Tensor t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = start + static_cast<float>(i);
  return t;
}

Tensor slice(const Tensor& x, int64_t i) {
  if (x.dim() < 2 || i < 0 || i >= x.size(0))
    throw std::invalid_argument("slice: index " + std::to_string(i) + " out of range for a tensor of shape " +
                                to_string(x.shape()));
  const Shape rest(x.shape().begin() + 1, x.shape().end());
  const int64_t n = numel(rest);
  return Tensor(rest, x.span().subspan(static_cast<size_t>(i * n), static_cast<size_t>(n)));
}

Tensor stack(const std::vector<Tensor>& parts) {
  if (parts.empty()) throw std::invalid_argument("stack: no tensors to stack");
  Shape shape = parts[0].shape();
  shape.insert(shape.begin(), static_cast<int64_t>(parts.size()));
  Tensor t(shape);
  float* dst = t.data();
  for (const Tensor& p : parts) {
    if (p.shape() != parts[0].shape())
      throw std::invalid_argument("stack: shapes differ, " + to_string(parts[0].shape()) + " vs " +
                                  to_string(p.shape()));
    dst = std::copy(p.span().begin(), p.span().end(), dst);
  }
  return t;
}

Tensor forward(Module& m, const Tensor& x) {
  Tensor y;
  m.forward(x, y);
  return y;
}

const std::vector<Section>& sections() {
  static const std::vector<Section> all = {
      {"corr2d", "The cross-correlation operation", "examples/01_corr2d.cpp",
       [](std::ostream& out, uint64_t) { corr2d_example(out); }},
      {"conv2d-module", "Convolutional layers", "examples/02_conv2d_module.cpp",
       [](std::ostream& out, uint64_t seed) { conv2d_module_example(out, seed); }},
      {"edge-detection", "Object edge detection in images", "examples/03_edge_detection.cpp",
       [](std::ostream& out, uint64_t) { edge_detection_example(out); }},
      {"learn-kernel", "Learning a kernel", "examples/04_learn_kernel.cpp",
       [](std::ostream& out, uint64_t seed) { learn_kernel_example(out, seed); }},
      {"padding", "Padding", "examples/05_padding.cpp",
       [](std::ostream& out, uint64_t seed) { padding_example(out, seed); }},
      {"stride", "Stride", "examples/06_stride.cpp",
       [](std::ostream& out, uint64_t seed) { stride_example(out, seed); }},
      {"multi-in", "Multiple input channels", "examples/07_multi_in.cpp",
       [](std::ostream& out, uint64_t) { multi_in_example(out); }},
      {"multi-out", "Multiple output channels", "examples/08_multi_out.cpp",
       [](std::ostream& out, uint64_t) { multi_out_example(out); }},
      {"conv1x1", "1×1 convolutional layer", "examples/09_conv1x1.cpp",
       [](std::ostream& out, uint64_t seed) { conv1x1_example(out, seed); }},
      {"pooling", "Pooling", "examples/10_pooling.cpp", [](std::ostream& out, uint64_t) { pooling_example(out); }},
      {"lenet", "LeNet", "examples/11_lenet.cpp", [](std::ostream& out, uint64_t seed) { lenet_example(out, seed); }},
  };
  return all;
}

const Section* find_section(std::string_view key) {
  const auto& all = sections();
  for (size_t i = 0; i < all.size(); ++i)
    if (key == all[i].name || key == std::to_string(i + 1)) return &all[i];
  return nullptr;
}

}  // namespace lenet::examples
