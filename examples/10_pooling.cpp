// 10. Pooling: the maximum or the mean of each window, over each channel separately.
//
// As in PyTorch, the stride defaults to the window, so windows do not overlap.
#include "tutorial.h"

namespace lenet::examples {

PoolingExample pooling_example(std::ostream& out) {
  PoolingExample r;
  // The chapter's pool2d: 2×2 windows moving one cell at a time.
  Tensor X3 = arange({1, 1, 3, 3});
  MaxPool2d max2(Pool2dOptions(2).stride(1));
  AvgPool2d avg2(Pool2dOptions(2).stride(1));
  r.max2x2 = forward(max2, X3);
  r.avg2x2 = forward(avg2, X3);
  show(out, "X", X3);
  show(out, max2.describe(), r.max2x2);
  show(out, avg2.describe(), r.avg2x2);

  r.X = arange({1, 1, 4, 4});
  MaxPool2d window3(Pool2dOptions(3));
  MaxPool2d padded(Pool2dOptions(3).padding(1).stride(2));
  MaxPool2d oblong(Pool2dOptions(2, 3).padding(0, 1).stride(2, 3));
  r.window3 = forward(window3, r.X);
  r.window3_p1_s2 = forward(padded, r.X);
  r.window2x3 = forward(oblong, r.X);
  show(out, "X", r.X);
  show(out, window3.describe(), r.window3);
  show(out, padded.describe(), r.window3_p1_s2);
  show(out, oblong.describe(), r.window2x3);

  // Two channels in, two channels out: X and X + 1 along the channel dimension.
  Tensor X2 = stack({arange({4, 4}), arange({4, 4}, 1)}).reshaped({1, 2, 4, 4});
  r.two_channels = forward(padded, X2);
  show(out, "X2", X2);
  show(out, padded.describe() + " on X2", r.two_channels);
  return r;
}

}  // namespace lenet::examples
