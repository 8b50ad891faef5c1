// include/lenet/lenet.h alone is enough to use the library: build a model,
// save it as a checkpoint and as ONNX, load both back and predict the same.
#include "lenet/lenet.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data_test_util.h"

namespace lenet {
namespace {

TEST(PublicApi, OneIncludeBuildsSavesLoadsAndPredicts) {
  test::ScratchDir dir("public-api");
  Rng rng(11);
  Sequential model = build_model("lenet-relu", {1, 28, 28}, 3, &rng);
  ModelInfo info;
  info.arch = model.spec();
  info.input_shape = {1, 28, 28};
  info.class_names = {"a", "b", "c"};
  save_checkpoint(dir / "m.safetensors", model, info);
  export_onnx(dir / "m.onnx", model, info);

  std::vector<Image> images;
  for (int i = 0; i < 4; ++i) {
    Image img(28, 28, 1);
    for (size_t p = 0; p < img.pixels.size(); ++p) img.pixels[p] = static_cast<uint8_t>((p * (7 + i)) % 251);
    images.push_back(img);
  }
  const std::vector<Prediction> direct = predict_images(model, info, images, 3);
  for (const char* file : {"m.safetensors", "m.onnx"}) {
    LoadedModel loaded = load_model(dir / file);
    EXPECT_EQ(loaded.info.class_names, info.class_names) << file;
    const std::vector<Prediction> again = predict_images(loaded.model, loaded.info, images, 3);
    ASSERT_EQ(again.size(), direct.size()) << file;
    for (size_t i = 0; i < direct.size(); ++i) {
      ASSERT_EQ(again[i].top.size(), 3u);
      for (size_t k = 0; k < 3; ++k) {
        EXPECT_EQ(again[i].top[k].index, direct[i].top[k].index) << file << " image " << i;
        EXPECT_NEAR(again[i].top[k].probability, direct[i].top[k].probability, 1e-6) << file << " image " << i;
      }
    }
  }
}

}  // namespace
}  // namespace lenet
