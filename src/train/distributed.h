// The trainer's side of the process group (include/lenet/distributed.h): sums
// over every rank, in place. The only MPI calls are in distributed.cpp; with
// one process these return at once.
#pragma once

#include <cstdint>
#include <span>

#include "lenet/distributed.h"
#include "lenet/train.h"

namespace lenet::distributed {

// Element-wise sum over the ranks, in place, the same on every rank. `what`
// names the collective in the message when a rank does not answer within
// timeout_seconds() (then every rank is aborted) or MPI fails.
void sum(std::span<float> values, const char* what);
void sum(std::span<double> values, const char* what);
void sum(std::span<int64_t> values, const char* what);

}  // namespace lenet::distributed

namespace lenet {
// evaluate() sharded over the ranks (rank r takes the r-th contiguous share of
// the images, so none counts twice), its sums and confusion matrix added up:
// every rank returns the whole set's evaluation. evaluate.cpp.
Evaluation evaluate_on_all_ranks(Sequential& model, const Dataset& data, const Normalization& norm);

}  // namespace lenet
