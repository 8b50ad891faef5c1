// The layers: thin owners of parameters that check shapes and call kernels.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "lenet/nn.h"

namespace lenet {

namespace {
std::string pair_str(int a, int b) { return a == b ? std::to_string(a) : std::to_string(a) + "x" + std::to_string(b); }
std::string pair_describe(int a, int b) {
  if (a == b) return std::to_string(a);
  // Appended piece by piece: `"(" + std::string` trips GCC 12's -Wrestrict.
  std::string s = "(";
  s += std::to_string(a);
  s += ", ";
  s += std::to_string(b);
  s += ")";
  return s;
}
[[noreturn]] void bad_input(const std::string& who, const std::string& what, const Shape& in) {
  throw std::invalid_argument(who + ": " + what + ", got input " + to_string(in));
}
int dim_int(int64_t v) { return static_cast<int>(v); }
}  // namespace

// ---- Conv2d ----

Conv2d::Conv2d(const Conv2dOptions& o) : opt_(o) {
  if (o.in < 1 || o.out < 1 || o.kh < 1 || o.kw < 1 || o.sh < 1 || o.sw < 1 || o.ph < 0 || o.pw < 0)
    throw std::invalid_argument("conv2d: sizes must be positive (padding non-negative): channels " +
                                std::to_string(o.in) + "->" + std::to_string(o.out) + ", kernel " +
                                pair_str(o.kh, o.kw) + ", stride " + pair_str(o.sh, o.sw) + ", padding " +
                                pair_str(o.ph, o.pw));
  std::vector<std::pair<std::string, Shape>> shapes = {{"weight", {o.out, o.in, o.kh, o.kw}}};
  if (o.with_bias) shapes.push_back({"bias", {o.out}});
  declare(shapes);
}

std::string Conv2d::describe() const {
  std::string s = "Conv2d(" + std::to_string(opt_.in) + ", " + std::to_string(opt_.out) +
                  ", k=" + pair_describe(opt_.kh, opt_.kw);
  if (opt_.sh != 1 || opt_.sw != 1) s += ", s=" + pair_describe(opt_.sh, opt_.sw);
  if (opt_.ph || opt_.pw) s += ", p=" + pair_describe(opt_.ph, opt_.pw);
  if (!opt_.with_bias) s += ", bias=false";
  return s + ")";
}

std::string Conv2d::spec() const {
  std::string s = "conv " + std::to_string(opt_.out) + " k" + pair_str(opt_.kh, opt_.kw);
  if (opt_.ph || opt_.pw) s += " p" + pair_str(opt_.ph, opt_.pw);
  if (opt_.sh != 1 || opt_.sw != 1) s += " s" + pair_str(opt_.sh, opt_.sw);
  if (!opt_.with_bias) s += " nobias";
  return s;
}

kernels::ConvGeometry Conv2d::geometry(const Shape& in) const {
  if (in.size() != 4) bad_input("conv2d", "expects a 4-D input [N, C, H, W]", in);
  if (in[1] != opt_.in)
    throw std::invalid_argument("conv2d: input has " + std::to_string(in[1]) + " channels, weight expects " +
                                std::to_string(opt_.in) + " (input " + to_string(in) + ", weight " +
                                to_string(parameters()[0].shape) + ")");
  kernels::ConvGeometry g;
  g.n = dim_int(in[0]);
  g.c = dim_int(in[1]);
  g.h = dim_int(in[2]);
  g.w = dim_int(in[3]);
  g.o = opt_.out;
  g.kh = opt_.kh;
  g.kw = opt_.kw;
  g.sh = opt_.sh;
  g.sw = opt_.sw;
  g.ph = opt_.ph;
  g.pw = opt_.pw;
  g.validate("conv2d");
  return g;
}

Shape Conv2d::output_shape(const Shape& in) const {
  auto g = geometry(in);
  return {in[0], g.o, g.oh(), g.ow()};
}

void Conv2d::forward(const Tensor& x, Tensor& y) {
  auto g = geometry(x.shape());
  y.resize({g.n, g.o, g.oh(), g.ow()});
  const auto& p = parameters();
  kernels::conv2d_forward(g, x.data(), p[0].value, opt_.with_bias ? p[1].value : nullptr, y.data());
}

void Conv2d::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  auto g = geometry(x.shape());
  if (dx) dx->resize(x.shape());
  auto& p = parameters();
  kernels::conv2d_backward(g, x.data(), p[0].value, dy.data(), dx ? dx->data() : nullptr, p[0].grad,
                           opt_.with_bias ? p[1].grad : nullptr);
}

// ---- Linear ----

Linear::Linear(int in, int out, bool bias) : in_(in), out_(out), bias_(bias) {
  if (in < 1 || out < 1)
    throw std::invalid_argument("linear: sizes must be positive: " + std::to_string(in) + " -> " + std::to_string(out));
  std::vector<std::pair<std::string, Shape>> shapes = {{"weight", {out, in}}};
  if (bias) shapes.push_back({"bias", {out}});
  declare(shapes);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) + (bias_ ? ")" : ", bias=false)");
}
std::string Linear::spec() const { return "linear " + std::to_string(out_) + (bias_ ? "" : " nobias"); }

Shape Linear::output_shape(const Shape& in) const {
  if (in.size() != 2) bad_input("linear", "expects a 2-D input [N, " + std::to_string(in_) + "] (add a flatten)", in);
  if (in[1] != in_)
    throw std::invalid_argument("linear: input has " + std::to_string(in[1]) + " features, weight expects " +
                                std::to_string(in_) + " (input " + to_string(in) + ", weight [" + std::to_string(out_) +
                                ", " + std::to_string(in_) + "])");
  return {in[0], out_};
}

void Linear::forward(const Tensor& x, Tensor& y) {
  auto s = output_shape(x.shape());
  y.resize(s);
  const auto& p = parameters();
  kernels::linear_forward(dim_int(s[0]), in_, out_, x.data(), p[0].value, bias_ ? p[1].value : nullptr, y.data());
}

void Linear::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (dx) dx->resize(x.shape());
  auto& p = parameters();
  kernels::linear_backward(dim_int(x.size(0)), in_, out_, x.data(), p[0].value, dy.data(), dx ? dx->data() : nullptr,
                           p[0].grad, bias_ ? p[1].grad : nullptr);
}

// ---- pooling ----

Pool2d::Pool2d(Mode mode, const Pool2dOptions& o) : mode_(mode), opt_(o) {
  if (opt_.sh == 0) opt_.sh = opt_.kh;
  if (opt_.sw == 0) opt_.sw = opt_.kw;
  const std::string op = mode == Mode::Max ? "maxpool2d" : "avgpool2d";
  if (opt_.kh < 1 || opt_.kw < 1 || opt_.sh < 1 || opt_.sw < 1 || opt_.ph < 0 || opt_.pw < 0)
    throw std::invalid_argument(op + ": sizes must be positive (padding non-negative): window " +
                                pair_str(opt_.kh, opt_.kw) + ", stride " + pair_str(opt_.sh, opt_.sw) + ", padding " +
                                pair_str(opt_.ph, opt_.pw));
}

std::string Pool2d::describe() const {
  std::string s = type() + "(k=" + pair_describe(opt_.kh, opt_.kw);
  if (opt_.sh != opt_.kh || opt_.sw != opt_.kw) s += ", s=" + pair_describe(opt_.sh, opt_.sw);
  if (opt_.ph || opt_.pw) s += ", p=" + pair_describe(opt_.ph, opt_.pw);
  return s + ")";
}

std::string Pool2d::spec() const {
  std::string s = std::string(mode_ == Mode::Max ? "maxpool" : "avgpool") + " " + pair_str(opt_.kh, opt_.kw);
  if (opt_.sh != opt_.kh || opt_.sw != opt_.kw) s += " s" + pair_str(opt_.sh, opt_.sw);
  if (opt_.ph || opt_.pw) s += " p" + pair_str(opt_.ph, opt_.pw);
  return s;
}

kernels::PoolGeometry Pool2d::geometry(const Shape& in) const {
  const std::string op = mode_ == Mode::Max ? "maxpool2d" : "avgpool2d";
  if (in.size() != 4) bad_input(op, "expects a 4-D input [N, C, H, W]", in);
  kernels::PoolGeometry g;
  g.n = dim_int(in[0]);
  g.c = dim_int(in[1]);
  g.h = dim_int(in[2]);
  g.w = dim_int(in[3]);
  g.kh = opt_.kh;
  g.kw = opt_.kw;
  g.sh = opt_.sh;
  g.sw = opt_.sw;
  g.ph = opt_.ph;
  g.pw = opt_.pw;
  g.validate(op);
  return g;
}

Shape Pool2d::output_shape(const Shape& in) const {
  auto g = geometry(in);
  return {in[0], in[1], g.oh(), g.ow()};
}

void Pool2d::forward(const Tensor& x, Tensor& y) {
  auto g = geometry(x.shape());
  y.resize({g.n, g.c, g.oh(), g.ow()});
  if (mode_ == Mode::Max) {
    argmax_.resize(static_cast<size_t>(y.numel()));
    kernels::maxpool2d_forward(g, x.data(), y.data(), argmax_.data());
  } else {
    kernels::avgpool2d_forward(g, x.data(), y.data());
  }
}

void Pool2d::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  auto g = geometry(x.shape());
  dx->resize(x.shape());
  if (mode_ == Mode::Max)
    kernels::maxpool2d_backward(g, dy.data(), argmax_.data(), dx->data());
  else
    kernels::avgpool2d_backward(g, dy.data(), dx->data());
}

// ---- activations ----

std::string Activation::type() const {
  switch (kind_) {
    case Kind::Sigmoid: return "Sigmoid";
    case Kind::ReLU: return "ReLU";
    case Kind::Tanh: return "Tanh";
  }
  return "?";
}

std::string Activation::spec() const {
  switch (kind_) {
    case Kind::Sigmoid: return "sigmoid";
    case Kind::ReLU: return "relu";
    case Kind::Tanh: return "tanh";
  }
  return "?";
}

void Activation::forward(const Tensor& x, Tensor& y) {
  y.resize(x.shape());
  switch (kind_) {
    case Kind::Sigmoid: kernels::sigmoid_forward(x.numel(), x.data(), y.data()); break;
    case Kind::ReLU: kernels::relu_forward(x.numel(), x.data(), y.data()); break;
    case Kind::Tanh: kernels::tanh_forward(x.numel(), x.data(), y.data()); break;
  }
}

void Activation::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  dx->resize(x.shape());
  switch (kind_) {
    case Kind::Sigmoid: kernels::sigmoid_backward(y.numel(), y.data(), dy.data(), dx->data()); break;
    case Kind::ReLU: kernels::relu_backward(y.numel(), y.data(), dy.data(), dx->data()); break;
    case Kind::Tanh: kernels::tanh_backward(y.numel(), y.data(), dy.data(), dx->data()); break;
  }
}

// ---- flatten ----

Shape Flatten::output_shape(const Shape& in) const {
  if (in.size() < 2) bad_input("flatten", "expects a batch dimension", in);
  int64_t f = 1;
  for (size_t i = 1; i < in.size(); ++i) f *= in[i];
  return {in[0], f};
}

void Flatten::forward(const Tensor& x, Tensor& y) {
  y.resize(output_shape(x.shape()));
  std::copy_n(x.data(), x.numel(), y.data());
}

void Flatten::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  if (!dx) return;
  dx->resize(x.shape());
  std::copy_n(dy.data(), dy.numel(), dx->data());
}

}  // namespace lenet
