// 11. LeNet: the output shape of every layer.
//
// The built-in architecture "lenet" is the chapter's network: conv 6 k5 p2, sigmoid,
// avgpool 2, conv 16 k5, sigmoid, avgpool 2, flatten, linear 120, sigmoid, linear 84,
// sigmoid, linear (one output per class). The width after flatten comes from the input.
#include "tutorial.h"

namespace lenet::examples {
namespace {

std::vector<LayerShape> layer_summary(std::ostream& out, const Shape& input_chw, int classes, Rng& rng) {
  Sequential net = build_model("lenet", input_chw, classes, &rng);
  Tensor X({1, input_chw[0], input_chw[1], input_chw[2]});
  for (float& v : X.span()) v = rng.uniform01();

  // A real forward, layer by layer, as the chapter's layer_summary does
  // (net.summary({1, C, H, W}) prints the same from the shapes alone).
  std::vector<LayerShape> shapes;
  for (size_t i = 0; i < net.size(); ++i) {
    X = forward(net[i], X);
    shapes.push_back({net[i].type(), X.shape()});
    out << net[i].type() << " output shape:\t" << to_string(X.shape()) << '\n';
  }
  return shapes;
}

}  // namespace

LeNetExample lenet_example(std::ostream& out, uint64_t seed) {
  Rng rng(seed);
  out << "lenet on a 1×1×28×28 input, 10 classes:\n";
  auto mnist = layer_summary(out, {1, 28, 28}, 10, rng);
  out << "\nlenet on a 1×1×28×20 input, 9 classes (flatten: 16·5·3 = 240):\n";
  auto narrow = layer_summary(out, {1, 28, 20}, 9, rng);
  return {mnist, narrow};
}

}  // namespace lenet::examples
