// index.html of `lenet export --web`: one file with its style and script.
// web_page.cpp replaces the @CONFIG@ line with the model's metadata (JSON);
// everything the page does is read from there.
//
// The preprocessing repeats src/io/image.cpp step by step: the browser decodes
// the file to RGBA, then grayscale by OpenCV's fixed-point luma (or RGB
// planes), bilinear resize with pixel centres aligned (computed in double,
// rounded as image.cpp rounds), then (p / 255 - mean) / std in float32. The
// drawing pad is an integer multiple of the model's input size and is
// averaged back down to it block by block.
#include <string_view>

namespace lenet::web {

extern const std::string_view kPageTemplate;

const std::string_view kPageTemplate = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lenet.cpp model</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; }
.muted { color: #666; font-size: 0.9em; }
#status { padding: 0.4em 0.6em; background: #eef; border-radius: 4px; }
#status.error { background: #fdd; color: #900; }
main { display: flex; flex-wrap: wrap; gap: 2em; margin-top: 1em; }
#draw-panel { width: 282px; max-width: 82vw; }
#pad { width: 280px; max-width: 80vw; image-rendering: pixelated; border: 1px solid #888; touch-action: none; cursor: crosshair; }
#draw-panel.dragging #pad { outline: 4px dashed #36c; }
#result-panel { flex: 1; min-width: 16em; }
#top-k { list-style: none; padding: 0; }
#top-k li { display: grid; grid-template-columns: 9em 1fr 4.5em; gap: 0.5em; align-items: center; margin: 0.3em 0; }
.bar { height: 1.1em; background: #ddd; border-radius: 3px; overflow: hidden; }
.bar span { display: block; height: 100%; background: #36c; }
#top-k li:first-child .bar span { background: #2a2; }
.pct { text-align: right; font-variant-numeric: tabular-nums; }
.strip { display: flex; flex-wrap: wrap; gap: 0.6em; }
.item { border: 1px solid #ccc; border-radius: 4px; padding: 0.3em; text-align: center; font-size: 0.8em; cursor: pointer; background: #fff; width: 8em; overflow: hidden; }
.item canvas, .item img { width: 56px; height: 56px; image-rendering: pixelated; display: block; margin: 0 auto 0.2em; }
.item.wrong .guess { color: #c00; }
.item.error { border-color: #c00; color: #c00; cursor: default; }
.item .name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
button, .file { font: inherit; padding: 0.3em 0.8em; border: 1px solid #888; border-radius: 4px; background: #f6f6f6; cursor: pointer; display: inline-block; }
.file input { display: none; }
</style>
</head>
<body>
<h1 id="title">lenet.cpp model</h1>
<p id="subtitle" class="muted"></p>
<p id="status" role="status" data-state="loading">Loading the model…</p>
<main>
  <section id="draw-panel">
    <canvas id="pad" width="280" height="280" aria-label="drawing pad"></canvas>
    <p>
      <button id="clear" type="button">Clear</button>
      <label class="file">Choose images… <input id="file-input" type="file" accept="image/*" multiple></label>
    </p>
    <p class="muted" id="pad-hint">Draw with the mouse or a finger, or drop image files on the page.</p>
  </section>
  <section id="result-panel">
    <h2>Prediction <span id="source" class="muted"></span></h2>
    <ol id="top-k" data-seq="0"></ol>
    <p id="note" class="muted"></p>
  </section>
</main>
<section>
  <h2>Test images</h2>
  <div id="examples" class="strip"></div>
  <p id="examples-note" class="muted"></p>
</section>
<section id="files-panel" hidden>
  <h2>Your images</h2>
  <div id="files" class="strip"></div>
</section>
<p class="muted" id="footer"></p>
<script id="model-config" type="application/json">
@CONFIG@
</script>
<script src="ort.wasm.min.js"></script>
<script>
'use strict';
(function () {
  const config = JSON.parse(document.getElementById('model-config').textContent);
  const [C, H, W] = config.input_shape;
  const classes = config.class_names;
  const pre = config.preprocessing;
  // One mean/std for every channel, or one per channel (a list).
  const means = [].concat(pre.normalization.mean).map(Math.fround);
  const stds = [].concat(pre.normalization.std).map(Math.fround);
  const invStds = stds.map((s) => Math.fround(1 / s));
  const normalized = means.some((m) => m !== 0) || stds.some((s) => s !== 1);
  const $ = (id) => document.getElementById(id);
  const statusLine = $('status');

  function say(text, state) {
    statusLine.textContent = text;
    statusLine.dataset.state = state;
    statusLine.className = state === 'error' ? 'error' : '';
  }

  $('title').textContent = config.title;
  document.title = config.title;
  $('subtitle').textContent = config.subtitle;
  $('footer').textContent = 'Written by lenet.cpp (lenet export --web). The model runs in this browser with ' +
    'onnxruntime-web ' + config.ort_version + ' (WebAssembly, one thread); nothing is sent anywhere.';

  // ---- preprocessing: src/io/image.cpp, step by step ----

  // RGBA bytes → the model's channels, interleaved: luma (OpenCV's fixed point) or RGB.
  function channelsOf(rgba, h, w) {
    const n = h * w;
    const out = new Uint8Array(n * C);
    for (let i = 0; i < n; ++i) {
      const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
      if (C === 1) out[i] = (4899 * r + 9617 * g + 1868 * b + 8192) >> 14;
      else out[3 * i] = r, out[3 * i + 1] = g, out[3 * i + 2] = b;
    }
    return { h, w, pixels: out };
  }

  // Source index pairs and weights along one axis (align_corners=False).
  function taps(size, outSize) {
    const lo = new Int32Array(outSize), hi = new Int32Array(outSize), wHi = new Float64Array(outSize);
    const scale = size / outSize;
    for (let d = 0; d < outSize; ++d) {
      const src = Math.max((d + 0.5) * scale - 0.5, 0);
      const l = Math.min(Math.trunc(src), size - 1);
      lo[d] = l;
      hi[d] = Math.min(l + 1, size - 1);
      wHi[d] = src - l;
    }
    return { lo, hi, wHi };
  }

  function resizeBilinear(img, outH, outW) {
    if (img.h === outH && img.w === outW) return img;
    const ty = taps(img.h, outH), tx = taps(img.w, outW);
    const out = new Uint8Array(outH * outW * C);
    const p = img.pixels;
    for (let c = 0; c < C; ++c)
      for (let y = 0; y < outH; ++y) {
        const r0 = ty.lo[y] * img.w, r1 = ty.hi[y] * img.w, wy = ty.wHi[y];
        for (let x = 0; x < outW; ++x) {
          const wx = tx.wHi[x], a = tx.lo[x], b = tx.hi[x];
          const top = (1 - wx) * p[(r0 + a) * C + c] + wx * p[(r0 + b) * C + c];
          const bottom = (1 - wx) * p[(r1 + a) * C + c] + wx * p[(r1 + b) * C + c];
          const v = Math.fround((1 - wy) * top + wy * bottom);  // image.cpp keeps a float
          out[(y * outW + x) * C + c] = Math.min(255, Math.max(0, Math.floor(Math.fround(v + 0.5))));
        }
      }
    return { h: outH, w: outW, pixels: out };
  }

  // Decoded RGBA → the model's pixels; `note` says what was done beyond the stored preprocessing.
  function prepare(rgba, h, w) {
    let img = channelsOf(rgba, h, w);
    const [rh, rw] = pre.resize;
    if (rh > 0 && rw > 0) img = resizeBilinear(img, rh, rw);
    let note = '';
    if (img.h !== H || img.w !== W) {
      note = 'resized from ' + img.h + 'x' + img.w + ' to ' + H + 'x' + W + ' (as lenet predict --resize)';
      img = resizeBilinear(img, H, W);
    }
    return { img, note };
  }

  // Planar [C, H, W] float32, as pixels_to_floats (src/data/loader.cpp).
  function toInput(img) {
    const n = H * W, x = new Float32Array(C * n);
    for (let c = 0; c < C; ++c)
      for (let i = 0; i < n; ++i) {
        const v = Math.fround(img.pixels[i * C + c] / 255);
        const k = means.length > 1 ? c : 0;
        x[c * n + i] = normalized ? Math.fround(Math.fround(v - means[k]) * invStds[k]) : v;
      }
    return x;
  }

  function softmax(logits) {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    const e = Array.from(logits, (v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }

  // The image file's RGBA as the browser decodes it, without colour management.
  async function decode(blob) {
    const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width, canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    return { rgba: ctx.getImageData(0, 0, canvas.width, canvas.height).data, h: canvas.height, w: canvas.width };
  }

  // ---- the model ----

  let session = null;
  let queue = Promise.resolve();
  // Runs are queued: a session runs one input at a time.
  function classify(img) {
    const run = queue.then(async () => {
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', toInput(img), [1, C, H, W]) };
      const out = await session.run(feeds);
      return softmax(out[session.outputNames[0]].data);
    });
    queue = run.catch(() => {});
    return run;
  }

  function ranked(probs) {
    return probs.map((p, i) => ({ i, p })).sort((a, b) => b.p - a.p || a.i - b.i);
  }
  const pct = (p) => (100 * p).toFixed(1) + '%';

  let seq = 0;
  function showResult(probs, source, note) {
    const list = $('top-k');
    list.replaceChildren();
    for (const { i, p } of ranked(probs).slice(0, Math.min(config.top_k, classes.length))) {
      const li = document.createElement('li');
      li.dataset.index = i;
      li.dataset.probability = String(p);
      const name = document.createElement('span');
      name.textContent = classes[i];
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = (100 * p).toFixed(2) + '%';
      bar.append(fill);
      const value = document.createElement('span');
      value.className = 'pct';
      value.textContent = pct(p);
      li.append(name, bar, value);
      list.append(li);
    }
    list.dataset.probabilities = JSON.stringify(probs);
    list.dataset.source = source;
    list.dataset.seq = String(++seq);
    $('source').textContent = '(' + source + ')';
    $('note').textContent = note || '';
  }

  // ---- the drawing pad: the model's input size times `scale` ----

  const pad = $('pad');
  const scale = Math.max(1, Math.round(280 / Math.max(H, W)));
  pad.width = W * scale, pad.height = H * scale;
  const padCtx = pad.getContext('2d', { willReadFrequently: true });
  const ink = config.background === 'light' ? '#000' : '#fff';
  const paper = config.background === 'light' ? '#fff' : '#000';
  $('pad-hint').textContent = 'Draw (' + (config.background === 'light' ? 'black on white' : 'white on black') +
    ', as the training images) with the mouse or a finger, or drop image files on the page.';

  function clearPad() {
    padCtx.fillStyle = paper;
    padCtx.fillRect(0, 0, pad.width, pad.height);
  }

  // Shows prepared pixels on the pad, each as a scale x scale block.
  function showOnPad(img) {
    const small = document.createElement('canvas');
    small.width = W, small.height = H;
    drawPixels(small, img);
    padCtx.imageSmoothingEnabled = false;
    padCtx.drawImage(small, 0, 0, pad.width, pad.height);
  }

  function drawPixels(canvas, img) {
    const ctx = canvas.getContext('2d');
    const data = ctx.createImageData(img.w, img.h);
    for (let i = 0; i < img.w * img.h; ++i) {
      for (let k = 0; k < 3; ++k) data.data[4 * i + k] = img.pixels[i * C + (C === 3 ? k : 0)];
      data.data[4 * i + 3] = 255;
    }
    ctx.putImageData(data, 0, 0);
  }

  // The pad averaged back to the model's size, block by block.
  function padInput() {
    const rgba = padCtx.getImageData(0, 0, pad.width, pad.height).data;
    const small = new Uint8ClampedArray(H * W * 4);
    const area = scale * scale;
    for (let y = 0; y < H; ++y)
      for (let x = 0; x < W; ++x)
        for (let k = 0; k < 4; ++k) {
          let sum = 0;
          for (let dy = 0; dy < scale; ++dy)
            for (let dx = 0; dx < scale; ++dx) sum += rgba[(((y * scale + dy) * pad.width) + x * scale + dx) * 4 + k];
          small[(y * W + x) * 4 + k] = Math.round(sum / area);
        }
    return prepare(small, H, W).img;
  }

  let drawing = false, pending = false, busy = false, last = null;
  async function classifyPad() {
    if (!session) return;
    if (busy) { pending = true; return; }
    busy = true;
    try {
      do {
        pending = false;
        showResult(await classify(padInput()), 'drawing');
      } while (pending);
    } catch (e) {
      say('The model failed: ' + e.message, 'error');
    } finally {
      busy = false;
    }
  }

  function point(e) {
    const r = pad.getBoundingClientRect();
    return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
  }
  function stroke(to) {
    padCtx.strokeStyle = ink;
    padCtx.fillStyle = ink;
    padCtx.lineWidth = scale * Math.max(1, Math.min(H, W) / 11);
    padCtx.lineCap = 'round';
    padCtx.lineJoin = 'round';
    padCtx.beginPath();
    padCtx.moveTo(last.x, last.y);
    padCtx.lineTo(to.x, to.y);
    padCtx.stroke();
    last = to;
    classifyPad();
  }
  // Pointer events cover mouse, touch and pen alike.
  pad.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    drawing = true;
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    stroke(last);
  });
  pad.addEventListener('pointermove', (e) => { if (drawing) stroke(point(e)); });
  const stop = () => { drawing = false; };
  pad.addEventListener('pointerup', stop);
  pad.addEventListener('pointercancel', stop);
  $('clear').addEventListener('click', () => { clearPad(); classifyPad(); });

  // ---- images: examples, the file picker, dropped files ----

  function thumbnail(img) {
    const c = document.createElement('canvas');
    c.width = img.w, c.height = img.h;
    drawPixels(c, img);
    return c;
  }

  async function addFileItem(strip, name, blob, truth) {
    const item = document.createElement('div');
    item.className = 'item';
    item.dataset.file = name;
    strip.append(item);
    try {
      const decoded = await decode(blob);
      const { img, note } = prepare(decoded.rgba, decoded.h, decoded.w);
      const probs = await classify(img);
      const best = ranked(probs)[0];
      const caption = document.createElement('div');
      caption.className = 'guess';
      caption.textContent = classes[best.i] + ' ' + pct(best.p);
      const label = document.createElement('div');
      label.className = 'name';
      label.textContent = truth !== undefined ? 'true: ' + truth : name;
      label.title = name;
      item.append(thumbnail(img), caption, label);
      if (truth !== undefined && classes[best.i] !== truth) item.classList.add('wrong');
      item.dataset.probabilities = JSON.stringify(probs);
      const select = () => {
        showOnPad(img);
        showResult(probs, name, note);
      };
      item.addEventListener('click', select);
      return select;
    } catch (e) {
      item.classList.add('error');
      item.dataset.error = name + ': ' + (e && e.message ? e.message : 'not an image the browser can decode');
      item.textContent = item.dataset.error;
      return null;
    }
  }

  async function addFiles(files) {
    if (!session || files.length === 0) return;
    $('files-panel').hidden = false;
    let first = null;
    for (const file of files) {
      const select = await addFileItem($('files'), file.name, file);
      first = first || select;
    }
    if (first) first();
  }

  $('file-input').addEventListener('change', (e) => addFiles(Array.from(e.target.files)));
  const panel = $('draw-panel');
  document.addEventListener('dragover', (e) => { e.preventDefault(); panel.classList.add('dragging'); });
  document.addEventListener('dragleave', () => panel.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    panel.classList.remove('dragging');
    addFiles(Array.from(e.dataTransfer.files).filter((f) => f.type.startsWith('image/') || f.type === ''));
  });

  async function showExamples() {
    $('examples-note').textContent = config.examples_note;
    let first = null;
    for (const [k, ex] of config.examples.entries()) {
      const blob = await (await fetch(ex.png)).blob();
      const select = await addFileItem($('examples'), 'test image ' + (k + 1) + ' (' + ex.label + ')', blob, ex.label);
      first = first || select;
    }
    if (first) first();
  }

  // ---- start ----

  async function start() {
    clearPad();
    if (location.protocol === 'file:') {
      say('Browsers do not run WebAssembly from file:// pages. Serve this folder: lenet serve ' +
          'FOLDER (or python3 -m http.server --bind 127.0.0.1), then open http://127.0.0.1:8000/', 'error');
      return;
    }
    if (typeof WebAssembly !== 'object' || typeof WebAssembly.instantiate !== 'function') {
      say('This browser cannot run WebAssembly (it is missing or turned off), so the model cannot run here.', 'error');
      return;
    }
    if (typeof ort !== 'object') {
      say('ort.wasm.min.js (onnxruntime-web) did not load: is it in this folder?', 'error');
      return;
    }
    // One thread: no SharedArrayBuffer workers, so no cross-origin isolation is needed.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = new URL('./', location.href).href;
    try {
      session = await ort.InferenceSession.create(config.model, { executionProviders: ['wasm'] });
    } catch (e) {
      say('Could not load ' + config.model + ' in onnxruntime-web: ' + e.message, 'error');
      return;
    }
    await showExamples();
    say('Ready: draw on the pad, choose or drop an image, or click a test image.', 'ready');
  }
  start();
})();
</script>
</body>
</html>
)page";

}  // namespace lenet::web
