// Architectures as data: built-in names expand to spec text; text or JSON specs
// build a Sequential with shapes inferred from the input.
//
// Text grammar: layers separated by ',' ';' or newlines; each is a keyword and
// options separated by spaces:
//   conv OUT kK[xK] [pP[xP]] [sS[xS]] [nobias]      maxpool K[xK] [sS[xS]] [pP[xP]]
//   linear [OUT] [nobias]   (no OUT: the class count) avgpool K[xK] [sS[xS]] [pP[xP]]
//   sigmoid | relu | tanh | flatten | dropout [P] (P: 0.5 by default)
//   bn [eps=E] [momentum=M]  (BatchNorm2d after an image layer, BatchNorm1d
//                             after a flat one; PyTorch's eps 1e-5, momentum 0.1)
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "lenet/nn.h"

namespace lenet {

namespace {

const std::map<std::string, std::string>& builtins() {
  static const std::map<std::string, std::string> specs = {
      {"lenet",
       "conv 6 k5 p2, sigmoid, avgpool 2, conv 16 k5, sigmoid, avgpool 2, flatten, "
       "linear 120, sigmoid, linear 84, sigmoid, linear"},
      // The book's batch-norm LeNet (d2l.ai 8.5): no padding, 28x28 -> 24 -> 12 -> 8 -> 4, 16·4·4 = 256.
      {"lenet-bn",
       "conv 6 k5, bn, sigmoid, avgpool 2, conv 16 k5, bn, sigmoid, avgpool 2, flatten, "
       "linear 120, bn, sigmoid, linear 84, bn, sigmoid, linear"},
      {"lenet-max",
       "conv 6 k5 p2, sigmoid, maxpool 2, conv 16 k5, sigmoid, maxpool 2, flatten, "
       "linear 120, sigmoid, linear 84, sigmoid, linear"},
      {"lenet-relu",
       "conv 6 k5 p2, relu, maxpool 2, conv 16 k5, relu, maxpool 2, flatten, "
       "linear 120, relu, linear 84, relu, linear"},
      {"mlp", "flatten, linear 256, relu, linear"},
  };
  return specs;
}

struct LayerText {
  std::string text;  // as written, for messages
  std::vector<std::string> words;
};

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::vector<LayerText> split_text(const std::string& spec) {
  std::vector<LayerText> layers;
  std::string cur;
  auto flush = [&] {
    std::string t = trim(cur);
    cur.clear();
    if (t.empty()) return;
    LayerText l{t, {}};
    std::istringstream is(t);
    for (std::string w; is >> w;) {
      for (auto& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      l.words.push_back(w);
    }
    layers.push_back(std::move(l));
  };
  for (char ch : spec) {
    if (ch == ',' || ch == ';' || ch == '\n')
      flush();
    else
      cur += ch;
  }
  flush();
  return layers;
}

// "5" -> (5,5), "5x3" -> (5,3). Any sign is kept so that the layer itself
// reports zero or negative sizes with its own message.
std::pair<int, int> parse_pair(const std::string& s, const std::string& where) {
  auto parse_int = [&](const std::string& t) {
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != t.size() || t.empty() || v < -1000000 || v > 1000000)
      throw std::invalid_argument(where + ": '" + s + "' is not a size (expected N or HxW)");
    return static_cast<int>(v);
  };
  auto x = s.find('x');
  if (x == std::string::npos) {
    int v = parse_int(s);
    return {v, v};
  }
  return {parse_int(s.substr(0, x)), parse_int(s.substr(x + 1))};
}

// JSON list -> text spec, so both forms share one parser.
std::string json_to_text(const std::string& spec) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(spec);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("architecture: invalid JSON spec: ") + e.what());
  }
  if (!j.is_array()) throw std::invalid_argument("architecture: a JSON spec must be a list of layers");
  // A whole number; as text, so the text parser checks its range like a typed one.
  auto integer = [](const nlohmann::json& v) -> std::string {
    if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    // 6.0 is 6; converting 1e300 to an integer would be undefined, so check first.
    if (v.is_number_float() && std::fabs(v.get<double>()) <= 1e9 && v.get<double>() == std::floor(v.get<double>()))
      return std::to_string(static_cast<int64_t>(v.get<double>()));
    throw std::invalid_argument("expected a whole number, got " + v.dump());
  };
  auto pair_of = [&](const nlohmann::json& v) -> std::string {
    if (v.is_array() && v.size() == 2) return integer(v[0]) + "x" + integer(v[1]);
    return integer(v);
  };
  std::string text;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& l = j[i];
    std::string where = "architecture: layer " + std::to_string(i + 1);
    try {
      if (!l.is_object() || !l.contains("layer") || !l["layer"].is_string())
        throw std::invalid_argument(where + ": each layer must be an object with a \"layer\" name");
      std::string s = l["layer"].get<std::string>();
      if (l.contains("out")) s += " " + integer(l["out"]);
      if (l.contains("kernel")) s += (s.starts_with("conv") ? " k" : " ") + pair_of(l["kernel"]);
      if (l.contains("window")) s += " " + pair_of(l["window"]);
      if (l.contains("padding")) s += " p" + pair_of(l["padding"]);
      if (l.contains("stride")) s += " s" + pair_of(l["stride"]);
      if (l.contains("bias") && !l["bias"].get<bool>()) s += " nobias";
      if (l.contains("p")) {
        if (!l["p"].is_number()) throw std::invalid_argument("\"p\" must be a number, got " + l["p"].dump());
        std::ostringstream p;
        p.precision(9);
        p << l["p"].get<double>();
        s += " " + p.str();
      }
      for (const char* key : {"eps", "momentum"}) {  // bn's
        if (!l.contains(key)) continue;
        if (!l[key].is_number())
          throw std::invalid_argument(std::string("\"") + key + "\" must be a number, got " + l[key].dump());
        std::ostringstream v;
        v.precision(9);
        v << l[key].get<double>();
        s += std::string(" ") + key + "=" + v.str();
      }
      text += (i ? ", " : "") + s;
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument(where + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      if (std::string(e.what()).starts_with(where)) throw;
      throw std::invalid_argument(where + ": " + e.what());
    }
  }
  return text;
}

// Parameters a layer of these sizes holds, saturating instead of overflowing;
// 0 when a size is not positive (the layer itself then says what is wrong).
int64_t parameter_count(std::initializer_list<int64_t> factors, int64_t bias) {
  int64_t n = 1;
  for (int64_t f : factors) {
    if (f <= 0) return 0;
    if (n > INT64_MAX / 4 / f) return INT64_MAX / 2;
    n *= f;
  }
  return n + bias;
}

// Throws before the layer is built when it would take the model past its parameter limit.
void spend(int64_t& budget, int64_t count, const std::string& where) {
  if (count > budget)
    throw std::invalid_argument(where + ": " + std::to_string(count) + " parameters, more than the " +
                                std::to_string(budget) + " left of the model's limit");
  budget -= count;
}

std::unique_ptr<Module> make_layer(const LayerText& l, const Shape& in, int classes, const std::string& where,
                                   int64_t& budget) {
  const std::string& kind = l.words[0];
  auto options = [&](size_t from, auto&& handle) {
    for (size_t i = from; i < l.words.size(); ++i) {
      const std::string& w = l.words[i];
      if (w == "nobias" || w.size() < 2 || !handle(w[0], w.substr(1), w))
        if (!handle('\0', w, w)) throw std::invalid_argument(where + ": unknown option '" + w + "'");
    }
  };
  auto channels = [&] {
    if (in.size() != 4)
      throw std::invalid_argument(where + ": expects an image input [N, C, H, W], got " + to_string(in));
    return static_cast<int>(in[1]);
  };
  if (kind == "conv" || kind == "conv2d") {
    if (l.words.size() < 2)
      throw std::invalid_argument(where + ": conv needs an output channel count, e.g. 'conv 6 k5'");
    int out = parse_pair(l.words[1], where).first;
    bool have_kernel = false;
    Conv2dOptions o(channels(), out, 1);
    options(2, [&](char key, const std::string& v, const std::string& w) {
      if (key == '\0') {
        if (w == "nobias") {
          o.bias(false);
          return true;
        }
        return false;
      }
      auto [a, b] = parse_pair(v, where);
      if (key == 'k') {
        o.kernel_size(a, b);
        have_kernel = true;
      } else if (key == 'p')
        o.padding(a, b);
      else if (key == 's')
        o.stride(a, b);
      else
        return false;
      return true;
    });
    if (!have_kernel) throw std::invalid_argument(where + ": conv needs a kernel size, e.g. 'k5' or 'k5x3'");
    spend(budget, parameter_count({o.out, o.in, o.kh, o.kw}, o.with_bias ? o.out : 0), where);
    return std::make_unique<Conv2d>(o);
  }
  if (kind == "maxpool" || kind == "avgpool" || kind == "maxpool2d" || kind == "avgpool2d") {
    if (l.words.size() < 2) throw std::invalid_argument(where + ": pooling needs a window, e.g. '" + kind + " 2'");
    std::string window = l.words[1];
    if (window[0] == 'k') window = window.substr(1);
    auto [kh, kw] = parse_pair(window, where);
    Pool2dOptions o(kh, kw);
    options(2, [&](char key, const std::string& v, const std::string&) {
      if (key == '\0') return false;
      auto [a, b] = parse_pair(v, where);
      if (key == 'p')
        o.padding(a, b);
      else if (key == 's')
        o.stride(a, b);
      else
        return false;
      return true;
    });
    channels();
    return std::make_unique<Pool2d>(kind.starts_with("max") ? Pool2d::Mode::Max : Pool2d::Mode::Average, o);
  }
  if (kind == "linear" || kind == "dense") {
    if (in.size() != 2)
      throw std::invalid_argument(where + ": expects a flat input [N, F] (add 'flatten' before it), got " +
                                  to_string(in));
    int out = classes;
    size_t from = 1;
    if (l.words.size() > 1 && l.words[1] != "nobias") {
      out = parse_pair(l.words[1], where).first;
      from = 2;
    }
    bool bias = true;
    options(from, [&](char key, const std::string&, const std::string& w) {
      if (key == '\0' && w == "nobias") {
        bias = false;
        return true;
      }
      return false;
    });
    spend(budget, parameter_count({in[1], out}, bias ? out : 0), where);
    return std::make_unique<Linear>(static_cast<int>(in[1]), out, bias);
  }
  auto no_options = [&] {
    if (l.words.size() > 1) throw std::invalid_argument(where + ": '" + kind + "' takes no options");
  };
  if (kind == "sigmoid") {
    no_options();
    return std::make_unique<Sigmoid>();
  }
  if (kind == "relu") {
    no_options();
    return std::make_unique<ReLU>();
  }
  if (kind == "tanh") {
    no_options();
    return std::make_unique<Tanh>();
  }
  if (kind == "flatten") {
    no_options();
    return std::make_unique<Flatten>();
  }
  if (kind == "bn" || kind == "batchnorm" || kind == "batchnorm2d" || kind == "batchnorm1d") {
    float eps = 1e-5f, momentum = 0.1f;
    for (size_t i = 1; i < l.words.size(); ++i) {
      const std::string& w = l.words[i];
      const size_t eq = w.find('=');
      const std::string key = w.substr(0, eq);
      if (eq == std::string::npos || (key != "eps" && key != "momentum"))
        throw std::invalid_argument(where + ": unknown option '" + w +
                                    "' (bn takes eps=E and momentum=M, e.g. 'bn eps=1e-3')");
      // As a float directly, so the canonical spec (shortest text) reads back to the same value.
      const std::string text = w.substr(eq + 1);
      float v = 0;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      const bool number = !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size();
      if (key == "eps") {
        if (!number || !(v > 0) || !std::isfinite(v))
          throw std::invalid_argument(where + ": eps '" + text + "' is not a positive number");
        eps = v;
      } else {
        if (!number || !(v >= 0 && v <= 1))
          throw std::invalid_argument(where + ": momentum '" + text + "' is not a number in [0, 1]");
        momentum = v;
      }
    }
    if (in.size() != 4 && in.size() != 2)
      throw std::invalid_argument(where + ": expects [N, C, H, W] or [N, C], got " + to_string(in));
    spend(budget, 2 * in[1], where);
    return std::make_unique<BatchNorm>(static_cast<int>(in[1]), in.size() == 4, eps, momentum);
  }
  if (kind == "dropout") {
    if (l.words.size() > 2) throw std::invalid_argument(where + ": dropout takes one probability, e.g. 'dropout 0.5'");
    double p = 0.5;
    if (l.words.size() == 2) {
      size_t used = 0;
      try {
        p = std::stod(l.words[1], &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != l.words[1].size() || !(p >= 0 && p <= 1))
        throw std::invalid_argument(where + ": '" + l.words[1] + "' is not a probability in [0, 1]");
    }
    return std::make_unique<Dropout>(static_cast<float>(p));
  }
  throw std::invalid_argument(where + ": unknown layer '" + kind +
                              "' (known: conv, maxpool, avgpool, linear, sigmoid, relu, tanh, flatten, bn, dropout)");
}

}  // namespace

std::vector<std::string> builtin_architectures() {
  std::vector<std::string> names;
  for (auto& [name, spec] : builtins()) names.push_back(name);
  return names;
}

std::string expand_architecture(const std::string& name_or_spec) {
  auto it = builtins().find(trim(name_or_spec));
  return it == builtins().end() ? name_or_spec : it->second;
}

Sequential build_model(const std::string& arch, const Shape& input_chw, int classes, Rng* rng) {
  return build_model(arch, input_chw, classes, rng, kMaxModelParameters);
}

Sequential build_model(const std::string& arch, const Shape& input_chw, int classes, Rng* rng, int64_t max_parameters) {
  if (input_chw.size() != 3 || input_chw[0] < 1 || input_chw[1] < 1 || input_chw[2] < 1)
    throw std::invalid_argument("architecture: input shape must be [C, H, W] with positive sizes, got " +
                                to_string(input_chw));
  // Per sample: each size is checked before the product, which then cannot overflow.
  auto too_many = [](const Shape& shape) {
    int64_t n = 1;
    for (size_t d = 1; d < shape.size(); ++d) {
      if (shape[d] > kMaxLayerValues) return true;
      n *= shape[d];
      if (n > kMaxLayerValues) return true;
    }
    return false;
  };
  if (too_many({1, input_chw[0], input_chw[1], input_chw[2]}))
    throw std::invalid_argument("architecture: input shape " + to_string(input_chw) + " has more than " +
                                std::to_string(kMaxLayerValues) + " values per sample");
  int64_t budget = max_parameters;
  if (classes < 1)
    throw std::invalid_argument("architecture: class count must be positive, got " + std::to_string(classes));
  std::string text = expand_architecture(arch);
  if (!trim(text).empty() && trim(text)[0] == '[') text = json_to_text(trim(text));
  auto layers = split_text(text);
  if (layers.empty()) throw std::invalid_argument("architecture: '" + arch + "' has no layers");
  Sequential model;
  Shape shape = {1, input_chw[0], input_chw[1], input_chw[2]};
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string where = "architecture: layer " + std::to_string(i + 1) + " '" + layers[i].text + "'";
    std::unique_ptr<Module> layer;
    try {
      layer = make_layer(layers[i], shape, classes, where, budget);
      shape = layer->output_shape(shape);
      if (too_many(shape))
        throw std::invalid_argument(where + ": its output " + to_string(shape) + " has more than " +
                                    std::to_string(kMaxLayerValues) + " values per sample");
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      throw std::invalid_argument(what.starts_with(where) ? what : where + ": " + what);
    }
    // Distinct masks per Dropout even without an rng (init_xavier_uniform draws the seeds from it).
    if (auto* dropout = dynamic_cast<Dropout*>(layer.get())) dropout->set_seed(i + 1);
    model.add(std::move(layer));
  }
  if (shape.size() != 2)
    throw std::invalid_argument("architecture: the last layer must produce [N, classes], but '" + arch +
                                "' ends with " + to_string(shape) + " (add flatten and linear)");
  if (shape[1] != classes)
    throw std::invalid_argument("architecture: the last layer produces " + std::to_string(shape[1]) +
                                " outputs but the data has " + std::to_string(classes) + " classes");
  if (rng) init_xavier_uniform(model, *rng);
  return model;
}

}  // namespace lenet
