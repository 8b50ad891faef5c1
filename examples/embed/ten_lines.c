#include <lenet/c_api.h>
#include <stdio.h>
int main(int argc, char** argv) { /* ten_lines MODEL IMAGE (README: "Use it from C and C++") */
  char err[256]; float p[64]; int best; /* p: models of up to 64 classes */
  lenet_model* m = argc == 3 ? lenet_model_load(argv[1], err, sizeof err) : NULL;
  if (!m || lenet_predict_file(m, argv[2], p, err, sizeof err)) { fprintf(stderr, "%s\n", argc == 3 ? err : "usage: ten_lines MODEL IMAGE"); return 1; }
  lenet_top_k(p, lenet_model_num_classes(m), 1, &best, NULL, NULL, 0);
  printf("%s %.3f\n", lenet_model_class_name(m, best), p[best]);
  lenet_model_free(m);
}
