// Tensor: a shape and 64-byte-aligned float32 storage, row-major (NCHW for images).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lenet {

using Shape = std::vector<int64_t>;

// "[1, 6, 28, 28]"
std::string to_string(const Shape& shape);
// Product of the dimensions; throws on a negative dimension or overflow.
int64_t numel(const Shape& shape);

// Owns its storage; copies are deep. Storage is reused when a tensor is resized
// to a size it already has room for, so workspaces do not allocate every step.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape);  // zero-filled
  Tensor(Shape shape, std::initializer_list<float> values);
  Tensor(Shape shape, std::span<const float> values);
  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  const Shape& shape() const { return shape_; }
  int dim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return numel_; }
  bool empty() const { return numel_ == 0; }

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  std::span<float> span() { return {data_.get(), static_cast<size_t>(numel_)}; }
  std::span<const float> span() const { return {data_.get(), static_cast<size_t>(numel_)}; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

  // Element access by full index, checked against the shape.
  float& at(std::initializer_list<int64_t> index);
  float at(std::initializer_list<int64_t> index) const;

  // Changes the shape; keeps the storage when it is large enough. Contents are
  // unspecified afterwards unless `zero` is set.
  void resize(const Shape& shape, bool zero = false);
  // Same data, new shape of equal element count (a copy).
  Tensor reshaped(const Shape& shape) const;
  void fill(float value);
  void zero() { fill(0.0f); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  Shape shape_;
  int64_t numel_ = 0;
  int64_t capacity_ = 0;
  std::unique_ptr<float[], Free> data_;
};

// Largest absolute element-wise difference; throws when the shapes differ.
float max_abs_diff(const Tensor& a, const Tensor& b);

// Compact, aligned text form, e.g. for 2-D:  [[19, 25],
//                                             [37, 43]]
std::string format_tensor(const Tensor& t, int precision = 4);

}  // namespace lenet
