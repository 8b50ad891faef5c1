// ONNX Runtime peer for bench/compare.py, through the npm package
// onnxruntime-node (bench/onnxruntime/package.json): the lenet-max that
// peers/pytorch_lenet.py exported, on the Fashion-MNIST test set.
//   node onnxruntime_lenet.js infer|latency THREADS DATA_DIR MODEL.onnx
// prints one JSON object on stdout. Times include the node binding's per-call
// overhead (about 10 µs): the figures for ONNX Runtime were taken the
// same way.
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
// bench/onnxruntime's copy (bench/setup-peers.sh), else the tests' (scripts/setup.sh).
const ortDir = [path.join(__dirname, '..', 'onnxruntime', 'node_modules', 'onnxruntime-node'),
  path.join(__dirname, '..', '..', 'tests', 'onnxruntime', 'node_modules', 'onnxruntime-node')].find((d) => fs.existsSync(d));
const ort = require(ortDir);

function readImages(file) {
  const data = zlib.gunzipSync(fs.readFileSync(file));
  const count = data.readUInt32BE(4), rows = data.readUInt32BE(8), cols = data.readUInt32BE(12);
  const pixels = new Float32Array(count * rows * cols);
  for (let i = 0; i < pixels.length; ++i) pixels[i] = data[16 + i] / 255;  // ToTensor: [0, 1]
  return { count, pixels };
}

async function main() {
  const [mode, threadArg, dataDir, modelPath] = process.argv.slice(2);
  const threads = Number(threadArg);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const test = readImages(path.join(dataDir, 't10k-images-idx3-ubyte.gz'));
  const out = { peer: 'onnxruntime', mode, threads, version: require(path.join(ortDir, 'package.json')).version };
  const run = (start, n) => {
    const input = new ort.Tensor('float32', test.pixels.subarray(start * 784, (start + n) * 784), [n, 1, 28, 28]);
    return session.run({ input });
  };
  if (mode === 'infer') {
    let best = Infinity;
    for (let rep = 0; rep < 6; ++rep) {  // the first pass warms up
      const t0 = process.hrtime.bigint();
      for (let b = 0; b < test.count; b += 256) await run(b, Math.min(256, test.count - b));
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (rep) best = Math.min(best, s);
    }
    out.seconds = best;
    out.images_per_s = test.count / best;
  } else if (mode === 'latency') {
    const us = [];
    for (let i = 0; i < 3000; ++i) {
      const t0 = process.hrtime.bigint();
      await run(i % test.count, 1);
      us.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    const steady = us.slice(500).sort((a, b) => a - b);
    out.median_us = steady[steady.length >> 1];
  } else {
    throw new Error(`unknown mode '${mode}' (infer or latency)`);
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`onnxruntime_lenet: ${e.message}`);
  process.exit(1);
});
