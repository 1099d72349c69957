// sampling.js: from logits to the next token, and the generation loop.
//
// Mirrors llmscratch.sampling: softmax(logits / temperature), then the truncation rules top-k,
// top-p and min-p, each applied to what the previous one kept and renormalised; temperature 0
// is greedy decoding (all probability on the largest logit). Probabilities are float64 here.
//
// Left out: the repetition penalty, n-gram blocking, batches, and beam search.

import { argmax } from "./tensor.js";
import { createCache, forward } from "./gpt.js";

// Mirrors sampling._check_sampling.
function checkSampling(temperature, topK, topP, minP) {
  const fail = (message) => {
    throw new Error(message);
  };
  if (typeof temperature !== "number" || !(temperature >= 0)) fail(`temperature must be >= 0, got ${temperature}`);
  if (topK !== null && !(Number.isInteger(topK) && topK >= 1)) fail(`topK must be a positive integer or null: ${topK}`);
  if (topP !== null && !(topP > 0 && topP <= 1)) fail(`topP must be in (0, 1] or null, got ${topP}`);
  if (minP !== null && !(minP >= 0 && minP <= 1)) fail(`minP must be in [0, 1] or null, got ${minP}`);
}

// Token indices from most to least likely; equal probabilities in index order.
function byProbability(probs) {
  return Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
}

// True for the k most likely tokens. Mirrors sampling.top_k_mask.
export function topKMask(probs, k) {
  const keep = new Array(probs.length).fill(false);
  for (const i of byProbability(probs).slice(0, k)) keep[i] = true;
  return keep;
}

// True for the smallest set of most likely tokens whose total reaches p: a token is kept while
// the tokens more likely than it hold less than p, so the one that crosses p is kept too.
// Mirrors sampling.top_p_mask.
export function topPMask(probs, p) {
  const keep = new Array(probs.length).fill(false);
  let before = 0;  // the mass of the more likely tokens
  for (const i of byProbability(probs)) {
    keep[i] = before < p;
    before += probs[i];
  }
  return keep;
}

// True for the tokens at least minP times as likely as the most likely one. Mirrors sampling.min_p_mask.
export function minPMask(probs, minP) {
  const top = Math.max(...probs);
  return Array.from(probs, (q) => q >= minP * top);
}

// The probabilities of the next token (Float64Array). Mirrors sampling.next_token_probs.
export function nextTokenProbs(logits, temperature = 1, { topK = null, topP = null, minP = null } = {}) {
  checkSampling(temperature, topK, topP, minP);
  const V = logits.length;
  if (temperature === 0) {
    const oneHot = new Float64Array(V);
    oneHot[argmax(logits)] = 1;
    return oneHot;
  }
  const scaled = Float64Array.from(logits, (l) => l / temperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((s) => Math.exp(s - max));
  const total = exps.reduce((a, b) => a + b, 0);
  const probs = exps.map((e) => e / total);  // softmax(logits / temperature)
  if (topK === null && topP === null && minP === null) return probs;
  let keep = new Array(V).fill(true);
  for (const [rule, value] of [[topKMask, topK], [topPMask, topP], [minPMask, minP]]) {
    if (value === null) continue;
    const kept = probs.map((q, i) => (keep[i] ? q : 0));
    const mass = kept.reduce((a, b) => a + b, 0);
    const ruled = rule(kept.map((q) => q / mass), value);  // the rule sees what is left, renormalised
    keep = keep.map((k, i) => k && ruled[i]);
  }
  const kept = probs.map((q, i) => (keep[i] ? q : 0));
  const mass = kept.reduce((a, b) => a + b, 0);
  return kept.map((q) => q / mass);
}

// One token drawn from `probs`; `random` returns a number in [0, 1). Mirrors torch.multinomial(probs, 1).
export function sample(probs, random = Math.random) {
  const u = random() * probs.reduce((a, b) => a + b, 0);
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cumulative += probs[i];
    last = i;
    if (u < cumulative) return i;
  }
  return last;  // u within rounding of the total
}

// Continue `ids` one token at a time, yielding each new id. Mirrors sampling.generate for one row:
// the model sees the last context_length ids; with useCache the prompt is read once and then one
// new token per step, and past context_length the cache is refilled from the cropped window (a
// moved window moves every position), exactly as the package does.
export function* stream(model, ids, maxNewTokens, options = {}) {
  const { temperature = 1, topK = null, topP = null, minP = null, stopId = null, useCache = false,
          random = Math.random } = options;
  checkSampling(temperature, topK, topP, minP);
  const T = model.config.context_length;
  const written = [...ids];
  let cache = useCache ? createCache(model.config) : null;
  for (let step = 0; step < maxNewTokens; step++) {
    let logits;
    if (cache === null) {
      logits = forward(model, written.slice(-T));
    } else if (written.length > T) {
      cache = createCache(model.config);  // cropping shifts every position: refill
      logits = forward(model, written.slice(-T), cache);
    } else {
      logits = forward(model, written.slice(cache.length), cache);  // what the cache has not seen
    }
    const next = sample(nextTokenProbs(logits, temperature, { topK, topP, minP }), random);
    if (next === stopId) return;
    written.push(next);
    yield next;
  }
}

// All the new ids at once. Mirrors sampling.generate (which returns them per row).
export function generate(model, ids, maxNewTokens, options = {}) {
  return Array.from(stream(model, ids, maxNewTokens, options));
}
