// Prediction: a trained model on images prepared the way training saw them
// (image_file_for_model), returning the top classes with softmax probabilities.
#pragma once

#include <vector>

#include "lenet/checkpoint.h"
#include "lenet/image.h"

namespace lenet {

struct ClassScore {
  int index = 0;
  float probability = 0;
};

struct Prediction {
  std::vector<ClassScore> top;  // best first; ties go to the lower class index
  int index() const { return top.front().index; }
  float probability() const { return top.front().probability; }
};

// Runs the model in batches of `batch_size`. Every image must have the model's
// input shape (info.input_shape, channels included); throws
// std::invalid_argument naming the image's position otherwise.
std::vector<Prediction> predict_images(Sequential& model, const ModelInfo& info, const std::vector<Image>& images,
                                       int top_k, int batch_size = 256);

// The softmax probabilities [count, classes] of `count` inputs [count, C, H, W]
// that are already scaled and normalised, run in batches of `batch_size` as
// predict_images runs them (so the numbers are the same). Throws
// std::invalid_argument when the model's outputs do not match its class names.
void predict_probabilities(Sequential& model, const ModelInfo& info, const float* inputs, int64_t count,
                           float* probabilities, int batch_size = 256);

}  // namespace lenet
