// checks.js: the JavaScript engine's unit checks, against the references the package writes.
//
// checks.html?fixtures=fixtures.json&tokenizer=bpe_tokenizer.json loads the fixtures
// (llmscratch.export.export_fixtures), the tokenizer and the exported model the fixtures name,
// and writes one line per check into the page: "PASS name: detail" or "FAIL name: detail".
// When it is done, document.title is "PASS n/n checks" or "FAIL k of n checks", and
// window.playground holds the results, so a headless browser (tools/playground_check.py) can
// read them.
//
// &speed=N also times N tokens of greedy decoding with and without the KV cache; those lines
// say INFO and never fail. &only=speed skips the other checks, so that the speed is measured on
// a fresh page, as a reader's playground would run: the checks call the same functions with
// other inputs first, and a JIT compiler specialises a function for the inputs it has seen.

import { BPETokenizer } from "./bpe.js";
import { attention, createCache, forward, loadModel, readExport } from "./gpt.js";
import { generate, nextTokenProbs, stream } from "./sampling.js";
import { argmax, erf, gelu, layerNorm, linear, softmax } from "./tensor.js";

const params = new URLSearchParams(location.search);
const results = [];
const log = document.getElementById("log");

function report(status, name, detail) {
  results.push({ status, name, detail });
  log.textContent += `${status} ${name}: ${detail}\n`;
}

// Run one check: `body` returns [ok, detail] (or a promise of them); an exception is a failure.
async function check(name, body) {
  try {
    const [ok, detail] = await body();
    report(ok ? "PASS" : "FAIL", name, detail);
  } catch (err) {
    report("FAIL", name, `threw ${err && err.stack ? err.stack : err}`);
  }
}

const flat = (rows) => rows.flat(Infinity);

function maxDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function within(name, got, want, tolerance) {
  return check(name, () => {
    const diff = maxDiff(got(), flat(want));
    return [diff <= tolerance, `max |difference| ${diff.toExponential(2)} (tolerance ${tolerance})`];
  });
}

// The model file the fixtures name, beside the fixtures.
const modelUrl = (f) => new URL(f.file, new URL(params.get("fixtures") ?? "fixtures.json", location.href));

const sameIds = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

async function tensorChecks(f) {
  const { matmul, softmax: sm, layernorm: ln, gelu: g } = f;
  const [rows, inF] = [matmul.x.length, matmul.x[0].length];
  const f32 = (nested) => Float32Array.from(flat(nested));
  await within("tensor.linear", () => linear(f32(matmul.x), rows, f32(matmul.w), matmul.w.length, inF, f32(matmul.b)),
               matmul.y, 1e-5);
  await within("tensor.softmax", () => softmax(f32(sm.x), sm.x.length), sm.y, 1e-6);
  await within("tensor.layerNorm", () => layerNorm(f32(ln.x), ln.x.length, f32(ln.weight), f32(ln.bias)), ln.y, 1e-5);
  await within("tensor.erf vs math.erf", () => g.x.map(erf), g.erf, 1e-14);
  // float32 in and out, as in the model (a function that sees one array type stays fast in V8).
  await within("tensor.gelu vs torch gelu, to float32 rounding", () => gelu(f32(g.x)), g.y, 1e-6);
}

async function attentionChecks(f) {
  const { config, weights, x, pieces, y, y_whole: yWhole } = f;
  const d = config.d_model;
  const w = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, Float32Array.from(v)]));
  const input = Float32Array.from(flat(x));
  await within("attention, 3 + 1 + 1 tokens through a KV cache", () => {
    const cache = createCache(config);
    const out = [];
    let at = 0;
    for (const T of pieces) {
      out.push(...attention(w, "", input.subarray(at * d, (at + T) * d), T, cache, 0, config));
      cache.length += T;
      at += T;
    }
    return out;
  }, y, 1e-5);
  await within("attention, all 5 tokens at once",
               () => attention(w, "", input, x.length, createCache(config), 0, config), yWhole, 1e-5);
}

async function tokenizerChecks(f, tokenizer) {
  await check("tokenizer regex classes, every code point", () => {
    // The pattern sees letters, digits and whitespace through these three properties (bpe.js).
    // A code point this browser's Unicode tables do not assign yet (\p{Cn}) may be a letter to a
    // newer Python regex: that is a difference of Unicode versions, reported but not a failure.
    const letter = /\p{L}/u;
    const digit = /\p{N}/u;
    const space = /\p{White_Space}/u;
    const unassigned = /\p{Cn}/u;
    const runs = f.classes;
    let newer = 0;
    let wrong = 0;
    let first = null;
    for (let r = 0; r < runs.length; r++) {
      const end = r + 1 < runs.length ? runs[r + 1][0] : 0x110000;
      for (let c = runs[r][0]; c < end; c++) {
        const ch = String.fromCodePoint(c);
        const kind = letter.test(ch) ? 0 : digit.test(ch) ? 1 : space.test(ch) ? 2 : 3;
        if (kind === runs[r][1]) continue;
        if (unassigned.test(ch)) {
          newer++;
        } else {
          wrong++;
          first ??= `U+${c.toString(16).toUpperCase()} is class ${kind} here, ${runs[r][1]} in Python`;
        }
      }
    }
    const note = newer ? `; ${newer} code points that this browser's Unicode tables do not assign yet are ` +
                         "letters or digits to Python's newer regex module" : "";
    const verdict = wrong ? `${wrong} assigned code points differ; first: ${first}`
                          : "every code point this browser assigns is in the class Python's regex gives it";
    return [wrong === 0, verdict + note];
  });
  await check(`tokenizer.encode equals BPETokenizer.encode (${f.encode.length} texts)`, () => {
    const bad = f.encode.filter(({ text, ids }) => !sameIds(tokenizer.encode(text), ids));
    const detail = bad.length ? `${bad.length} differ, first ${JSON.stringify(bad[0].text)}` : "all ids equal";
    return [bad.length === 0, detail];
  });
  await check("tokenizer.decode(encode(text)) == text", () => {
    const bad = f.encode.filter(({ text }) => tokenizer.decode(tokenizer.encode(text)) !== text);
    return [bad.length === 0, bad.length ? `first failure ${JSON.stringify(bad[0].text)}` : "every text comes back"];
  });
  await check(`tokenizer.decode equals BPETokenizer.decode (${f.decode.length} random id lists)`, () => {
    const bad = f.decode.filter(({ ids, text }) => tokenizer.decode(ids) !== text);
    return [bad.length === 0, bad.length ? `first failure ids ${bad[0].ids}` : "invalid UTF-8 replaced as Python does"];
  });
  await check("tokenizer rejects a lone surrogate, as Python does", () => {
    try {
      tokenizer.encode("a\ud800b");
      return [false, "no error"];
    } catch (err) {
      return [true, err.message];
    }
  });
}

async function samplingChecks(cases) {
  for (const c of cases) {
    const options = { topK: c.top_k, topP: c.top_p, minP: c.min_p };
    await within(`sampling.nextTokenProbs ${JSON.stringify({ temperature: c.temperature, ...options })}`,
                 () => nextTokenProbs(Float64Array.from(c.logits), c.temperature, options), c.probs, 1e-12);
  }
}

async function readerChecks(buffer) {
  const changed = (at, value) => {  // a copy of the file with one byte changed
    const copy = buffer.slice(0);
    new Uint8Array(copy)[at] = value;
    return copy;
  };
  const corrupt = [
    ["a wrong magic", () => changed(0, 0x4d), "not a llmscratch export"],
    ["a truncated header", () => buffer.slice(0, 64), "truncated"],
    ["truncated tensors", () => buffer.slice(0, buffer.byteLength - 1000), "truncated"],
    ["a header that does not parse", () => changed(12, 0x7d), "parse"],  // "{" becomes "}"
  ];
  for (const [what, make, expected] of corrupt) {
    await check(`readExport refuses ${what}`, () => {
      try {
        readExport(make());
        return [false, "no error"];
      } catch (err) {
        return [err.message.includes(expected), err.message];
      }
    });
  }
}

async function modelChecks(f) {
  const url = modelUrl(f);
  const buffer = await (await fetch(url)).arrayBuffer();
  await readerChecks(buffer);
  const model = await loadModel(url);
  const n = f.greedy_ids.length;
  // Greedy decoding with the cache, one forward call per token, keeping each step's logits.
  const cache = createCache(model.config);
  const steps = [];
  const greedy = [];
  let logits = forward(model, f.prompt_ids, cache);  // the prefill: the whole prompt at once
  for (let i = 0; i < n; i++) {
    steps.push(logits);
    greedy.push(argmax(logits));
    if (i + 1 < n) logits = forward(model, [greedy[i]], cache);
  }
  await check(`greedy ${n} ids equal generate(..., temperature=0) on the same ${model.dtype} weights`, () => {
    const firstDiff = greedy.findIndex((x, i) => x !== f.greedy_ids[i]);
    return [firstDiff < 0, firstDiff < 0 ? "all equal" : `first difference at step ${firstDiff}`];
  });
  await check(`top-5 next-token ids and probabilities, all ${n} steps`, () => {
    let worst = 0;
    let idsAgree = true;
    steps.forEach((l, s) => {
      const probs = nextTokenProbs(l, 1);
      const top = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b).slice(0, 5);
      idsAgree &&= sameIds(top, f.top5_ids[s]);
      worst = Math.max(worst, maxDiff(top.map((i) => probs[i]), f.top5_probs[s]));
    });
    const detail = `ids ${idsAgree ? "equal" : "DIFFER"}; max |probability difference| ${worst.toExponential(2)}`;
    return [idsAgree && worst <= 1e-3, `${detail} (tolerance 1e-3)`];
  });
  await check("generate with the cache equals the package's greedy ids", () => {
    const out = generate(model, f.prompt_ids, n, { temperature: 0, useCache: true });
    return [sameIds(out, f.greedy_ids), `${out.length} ids`];
  });
}

// Greedy decoding of n tokens after the fixtures' prompt, timed. The first token comes after the
// prefill (the whole prompt through the model); the others each cost one decode step.
function timeGreedy(model, prompt, n, useCache) {
  const out = [];
  const start = performance.now();
  let first = start;
  for (const token of stream(model, prompt, n, { temperature: 0, useCache })) {
    if (out.length === 0) first = performance.now();
    out.push(token);
  }
  const end = performance.now();
  const seconds = (from, to) => (to - from) / 1000;
  return { out, seconds: seconds(start, end), firstSeconds: seconds(start, first), restSeconds: seconds(first, end) };
}

async function speedChecks(f, n) {
  const model = await loadModel(modelUrl(f));
  generate(model, f.prompt_ids, 8, { temperature: 0, useCache: true });  // let the JIT compile the loops first
  const cached = timeGreedy(model, f.prompt_ids, n, true);
  const uncached = timeGreedy(model, f.prompt_ids, n, false);
  const speed = {
    tokens: n,
    prompt_tokens: f.prompt_ids.length,
    cache_tokens_per_second: n / cached.seconds,  // prefill included
    cache_decode_tokens_per_second: (n - 1) / cached.restSeconds,  // after the first token
    cache_first_token_seconds: cached.firstSeconds,
    no_cache_tokens_per_second: n / uncached.seconds,
  };
  window.playground.speed = speed;
  report("INFO", "speed with the KV cache",
         `${speed.cache_decode_tokens_per_second.toFixed(1)} tokens/s decoding; the first token took ` +
         `${(1000 * speed.cache_first_token_seconds).toFixed(0)} ms (the ${speed.prompt_tokens}-token prompt's ` +
         `prefill); ${speed.cache_tokens_per_second.toFixed(1)} tokens/s over all ${n} greedy tokens`);
  report("INFO", "speed without a cache",
         `${speed.no_cache_tokens_per_second.toFixed(1)} tokens/s over the same ${n} tokens ` +
         "(the whole window every step)");
  await check("generate without a cache gives the ids of generate with one", () =>
    [sameIds(uncached.out, cached.out), `${n} ids`]);
}

async function main() {
  window.playground = { done: false, results, speed: null };
  const fixturesUrl = params.get("fixtures") ?? "fixtures.json";
  const speedTokens = Number(params.get("speed") ?? 0);
  try {
    const fixtures = await (await fetch(fixturesUrl)).json();
    if (params.get("only") !== "speed") {
      await tensorChecks(fixtures.tensor);
      await attentionChecks(fixtures.attention);
      const tokenizer = await BPETokenizer.load(params.get("tokenizer") ?? "bpe_tokenizer.json");
      await tokenizerChecks(fixtures.tokenizer, tokenizer);
      const { prompt, prompt_ids: promptIds } = fixtures.model;
      await check("tokenizer encodes the model's prompt as the package does",
                  () => [sameIds(tokenizer.encode(prompt), promptIds), JSON.stringify(prompt)]);
      await samplingChecks(fixtures.sampling);
      await modelChecks(fixtures.model);
    }
    if (speedTokens > 0) await speedChecks(fixtures.model, speedTokens);
  } catch (err) {
    report("FAIL", "setup", `threw ${err && err.stack ? err.stack : err}`);
  }
  const checks = results.filter((r) => r.status !== "INFO");
  const failed = checks.filter((r) => r.status === "FAIL").length;
  const n = checks.length;
  document.title = failed ? `FAIL ${failed} of ${n} checks` : `PASS ${n}/${n} checks`;
  window.playground.done = true;
}

main();
