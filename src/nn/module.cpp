#include <algorithm>
#include <stdexcept>

#include "lenet/nn.h"

namespace lenet {

Parameter& Module::parameter(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return p;
  throw std::out_of_range(type() + ": no parameter named '" + name + "'");
}

void Module::zero_grad() {
  for (auto& p : params_) std::fill_n(p.grad, p.numel(), 0.0f);
}

void Module::declare(std::vector<std::pair<std::string, Shape>> shapes) {
  int64_t total = 0;
  for (auto& [name, shape] : shapes) total += numel(shape);
  own_values_.resize({total}, true);
  own_grads_.resize({total}, true);
  params_.clear();
  int64_t offset = 0;
  for (auto& [name, shape] : shapes) {
    params_.push_back({name, shape, own_values_.data() + offset, own_grads_.data() + offset});
    offset += numel(shape);
  }
}

void Module::declare_buffers(std::vector<std::pair<std::string, Shape>> shapes) {
  int64_t total = 0;
  for (auto& [name, shape] : shapes) total += numel(shape);
  own_buffers_.resize({total}, true);
  buffers_.clear();
  int64_t offset = 0;
  for (auto& [name, shape] : shapes) {
    buffers_.push_back({name, shape, own_buffers_.data() + offset, nullptr});
    offset += numel(shape);
  }
}

void Module::rebind(std::span<float> values, std::span<float> grads) {
  size_t offset = 0;
  for (auto& p : params_) {
    const size_t n = static_cast<size_t>(p.numel());
    if (offset + n > values.size() || offset + n > grads.size())
      throw std::logic_error(type() + ": rebind given too little storage");
    std::copy_n(p.value, n, values.data() + offset);
    std::copy_n(p.grad, n, grads.data() + offset);
    p.value = values.data() + offset;
    p.grad = grads.data() + offset;
    offset += n;
  }
  own_values_ = Tensor();
  own_grads_ = Tensor();
}

}  // namespace lenet
