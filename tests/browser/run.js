#!/usr/bin/env node
// Loads a page that `lenet export --web` wrote in headless chromium (through
// puppeteer-core), served by `lenet serve` on 127.0.0.1, and reports what the
// page did as one JSON line; tests/test_web.cpp checks it.
//
//   node run.js LENET_BINARY PAGE_DIR SCREENSHOT.png IMAGE...
//
// Reports: the server's Content-Types (and that it refuses paths out of the
// folder), the page's status line and console errors, the probabilities the
// page shows for each IMAGE fed through its file input (read from the DOM's
// data- attributes, full precision), the results of a stroke drawn with
// synthetic mouse events, and what a browser without WebAssembly is told.
'use strict';

const { spawn } = require('child_process');
const puppeteer = require('puppeteer-core');

const CHROMIUM = process.env.LENET_CHROMIUM || '/usr/bin/chromium';

function fail(message) {
  process.stderr.write(`run.js: ${message}\n`);
  process.exit(1);
}

// Starts `lenet serve DIR --port 0` and resolves with its URL once it listens.
function startServer(lenet, dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(lenet, ['serve', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`lenet serve exited with ${code}: ${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) resolve({ child, url: m[1] });
    });
  });
}

async function serverChecks(url) {
  const types = {};
  for (const file of ['', 'index.html', 'model.onnx', 'ort.wasm.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']) {
    const r = await fetch(url + file, { method: 'HEAD' });
    types[file || '/'] = { status: r.status, type: r.headers.get('content-type') };
  }
  // fetch() would normalise "..", so the request goes out by hand.
  const escape = await new Promise((resolve) => {
    const net = require('net');
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('GET /../../etc/passwd HTTP/1.0\r\n\r\n'));
    let reply = '';
    socket.on('data', (d) => (reply += d));
    socket.on('end', () => resolve(reply.split('\r\n')[0]));
    socket.on('error', (e) => resolve(String(e)));
  });
  return { types, escape };
}

async function openPage(browser, url, consoleErrors, beforeLoad) {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 760 });
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('requestfailed', (r) => consoleErrors.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  if (beforeLoad) await page.evaluateOnNewDocument(beforeLoad);
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.getElementById('status').dataset.state !== 'loading', { timeout: 30000 });
  return page;
}

const status = (page) => page.$eval('#status', (s) => ({ state: s.dataset.state, text: s.textContent }));
const topK = (page) => page.$eval('#top-k', (l) => ({ seq: Number(l.dataset.seq), source: l.dataset.source,
  probabilities: JSON.parse(l.dataset.probabilities || 'null'), rows: l.children.length }));

async function main() {
  const [lenet, dir, screenshot, ...images] = process.argv.slice(2);
  if (!screenshot) fail('usage: run.js LENET_BINARY PAGE_DIR SCREENSHOT.png IMAGE...');
  const started = Date.now();
  const { child, url } = await startServer(lenet, dir);
  const report = { url };
  let browser;
  try {
    report.server = await serverChecks(url);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in a container: no sandbox; no GPU, small /dev/shm.
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      // Chromium's start-up took over puppeteer's default 30 s on a loaded
      // 2-core CI machine (the sanitizer stage runs tests two at a time).
      timeout: 120000,
    });
    const consoleErrors = [];
    const page = await openPage(browser, url, consoleErrors);
    report.status = await status(page);
    report.crossOriginIsolated = await page.evaluate(() => self.crossOriginIsolated);
    report.examples = await page.$$eval('#examples .item', (items) => items.map((i) => ({
      file: i.dataset.file, probabilities: JSON.parse(i.dataset.probabilities || 'null') })));
    report.initial = await topK(page);

    // The file picker, all images at once; each becomes one item, in order.
    const input = await page.$('#file-input');
    await input.uploadFile(...images);
    await page.waitForFunction((n) => {
      const items = document.querySelectorAll('#files .item');
      return items.length === n && [...items].every((i) => i.dataset.probabilities || i.dataset.error);
    }, { timeout: 30000 }, images.length);
    report.files = await page.$$eval('#files .item', (items) => items.map((i) => ({
      file: i.dataset.file, error: i.dataset.error || null, probabilities: JSON.parse(i.dataset.probabilities || 'null') })));

    // A stroke: clear the pad, then drag across it; the prediction follows the pen.
    await page.click('#clear');
    await page.waitForFunction(() => document.getElementById('top-k').dataset.source === 'drawing');
    await page.waitForFunction(() => true);
    await new Promise((r) => setTimeout(r, 200));
    const blank = await topK(page);
    const box = await (await page.$('#pad')).boundingBox();
    const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
    await page.mouse.move(...at(0.5, 0.15));
    await page.mouse.down();
    const seqs = [];
    for (let k = 1; k <= 12; ++k) {
      await page.mouse.move(...at(0.5 + 0.02 * Math.sin(k), 0.15 + 0.06 * k), { steps: 2 });
      await new Promise((r) => setTimeout(r, 30));
      seqs.push((await topK(page)).seq);
    }
    await page.mouse.up();
    await new Promise((r) => setTimeout(r, 300));
    const drawn = await topK(page);
    const padInk = await page.$eval('#pad', (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let lit = 0;
      for (let i = 0; i < d.length; i += 4) lit += d[i] > 127;
      return lit / (d.length / 4);
    });
    report.drawing = { blank, drawn, seqsDuringStroke: seqs, padInk };

    await page.screenshot({ path: screenshot, fullPage: false });
    report.consoleErrors = consoleErrors;
    await page.close();

    // Without WebAssembly the page says so instead of failing silently.
    const noWasmErrors = [];
    const bare = await openPage(browser, url, noWasmErrors, () => { delete window.WebAssembly; });
    report.noWebAssembly = await status(bare);
    await bare.close();
  } finally {
    if (browser) await browser.close();
    child.removeAllListeners('exit');
    child.kill();
  }
  report.seconds = (Date.now() - started) / 1000;
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e) => fail(e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : String(e)));
