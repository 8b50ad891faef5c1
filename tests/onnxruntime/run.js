#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (CPU) on raw float32 inputs, so the tests
// can compare another runtime's logits with lenet.cpp's.
//
//   node run.js MODEL.onnx INPUT.f32 NxCxHxW OUTPUT.f32 [INPUT.f32 NxCxHxW OUTPUT.f32 ...]
//
// Each INPUT is raw little-endian float32 of the given shape; each OUTPUT gets
// the model's first output as raw float32. Prints one JSON line describing the
// session (input/output names, each result's dims) for the caller to check.
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

function fail(message) {
  process.stderr.write(`run.js: ${message}\n`);
  process.exit(1);
}

function parseShape(text) {
  const dims = text.split('x').map(Number);
  if (dims.length < 1 || dims.some((d) => !Number.isInteger(d) || d < 1)) fail(`'${text}' is not a shape like 8x1x28x28`);
  return dims;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 4 || (args.length - 1) % 3 !== 0) fail('usage: run.js MODEL.onnx INPUT.f32 NxCxHxW OUTPUT.f32 [...]');
  const session = await ort.InferenceSession.create(args[0], {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
  });
  const report = { inputNames: session.inputNames, outputNames: session.outputNames, results: [] };
  for (let i = 1; i < args.length; i += 3) {
    const [inputPath, shapeText, outputPath] = args.slice(i, i + 3);
    const dims = parseShape(shapeText);
    const bytes = fs.readFileSync(inputPath);
    const count = dims.reduce((a, b) => a * b, 1);
    if (bytes.length !== count * 4) fail(`${inputPath} holds ${bytes.length} bytes, shape ${shapeText} needs ${count * 4}`);
    // Copy into an aligned Float32Array (a Buffer's offset need not be a multiple of 4).
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
    const outputs = await session.run(feeds);
    const y = outputs[session.outputNames[0]];
    fs.writeFileSync(outputPath, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    report.results.push({ output: outputPath, dims: y.dims, type: y.type });
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e) => fail(e.message.split('\n')[0]));
