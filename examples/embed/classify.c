/* Classifies image files with a trained lenet.cpp model through the C API,
 * printing one JSON object per image, the shape of `lenet predict --json
 * --top-k 3`'s lines.
 *   cc classify.c $(pkg-config --cflags --libs lenet) -o classify
 *   ./classify model.safetensors shoe.png shirt.jpg */
#include <lenet/c_api.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL IMAGE...\n", argv[0]);
    return 2;
  }
  char error[512];
  lenet_model* model = lenet_model_load(argv[1], error, sizeof error);
  if (!model) {
    fprintf(stderr, "classify: %s\n", error);
    return 1;
  }
  const int classes = lenet_model_num_classes(model);
  float* probabilities = malloc(sizeof(float) * (size_t)classes);
  int status = probabilities ? 0 : 1;
  for (int i = 2; i < argc && probabilities; ++i) {
    if (lenet_predict_file(model, argv[i], probabilities, error, sizeof error) != LENET_OK) {
      fprintf(stderr, "classify: %s\n", error);
      status = 1;
      continue;
    }
    int top[3];
    float score[3];
    const int k = classes < 3 ? classes : 3;
    lenet_top_k(probabilities, classes, k, top, score, NULL, 0);
    printf("{\"file\":\"%s\",\"index\":%d,\"label\":\"%s\",\"probability\":%.9g,\"top_k\":[", argv[i], top[0],
           lenet_model_class_name(model, top[0]), (double)score[0]);
    for (int j = 0; j < k; ++j)
      printf("%s{\"index\":%d,\"label\":\"%s\",\"probability\":%.9g}", j ? "," : "", top[j],
             lenet_model_class_name(model, top[j]), (double)score[j]);
    printf("]}\n");
  }
  free(probabilities);
  lenet_model_free(model);
  return status;
}
