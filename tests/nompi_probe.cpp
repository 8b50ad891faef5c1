// `lenet`'s start-up (apps/lenet/main.cpp) with the no-MPI build of
// src/train/distributed.cpp: under mpirun it must refuse, rank 0 saying why.
#include <cstdio>
#include <exception>

#include "lenet/distributed.h"

int main(int argc, char** argv) {
  try {
    lenet::distributed::start(argc, argv);
  } catch (const std::exception& e) {
    if (lenet::distributed::launcher_rank() == 0) std::fprintf(stderr, "lenet: error: %s\n", e.what());
    return 1;
  }
  lenet::distributed::finish();
  return 0;
}
