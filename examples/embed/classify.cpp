// Classifies image files with a trained lenet.cpp model through the C++ API
// (target lenet::lenet of find_package(lenet)), printing the same JSON lines
// as classify.c and `lenet predict --json --top-k 3`.
#include <lenet/checkpoint.h>
#include <lenet/image.h>
#include <lenet/predict.h>

#include <cstdio>
#include <exception>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    lenet::LoadedModel loaded = lenet::load_model(argv[1]);
    const lenet::ModelInfo& info = loaded.info;
    std::vector<lenet::Image> images;
    for (int i = 2; i < argc; ++i)
      images.push_back(lenet::image_file_for_model(argv[i], info.preprocessing, info.input_shape));
    // One image per call, as classify.c does (lenet_predict_file).
    for (size_t i = 0; i < images.size(); ++i) {
      const lenet::Prediction p = lenet::predict_images(loaded.model, info, {images[i]}, 3).front();
      std::printf("{\"file\":\"%s\",\"index\":%d,\"label\":\"%s\",\"probability\":%.9g,\"top_k\":[", argv[i + 2],
                  p.index(), info.class_names[static_cast<size_t>(p.index())].c_str(),
                  static_cast<double>(p.probability()));
      for (size_t j = 0; j < p.top.size(); ++j)
        std::printf("%s{\"index\":%d,\"label\":\"%s\",\"probability\":%.9g}", j ? "," : "", p.top[j].index,
                    info.class_names[static_cast<size_t>(p.top[j].index)].c_str(),
                    static_cast<double>(p.top[j].probability));
      std::printf("]}\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify_cpp: %s\n", e.what());
    return 1;
  }
  return 0;
}
