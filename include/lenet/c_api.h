/* The C API of lenet.cpp (C99 and C++): load a trained model (.safetensors
 * checkpoint or .onnx, whatever `lenet predict --model` takes) and classify
 * images with it, the same numbers `lenet predict` prints.
 *
 *   char err[256];
 *   lenet_model* m = lenet_model_load("model.safetensors", err, sizeof err);
 *   if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *   float* p = malloc(sizeof(float) * lenet_model_num_classes(m));
 *   if (lenet_predict_file(m, "shoe.png", p, err, sizeof err)) fprintf(stderr, "%s\n", err);
 *   lenet_model_free(m);
 *
 * Errors: a function that can fail returns 0 (LENET_OK) on success and one of
 * the non-zero lenet_status codes otherwise, with one sentence naming the file
 * or the argument in `error` (NUL-terminated, cut to error_size − 1 bytes;
 * error may be NULL or error_size 0 when the message is not wanted). No
 * function throws, aborts or exits: a NULL pointer, a count <= 0, an image of
 * another size or a corrupt file is an error code.
 *
 * Threads: every function may be called from any thread. Several models may
 * be used from several threads at once; calls on one model are serialised
 * (each model holds a lock), so sharing one model between threads is safe but
 * runs one call at a time — give each thread its own model for throughput.
 * The kernels of concurrent calls share the library's one thread pool
 * (lenet_set_threads) and take turns on it; a call's results never depend on
 * the thread count or on other calls.
 */
#ifndef LENET_C_API_H
#define LENET_C_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LENET_API __attribute__((visibility("default")))
#else
#define LENET_API
#endif

typedef struct lenet_model lenet_model;

typedef enum lenet_status {
  LENET_OK = 0,
  LENET_ERROR_ARGUMENT = 1, /* NULL pointer, count <= 0, index out of range, image of another size */
  LENET_ERROR_FILE = 2,     /* missing, unreadable, truncated or corrupt file */
  LENET_ERROR_RUNTIME = 3   /* anything else (out of memory, a model the engine cannot run) */
} lenet_status;

/* "0.1.0": the library's version (lenet/version.h has it for the compiler). */
LENET_API const char* lenet_version(void);
/* The kernels in use: "avx512", "avx2", "baseline" (x86-64) or "generic". */
LENET_API const char* lenet_kernels(void);

/* Threads the kernels use: 0 means all the CPUs this process may run on (the
 * default). Returns LENET_ERROR_ARGUMENT (and changes nothing) for threads < 0. */
LENET_API int lenet_set_threads(int threads);

/* A .safetensors checkpoint or an ONNX file, told apart by content. NULL on
 * failure, with the file and the problem in `error`. */
LENET_API lenet_model* lenet_model_load(const char* path, char* error, size_t error_size);
/* NULL is allowed (nothing happens). */
LENET_API void lenet_model_free(lenet_model* model);

/* The input every image must have (after the model's own resize, if any):
 * channels (1 gray, 3 RGB), height, width. Any of the three out-pointers may
 * be NULL. Returns LENET_ERROR_ARGUMENT for a NULL model. */
LENET_API int lenet_model_input_shape(const lenet_model* model, int* channels, int* height, int* width);
/* The class count (the length of one probability row); -1 for a NULL model. */
LENET_API int lenet_model_num_classes(const lenet_model* model);
/* Class `index`'s name (owned by the model, valid until lenet_model_free);
 * NULL for a NULL model or an index outside [0, num_classes). */
LENET_API const char* lenet_model_class_name(const lenet_model* model, int index);

/* `count` images of exactly the model's input shape, 8-bit, each stored
 * channel-major (all of channel 0 row by row, then channel 1, ...: [C][H][W]),
 * one after another. The model's own preprocessing (scaling to [0, 1] and its
 * normalisation) is applied. Writes count × num_classes softmax probabilities,
 * row by row. */
LENET_API int lenet_predict_u8(lenet_model* model, const uint8_t* pixels, int count, float* probabilities, char* error,
                               size_t error_size);
/* The same from float inputs [count][C][H][W] that are already scaled and
 * normalised (what the model's first layer sees). */
LENET_API int lenet_predict_float(lenet_model* model, const float* inputs, int count, float* probabilities, char* error,
                                  size_t error_size);
/* One decoded 8-bit image of any supported layout, channels interleaved
 * (pixel (y, x) channel c at pixels[(y * width + x) * channels + c];
 * channels 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA), prepared exactly as
 * lenet predict prepares a file: converted to the model's channels, resized
 * when the checkpoint says so; another size is an error. Writes num_classes
 * probabilities. */
LENET_API int lenet_predict_image(lenet_model* model, const uint8_t* pixels, int height, int width, int channels,
                                  float* probabilities, char* error, size_t error_size);
/* An image file (PNG, JPEG, BMP, PGM/PPM), prepared as above. Writes
 * num_classes probabilities. */
LENET_API int lenet_predict_file(lenet_model* model, const char* image_path, float* probabilities, char* error,
                                 size_t error_size);

/* The k best of one probability row of num_classes entries (k is clamped to
 * num_classes): indices[0] is the most probable class; ties go to the lower
 * index (lenet predict's order). `scores` (may be NULL) receives their
 * probabilities. */
LENET_API int lenet_top_k(const float* probabilities, int num_classes, int k, int* indices, float* scores, char* error,
                          size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* LENET_C_API_H */
