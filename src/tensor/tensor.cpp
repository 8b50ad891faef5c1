#include "lenet/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>

namespace lenet {

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("tensor: negative dimension in shape " + to_string(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw std::invalid_argument("tensor: shape " + to_string(shape) + " is too large");
    n *= d;
  }
  return n;
}

void Tensor::Free::operator()(float* p) const { std::free(p); }

Tensor::Tensor(Shape shape) { resize(shape, /*zero=*/true); }

Tensor::Tensor(Shape shape, std::span<const float> values) {
  resize(shape);
  if (static_cast<int64_t>(values.size()) != numel_)
    throw std::invalid_argument("tensor: " + std::to_string(values.size()) + " values given for shape " +
                                to_string(shape_));
  std::copy(values.begin(), values.end(), data_.get());
}

Tensor::Tensor(Shape shape, std::initializer_list<float> values)
    : Tensor(std::move(shape), std::span<const float>(values.begin(), values.size())) {}

Tensor::Tensor(const Tensor& other) { *this = other; }

Tensor& Tensor::operator=(const Tensor& other) {
  if (this == &other) return *this;
  resize(other.shape_);
  if (numel_) std::memcpy(data_.get(), other.data_.get(), sizeof(float) * numel_);
  return *this;
}

int64_t Tensor::size(int d) const {
  int n = dim();
  if (d < 0) d += n;
  if (d < 0 || d >= n)
    throw std::out_of_range("tensor: dimension " + std::to_string(d) + " out of range for shape " + to_string(shape_));
  return shape_[d];
}

void Tensor::resize(const Shape& shape, bool zero) {
  int64_t n = lenet::numel(shape);
  if (n > capacity_) {
    // 64-byte alignment: one cache line, and whole AVX-512 vectors.
    size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + 63) / 64) * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    data_.reset(p);
    capacity_ = n;
  }
  shape_ = shape;
  numel_ = n;
  if (zero && n) std::memset(data_.get(), 0, sizeof(float) * n);
}

Tensor Tensor::reshaped(const Shape& shape) const {
  if (lenet::numel(shape) != numel_)
    throw std::invalid_argument("reshape: cannot view " + to_string(shape_) + " as " + to_string(shape));
  Tensor t(*this);
  t.shape_ = shape;
  return t;
}

void Tensor::fill(float value) { std::fill_n(data_.get(), numel_, value); }

static int64_t flat_index(const Shape& shape, std::initializer_list<int64_t> index) {
  if (index.size() != shape.size())
    throw std::out_of_range("tensor: " + std::to_string(index.size()) + " indices for shape " + to_string(shape));
  int64_t flat = 0;
  size_t d = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= shape[d])
      throw std::out_of_range("tensor: index " + std::to_string(i) + " out of range in dimension " + std::to_string(d) +
                              " of " + to_string(shape));
    flat = flat * shape[d] + i;
    ++d;
  }
  return flat;
}

float& Tensor::at(std::initializer_list<int64_t> index) { return data_[flat_index(shape_, index)]; }
float Tensor::at(std::initializer_list<int64_t> index) const { return data_[flat_index(shape_, index)]; }

float max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    throw std::invalid_argument("max_abs_diff: shapes differ, " + to_string(a.shape()) + " vs " + to_string(b.shape()));
  float m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

namespace {
std::string number(float v, int precision) {
  if (v == 0.0f) return "0";  // avoids "-0"
  std::ostringstream os;
  if (v == std::round(v) && std::fabs(v) < 1e7f) {
    os << static_cast<long long>(v);
  } else {
    os.precision(precision);
    os << v;
  }
  return os.str();
}
}  // namespace

std::string format_tensor(const Tensor& t, int precision) {
  if (t.dim() == 0 || t.empty()) return "[]";
  std::vector<std::string> cells(t.numel());
  size_t width = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    cells[i] = number(t[i], precision);
    width = std::max(width, cells[i].size());
  }
  // Recursive nesting like PyTorch's print: one bracket per dimension, last
  // dimension on one line, right-aligned cells.
  std::string out;
  const Shape& s = t.shape();
  int nd = t.dim();
  std::vector<int64_t> strides(nd, 1);
  for (int d = nd - 2; d >= 0; --d) strides[d] = strides[d + 1] * s[d + 1];
  auto rec = [&](auto&& self, int d, int64_t offset) -> void {
    out += '[';
    for (int64_t i = 0; i < s[d]; ++i) {
      if (i) {
        out += ',';
        if (d == nd - 1) {
          out += ' ';
        } else {
          out += std::string(nd - 1 - d, '\n');
          out += std::string(d + 1, ' ');
        }
      }
      if (d == nd - 1) {
        const std::string& c = cells[offset + i];
        out += std::string(width - c.size(), ' ') + c;
      } else {
        self(self, d + 1, offset + i * strides[d]);
      }
    }
    out += ']';
  };
  rec(rec, 0, 0);
  return out;
}

}  // namespace lenet
