// The C API (include/lenet/c_api.h): a thin layer over the C++ one. Every
// entry point checks its arguments, runs the C++ call inside a catch-all and
// turns any exception into a status code and one sentence in the caller's
// buffer: nothing is thrown across the C boundary.
#include "lenet/c_api.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/error.h"
#include "lenet/image.h"
#include "lenet/isa.h"
#include "lenet/parallel.h"
#include "lenet/predict.h"
#include "lenet/version.h"

struct lenet_model {
  lenet::LoadedModel loaded;
  int channels = 0, height = 0, width = 0;
  int64_t sample = 0;  // C·H·W
  std::mutex mutex;    // one call at a time: the engine's buffers belong to the model
};

namespace {

// The message, cut to fit, always NUL-terminated (nothing when there is no room).
int report(char* error, size_t error_size, int status, const std::string& message) {
  if (error && error_size > 0) {
    const size_t n = std::min(message.size(), error_size - 1);
    std::memcpy(error, message.data(), n);
    error[n] = '\0';
  }
  return status;
}

void clear(char* error, size_t error_size) {
  if (error && error_size > 0) error[0] = '\0';
}

// Runs `body` (which returns a status) with every exception turned into one.
template <class Body>
int guarded(const char* function, char* error, size_t error_size, Body&& body) noexcept {
  try {
    clear(error, error_size);
    return body();
  } catch (const lenet::FileError& e) {
    return report(error, error_size, LENET_ERROR_FILE, e.what());
  } catch (const std::bad_alloc&) {
    return report(error, error_size, LENET_ERROR_RUNTIME, std::string(function) + ": out of memory");
  } catch (const std::exception& e) {
    return report(error, error_size, LENET_ERROR_RUNTIME, std::string(function) + ": " + e.what());
  } catch (...) {
    return report(error, error_size, LENET_ERROR_RUNTIME, std::string(function) + ": unknown error");
  }
}

int bad_argument(char* error, size_t error_size, const char* function, const std::string& problem) {
  return report(error, error_size, LENET_ERROR_ARGUMENT, std::string(function) + ": " + problem);
}

// The model's input as 8-bit planes → its floats, as the DataLoader scales them.
void to_floats(const lenet_model& m, const uint8_t* pixels, int64_t count, float* out) {
  lenet::pixels_to_floats(pixels, count, m.channels, static_cast<int64_t>(m.height) * m.width,
                          m.loaded.info.preprocessing.normalization, out);
}

// One prepared image (interleaved, the model's size) → probabilities.
int predict_prepared(lenet_model& m, const lenet::Image& image, float* probabilities) {
  std::vector<float> x(static_cast<size_t>(m.sample));
  lenet::image_to_floats(image, m.loaded.info.preprocessing.normalization, x.data());
  lenet::predict_probabilities(m.loaded.model, m.loaded.info, x.data(), 1, probabilities);
  return LENET_OK;
}

constexpr int kBatch = 256;  // lenet predict's default batch: the same batches give the same numbers

}  // namespace

extern "C" {

const char* lenet_version(void) { return LENET_VERSION_STRING; }

const char* lenet_kernels(void) {
  try {
    static const std::string name = lenet::active_isa();
    return name.c_str();
  } catch (...) {
    return nullptr;  // LENET_ISA names a path this CPU lacks
  }
}

int lenet_set_threads(int threads) {
  if (threads < 0) return LENET_ERROR_ARGUMENT;
  lenet::set_num_threads(threads);
  return LENET_OK;
}

lenet_model* lenet_model_load(const char* path, char* error, size_t error_size) {
  const char* fn = "lenet_model_load";
  if (!path) return bad_argument(error, error_size, fn, "path is NULL"), nullptr;
  if (!*path) return bad_argument(error, error_size, fn, "path is empty"), nullptr;
  lenet_model* out = nullptr;
  guarded(fn, error, error_size, [&] {
    auto model = std::make_unique<lenet_model>();
    model->loaded = lenet::load_model(path);
    const lenet::ModelInfo& info = model->loaded.info;
    if (info.input_shape.size() != 3 || info.class_names.empty())
      throw lenet::FileError(path, "the model has input shape " + lenet::to_string(info.input_shape) + " and " +
                                       std::to_string(info.class_names.size()) +
                                       " class names, not [C, H, W] and at least one class");
    model->channels = static_cast<int>(info.input_shape[0]);
    model->height = static_cast<int>(info.input_shape[1]);
    model->width = static_cast<int>(info.input_shape[2]);
    model->sample = info.input_shape[0] * info.input_shape[1] * info.input_shape[2];
    out = model.release();
    return LENET_OK;
  });
  return out;
}

void lenet_model_free(lenet_model* model) { delete model; }

int lenet_model_input_shape(const lenet_model* model, int* channels, int* height, int* width) {
  if (!model) return LENET_ERROR_ARGUMENT;
  if (channels) *channels = model->channels;
  if (height) *height = model->height;
  if (width) *width = model->width;
  return LENET_OK;
}

int lenet_model_num_classes(const lenet_model* model) {
  return model ? static_cast<int>(model->loaded.info.class_names.size()) : -1;
}

const char* lenet_model_class_name(const lenet_model* model, int index) {
  if (!model || index < 0 || index >= lenet_model_num_classes(model)) return nullptr;
  return model->loaded.info.class_names[static_cast<size_t>(index)].c_str();
}

int lenet_predict_u8(lenet_model* model, const uint8_t* pixels, int count, float* probabilities, char* error,
                     size_t error_size) {
  const char* fn = "lenet_predict_u8";
  if (!model) return bad_argument(error, error_size, fn, "model is NULL");
  if (!pixels) return bad_argument(error, error_size, fn, "pixels is NULL");
  if (!probabilities) return bad_argument(error, error_size, fn, "probabilities is NULL");
  if (count <= 0) return bad_argument(error, error_size, fn, "count must be positive, got " + std::to_string(count));
  return guarded(fn, error, error_size, [&] {
    std::lock_guard<std::mutex> lock(model->mutex);
    const int classes = lenet_model_num_classes(model);
    // Batches of lenet predict's size, converted one at a time (no copy of all inputs as floats).
    std::vector<float> x(static_cast<size_t>(std::min(count, kBatch) * model->sample));
    for (int start = 0; start < count; start += kBatch) {
      const int n = std::min(count - start, kBatch);
      to_floats(*model, pixels + static_cast<int64_t>(start) * model->sample, n, x.data());
      lenet::predict_probabilities(model->loaded.model, model->loaded.info, x.data(), n,
                                   probabilities + static_cast<int64_t>(start) * classes, kBatch);
    }
    return LENET_OK;
  });
}

int lenet_predict_float(lenet_model* model, const float* inputs, int count, float* probabilities, char* error,
                        size_t error_size) {
  const char* fn = "lenet_predict_float";
  if (!model) return bad_argument(error, error_size, fn, "model is NULL");
  if (!inputs) return bad_argument(error, error_size, fn, "inputs is NULL");
  if (!probabilities) return bad_argument(error, error_size, fn, "probabilities is NULL");
  if (count <= 0) return bad_argument(error, error_size, fn, "count must be positive, got " + std::to_string(count));
  return guarded(fn, error, error_size, [&] {
    std::lock_guard<std::mutex> lock(model->mutex);
    lenet::predict_probabilities(model->loaded.model, model->loaded.info, inputs, count, probabilities, kBatch);
    return LENET_OK;
  });
}

int lenet_predict_image(lenet_model* model, const uint8_t* pixels, int height, int width, int channels,
                        float* probabilities, char* error, size_t error_size) {
  const char* fn = "lenet_predict_image";
  if (!model) return bad_argument(error, error_size, fn, "model is NULL");
  if (!pixels) return bad_argument(error, error_size, fn, "pixels is NULL");
  if (!probabilities) return bad_argument(error, error_size, fn, "probabilities is NULL");
  if (channels < 1 || channels > 4)
    return bad_argument(error, error_size, fn, "channels must be 1 to 4, got " + std::to_string(channels));
  if (height < 1 || width < 1 || height > lenet::kMaxImageSide || width > lenet::kMaxImageSide ||
      static_cast<int64_t>(height) * width > lenet::kMaxImagePixels)
    return bad_argument(error, error_size, fn,
                        "image size " + lenet::size_text(height, width) + " is empty or too large (sides up to " +
                            std::to_string(lenet::kMaxImageSide) + ")");
  return guarded(fn, error, error_size, [&] {
    lenet::Image decoded(height, width, channels);
    std::memcpy(decoded.pixels.data(), pixels, decoded.pixels.size());
    const lenet::Image image = lenet::prepare_image(decoded, model->loaded.info.preprocessing, model->channels);
    if (image.height != model->height || image.width != model->width)
      return bad_argument(error, error_size, fn,
                          "image is " + lenet::size_text(image.height, image.width) + " (HxW) but the model takes " +
                              lenet::size_text(model->height, model->width));
    std::lock_guard<std::mutex> lock(model->mutex);
    return predict_prepared(*model, image, probabilities);
  });
}

int lenet_predict_file(lenet_model* model, const char* image_path, float* probabilities, char* error,
                       size_t error_size) {
  const char* fn = "lenet_predict_file";
  if (!model) return bad_argument(error, error_size, fn, "model is NULL");
  if (!image_path) return bad_argument(error, error_size, fn, "image_path is NULL");
  if (!*image_path) return bad_argument(error, error_size, fn, "image_path is empty");
  if (!probabilities) return bad_argument(error, error_size, fn, "probabilities is NULL");
  return guarded(fn, error, error_size, [&] {
    const lenet::ModelInfo& info = model->loaded.info;
    const lenet::Image image = lenet::image_file_for_model(image_path, info.preprocessing, info.input_shape);
    std::lock_guard<std::mutex> lock(model->mutex);
    return predict_prepared(*model, image, probabilities);
  });
}

int lenet_top_k(const float* probabilities, int num_classes, int k, int* indices, float* scores, char* error,
                size_t error_size) {
  const char* fn = "lenet_top_k";
  if (!probabilities) return bad_argument(error, error_size, fn, "probabilities is NULL");
  if (!indices) return bad_argument(error, error_size, fn, "indices is NULL");
  if (num_classes <= 0)
    return bad_argument(error, error_size, fn, "num_classes must be positive, got " + std::to_string(num_classes));
  if (k <= 0) return bad_argument(error, error_size, fn, "k must be positive, got " + std::to_string(k));
  return guarded(fn, error, error_size, [&] {
    const int n = std::min(k, num_classes);
    std::vector<int> order(static_cast<size_t>(num_classes));
    std::iota(order.begin(), order.end(), 0);
    const float* p = probabilities;
    // lenet predict's order (src/train/predict.cpp): higher first, ties to the lower index.
    std::partial_sort(order.begin(), order.begin() + n, order.end(),
                      [p](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    for (int i = 0; i < n; ++i) {
      indices[i] = order[static_cast<size_t>(i)];
      if (scores) scores[i] = p[order[static_cast<size_t>(i)]];
    }
    return LENET_OK;
  });
}

}  // extern "C"
