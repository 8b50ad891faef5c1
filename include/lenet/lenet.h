// Every public header in one include: the library's whole public API
// (tests/test_public_api.cpp uses nothing else).
#pragma once

#include "lenet/checkpoint.h"
#include "lenet/data.h"
#include "lenet/fileio.h"
#include "lenet/gallery.h"
#include "lenet/image.h"
#include "lenet/kernels.h"
#include "lenet/nn.h"
#include "lenet/onnx.h"
#include "lenet/optim.h"
#include "lenet/parallel.h"
#include "lenet/predict.h"
#include "lenet/random.h"
#include "lenet/report.h"
#include "lenet/tensor.h"
#include "lenet/train.h"
