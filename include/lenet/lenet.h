// The whole public API in one include.
#pragma once

#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"
#include "lenet/random.h"
#include "lenet/tensor.h"
