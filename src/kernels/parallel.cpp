#include "lenet/parallel.h"

#include <cblas.h>
#include <omp.h>

namespace lenet {

namespace {
// OpenBLAS is called from inside our own parallel regions on per-sample
// matrices; its own threads would only oversubscribe the cores.
struct BlasSingleThreaded {
  BlasSingleThreaded() { openblas_set_num_threads(1); }
} blas_single_threaded;
int threads = 0;
}  // namespace

void set_num_threads(int n) {
  threads = n > 0 ? n : omp_get_num_procs();
  omp_set_num_threads(threads);
}

int num_threads() { return threads > 0 ? threads : omp_get_max_threads(); }

}  // namespace lenet
