// playground.js: the playground page (book/playground.md), the course's models in the reader's browser.
//
// The page's HTML holds the controls; this module loads what they need and wires them up:
// models.json (the manifest the Sphinx extension writes, llmscratch_book/playground.py) says which
// models there are; the tokenizer and the first model load when the page opens, the others only
// when the reader picks them. Everything is computed here, by the engine beside this file
// (bpe.js, gpt.js, sampling.js): nothing is sent anywhere.
//
// What the page shows is also left in data attributes (see views.js), and the page's state on
// its root element: data-state ("loading", "ready", "error"), data-analysis ("pending" while a
// prompt waits to be read, "done"), data-model. tools/playground_check.py drives the page through
// its controls and reads those.

import { BPETokenizer } from "./bpe.js";
import { createCache, forward, makeModel, readExport } from "./gpt.js";
import { nextTokenProbs, stream } from "./sampling.js";
import { appendTokens, drawAttention, drawBars, drawTokens } from "./views.js";

const $ = (id) => document.getElementById(id);
const root = document.querySelector(".llmscratch-playground");
const megabytes = (n) => `${(n / 1e6).toFixed(1)} MB`;

const page = {
  manifest: null,
  tokenizer: null,
  models: new Map(),  // key -> a promise of the model, so each file is fetched once
  entry: null,  // the manifest entry of the model in use
  model: null,
  analysis: null,  // what the model made of the prompt: see analyse
  busy: null,  // the generation or comparison running, which Stop ends
};

function status(text) {
  $("pg-status").textContent = text;
}

// A file beside this module; ?v= changes when the file does, so a browser never keeps an old one.
const here = (file, digest) => new URL(`${file}?v=${digest}`, import.meta.url);

// Fetch a binary file, reporting progress (a model is a few megabytes: on a phone, that shows).
async function download(url, total, report) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status}`);
  const reader = response.body.getReader();
  const bytes = new Uint8Array(total);
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > total) throw new Error(`${url.pathname} is larger than the manifest says`);
    bytes.set(value, received);
    received += value.length;
    report(received);
  }
  if (received !== total) throw new Error(`${url.pathname}: ${received} bytes of ${total}`);
  return bytes.buffer;
}

function loadModel(entry) {
  if (!page.models.has(entry.key)) {
    const url = here(entry.file, entry.digest);
    const report = (n) => status(`Downloading ${entry.name}: ${megabytes(n)} of ${megabytes(entry.bytes)}…`);
    const loading = download(url, entry.bytes, report).then((buffer) => makeModel(readExport(buffer)));
    loading.catch(() => page.models.delete(entry.key));  // a failed download is tried again next time
    page.models.set(entry.key, loading);
  }
  return page.models.get(entry.key);
}

// Let the browser paint and handle clicks (Stop) between two tokens. A message to ourselves is a
// new task right away; setTimeout(0) waits at least 4 ms once nested, half a token's time here.
const channel = new MessageChannel();
function yieldToBrowser() {
  return new Promise((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

// --- Reading the prompt: tokens, the next-token distribution, the attention maps. ---

// Run the prompt's ids through the model with a KV cache, recording attention. The model sees the
// last context_length ids (the window). Where the new window starts with the same ids as the
// last one, those positions are kept: causal attention makes their keys, values and attention
// rows independent of what follows, so typing at the end of a long prompt recomputes one token.
function analyse(previous, model, ids) {
  const { config } = model;
  const seen = ids.slice(-config.context_length);  // the window
  const state = previous && previous.model === model ? previous : {
    model, window: [], cache: createCache(config),
    rows: Array.from({ length: config.n_layers }, () => Array.from({ length: config.n_heads }, () => [])),
  };
  let kept = 0;  // how many positions the new window shares with the old; at least one is recomputed
  while (kept < state.window.length && kept < seen.length - 1 && state.window[kept] === seen[kept]) kept++;
  state.cache.length = kept;
  for (const layer of state.rows) for (const head of layer) head.length = kept;
  state.logits = forward(model, seen.slice(kept), state.cache, state.rows);  // (vocab_size,)
  state.window = seen;
  return state;
}

function samplingOptions() {
  const temperature = Number($("pg-temperature").value);
  const topK = Number($("pg-top-k").value);
  const topP = Number($("pg-top-p").value);
  return { temperature, topK: topK >= 1 ? Math.round(topK) : null, topP: topP < 1 ? topP : null };
}

function showControls() {
  const { temperature, topK, topP } = samplingOptions();
  $("pg-temperature-value").textContent = temperature === 0 ? "0 (greedy)" : temperature.toFixed(2);
  $("pg-top-k-value").textContent = topK === null ? "off" : String(topK);
  $("pg-top-p-value").textContent = topP === null ? "off" : topP.toFixed(2);
}

function drawDistribution() {
  showControls();
  const a = page.analysis;
  if (!a) return;
  const { temperature, topK, topP } = samplingOptions();
  const probs = nextTokenProbs(a.logits, temperature, { topK, topP });
  const before = nextTokenProbs(a.logits, temperature);
  drawBars($("pg-bars"), $("pg-bars-summary"), page.tokenizer, a.logits, probs, before);
}

// How many tokens the attention map shows: 40, or fewer if the page is too narrow for 40 columns.
function attentionWindow() {
  const width = $("pg-attention").parentElement.clientWidth;
  return Math.max(12, Math.min(40, Math.floor((width - 100) / 16)));
}

function drawAttentionMap() {
  const a = page.analysis;
  if (!a) return;
  const layer = Number($("pg-layer").value);
  const head = Number($("pg-head").value);
  drawAttention($("pg-attention"), $("pg-attention-caption"), page.tokenizer, a.window, a.rows[layer][head],
                { layer, head, modelName: page.entry.name, shown: attentionWindow() });
}

function readPrompt() {
  if (page.model === null) return;  // selectModel reads the prompt once the model is there
  const text = $("pg-prompt").value;
  let ids;
  try {
    ids = page.tokenizer.encode(text);
  } catch (err) {
    status(`This text cannot be tokenized: ${err.message}`);
    return;
  }
  drawTokens($("pg-tokens"), page.tokenizer, ids);
  const contextLength = page.model.config.context_length;
  $("pg-tokens-summary").textContent = `${text.length} characters, ${ids.length} tokens` +
    (ids.length > contextLength ? `: the model sees the last ${contextLength}.` : ".");
  if (ids.length === 0) {
    page.analysis = null;
    $("pg-bars").replaceChildren();
    $("pg-bars-summary").textContent = "Type a prompt to see what the model expects next.";
    $("pg-attention").replaceChildren();
    $("pg-attention-caption").textContent = "";
  } else {
    page.analysis = analyse(page.analysis, page.model, ids);
    drawDistribution();
    drawAttentionMap();
  }
  root.dataset.analysis = "done";
}

let pending = null;
function promptChanged() {
  root.dataset.analysis = "pending";
  clearTimeout(pending);
  pending = setTimeout(readPrompt, 200);  // once the reader pauses typing
}

// --- Generation, one token at a time. ---

function decodingOptions() {
  const greedy = $("pg-greedy").checked;
  return greedy ? { temperature: 0, topK: null, topP: null } : samplingOptions();
}

// Continue `ids` with `model`, one forward pass per token; resolves to why it ended: "length",
// "end" (the model wrote the end-of-text token) or "stopped" (the Stop button). It yields to the
// browser after every token, so that a click on Stop is seen at once, and hands the new ids to
// draw(ids) at most 20 times a second, as fast as anyone reads.
async function run(model, ids, maxNew, options, draw) {
  const stopId = page.tokenizer.specialTokens.get(page.manifest.stop_token) ?? null;
  const tokens = stream(model, ids, maxNew, { ...options, stopId, useCache: true });
  const job = { stopped: false };
  let fresh = [];
  let drawn = 0;
  const flush = () => {
    if (fresh.length) draw(fresh);
    fresh = [];
    drawn = performance.now();
  };
  page.busy = job;
  try {
    for (let n = 0; ; n++) {
      if (job.stopped) return "stopped";
      const { done, value } = tokens.next();  // one forward pass
      if (done) return n < maxNew ? "end" : "length";
      fresh.push(value);
      if (performance.now() - drawn > 50) flush();  // the first token at once, then every 50 ms
      await yieldToBrowser();
    }
  } finally {
    flush();
    page.busy = null;
  }
}

function setRunning(running) {
  root.dataset.running = String(running);
  for (const button of document.querySelectorAll(".pg-stop")) button.disabled = !running;
  for (const id of ["pg-generate", "pg-compare", "pg-model", "pg-use"]) $(id).disabled = running;
}

async function generate() {
  const ids = page.tokenizer.encode($("pg-prompt").value);
  if (ids.length === 0) return status("Type a prompt first.");
  const output = $("pg-output");
  const maxNew = Math.max(1, Math.min(Number($("pg-max").value) || 1, 1000));
  output.replaceChildren();
  output.dataset.ids = "";
  output.dataset.state = "running";
  $("pg-speed").setAttribute("aria-busy", "true");  // a screen reader announces the result, not the count
  setRunning(true);
  const start = performance.now();
  let first = null;
  let count = 0;
  const reason = await run(page.model, ids, maxNew, decodingOptions(), (fresh) => {
    if (first === null) first = performance.now();
    count += fresh.length;
    appendTokens(output, page.tokenizer, fresh, false);
    $("pg-speed").textContent = `${count} tokens…`;
  });
  const end = performance.now();
  setRunning(false);
  // Decoding speed: the tokens after the first, which came after reading the whole prompt.
  const speed = count > 1 ? (count - 1) / ((end - first) / 1000) : 0;
  output.dataset.state = reason;
  output.dataset.tokensPerSecond = speed.toFixed(1);
  output.dataset.promptSeconds = first === null ? "" : ((first - start) / 1000).toFixed(3);
  const ended = { end: "it wrote the end-of-text token", stopped: "stopped", length: "as many as asked for" }[reason];
  if (reason === "end") {
    const marker = Object.assign(document.createElement("span"), { className: "pg-end", textContent: "⟨end of text⟩" });
    output.append(marker);
  }
  $("pg-speed").textContent = count === 0 ? `No tokens: ${ended}.` : `${count} tokens (${ended}). ` +
    `Reading the ${Math.min(ids.length, page.model.config.context_length)}-token prompt took ` +
    `${(first - start).toFixed(0)} ms; then ${speed.toFixed(0)} tokens/s.`;
  $("pg-speed").setAttribute("aria-busy", "false");
}

// Greedy answers of every model to the prompt, one row each: the comparison table.
async function compare() {
  const ids = page.tokenizer.encode($("pg-prompt").value);
  if (ids.length === 0) return status("Type a prompt first.");
  const maxNew = Math.max(1, Math.min(Number($("pg-max").value) || 1, 1000));
  const body = $("pg-compare-table").querySelector("tbody");
  body.replaceChildren();
  $("pg-compare-table").hidden = false;
  setRunning(true);
  try {
    for (const entry of page.manifest.models) {
      const row = body.insertRow();
      row.dataset.model = entry.key;
      row.insertCell().textContent = entry.label;
      const answer = row.insertCell();
      answer.className = "pg-answer";
      row.dataset.state = "loading";
      const model = await loadModel(entry);
      status(`Answering with ${entry.name}…`);
      row.dataset.state = "running";
      const draw = (fresh) => appendTokens(answer, page.tokenizer, fresh, false);
      const reason = await run(model, ids, maxNew, { temperature: 0 }, draw);
      row.dataset.ids = answer.dataset.ids ?? "";
      row.dataset.state = reason;
      if (reason === "stopped") break;
    }
    status(`In use: ${page.entry.label}.`);
  } finally {
    setRunning(false);
  }
}

// --- Models and prompts. ---

function instructionPrompt(instruction) {
  const { before, after } = page.manifest.instruction_format;
  return before + instruction + after;
}

function fillExample() {
  const example = page.manifest.examples[Number($("pg-example").value)];
  $("pg-prompt").value = instructionPrompt(example.instruction);
  $("pg-example-answer").textContent = `The reference answer: ${JSON.stringify(example.response)}.`;
  promptChanged();
}

async function selectModel(key) {
  const entry = page.manifest.models.find((m) => m.key === key);
  const switchedKind = page.entry === null || page.entry.instruction !== entry.instruction;
  page.entry = entry;
  root.dataset.state = "loading";
  $("pg-model").disabled = true;
  try {
    page.model = await loadModel(entry);
  } finally {
    $("pg-model").disabled = false;
  }
  page.analysis = null;
  const output = $("pg-output");  // what the previous model wrote
  output.replaceChildren();
  output.dataset.ids = "";
  output.dataset.state = "idle";
  $("pg-speed").textContent = "";
  const { n_layers: layers, n_heads: heads } = page.model.config;
  fillSelect($("pg-layer"), layers, (i) => `layer ${i + 1} of ${layers}`, $("pg-layer").value || "0");
  fillSelect($("pg-head"), heads, (i) => `head ${i + 1} of ${heads}`, $("pg-head").value || "0");
  $("pg-example-row").hidden = !entry.instruction;
  if (switchedKind) {
    if (entry.instruction) fillExample();
    else $("pg-prompt").value = page.manifest.prompt;
  }
  root.dataset.model = key;
  root.dataset.state = "ready";
  status(`In use: ${entry.label}.`);
  promptChanged();
}

function fillSelect(select, n, label, keep) {
  select.replaceChildren(...Array.from({ length: n }, (_, i) => new Option(label(i), String(i))));
  select.value = Number(keep) < n ? keep : "0";
}

async function main() {
  root.dataset.state = "loading";
  status("Loading the tokenizer and the course model…");
  const manifest = await (await fetch(new URL("models.json", import.meta.url), { cache: "no-cache" })).json();
  page.manifest = manifest;
  page.tokenizer = await BPETokenizer.load(here(manifest.tokenizer.file, manifest.tokenizer.digest));
  $("pg-model").replaceChildren(...manifest.models.map((m) => new Option(`${m.label}, ${megabytes(m.bytes)}`, m.key)));
  $("pg-example").replaceChildren(...manifest.examples.map((e, i) =>
    new Option(`${e.task}: ${e.instruction.split("\n")[0]}`, String(i))));
  $("pg-prompt").addEventListener("input", promptChanged);
  $("pg-prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !page.busy) generate();
  });
  for (const id of ["pg-temperature", "pg-top-k", "pg-top-p"]) $(id).addEventListener("input", drawDistribution);
  for (const id of ["pg-layer", "pg-head"]) $(id).addEventListener("change", drawAttentionMap);
  let resized = null;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(drawAttentionMap, 200);
  });
  $("pg-model").addEventListener("change", (event) => selectModel(event.target.value).catch(failed));
  $("pg-example").addEventListener("change", fillExample);
  $("pg-generate").addEventListener("click", () => generate().catch(failed));
  $("pg-compare").addEventListener("click", () => compare().catch(failed));
  for (const button of document.querySelectorAll(".pg-stop")) {
    button.addEventListener("click", () => {
      if (page.busy) page.busy.stopped = true;
    });
  }
  $("pg-use").addEventListener("click", () => {
    const output = $("pg-output");
    if (!output.dataset.ids) return;
    $("pg-prompt").value += page.tokenizer.decode(output.dataset.ids.split(" ").map(Number));
    promptChanged();
  });
  $("pg-prompt").value = manifest.prompt;
  await selectModel(manifest.models[0].key);
  setRunning(false);  // enables the buttons, disabled until now
}

function failed(err) {
  root.dataset.state = "error";
  setRunning(false);
  status(`Something went wrong: ${err.message}`);
  throw err;
}

main().catch(failed);
