// gpt.js: the course's GPT in the browser: read the exported weights, run the forward pass.
//
// Mirrors llmscratch.model.GPT for the course model's choices: RoPE, pre-LayerNorm blocks,
// GELU, tied embeddings, biases (see checkSupported for the full list). The weights come from
// the binary file that llmscratch.export.export_model writes; readExport mirrors load_export and
// gives back the same dequantized float32 numbers the package computes its references with.
//
// forward(model, ids, cache) is GPT.forward(idx, cache=cache) for one sequence (batch size 1),
// returning the logits of its last position only, which is all generation needs (the package's
// sampling.last_logits). With a cache, `ids` are the tokens after the cached ones: positions
// start at cache.length, and every layer stores its keys and values for the next call. Without
// one, the whole window goes through every layer: the same arithmetic, and the slow path the
// KV cache exists to avoid. forward(model, ids, cache, attentionRows) also records every
// layer's attention weights, as GPT.trace does (see attention).
//
// Left out: batches, learned and other position schemes, grouped-query attention, sliding windows,
// mixtures of experts, and dropout (inference only).

import { addInPlace, gelu, layerNorm, linear, softmax } from "./tensor.js";

export const MAGIC = "LLMSGPT1";
const BYTES_PER_VALUE = { int8: 1, float16: 2, float32: 4 };

// A float16 (its 16 bits as an integer) as a number: sign, 5 exponent bits, 10 fraction bits.
export function float16ToNumber(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;  // zero and the subnormals
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// One tensor of the data section as float32 numbers. Mirrors export._read_tensor.
function readTensor(view, dataStart, spec, shape) {
  const count = shape.reduce((n, s) => n * s, 1);
  const size = BYTES_PER_VALUE[spec.dtype];
  if (size === undefined) throw new Error(`unknown dtype ${spec.dtype}`);
  if (spec.nbytes !== count * size) {
    throw new Error(`${spec.nbytes} bytes cannot hold a ${spec.dtype} tensor of shape [${shape}]`);
  }
  const start = dataStart + spec.offset;
  if (start + spec.nbytes > view.byteLength) {
    throw new Error(`the file is truncated: a tensor ends at byte ${start + spec.nbytes} of ${view.byteLength}`);
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (spec.dtype === "int8") out[i] = view.getInt8(start + i);
    else if (spec.dtype === "float16") out[i] = float16ToNumber(view.getUint16(start + 2 * i, true));
    else out[i] = view.getFloat32(start + 4 * i, true);
  }
  return out;
}

// The config and the float32 weights (by state-dict name) of an exported file, dequantized.
// Mirrors llmscratch.export.load_export, and fails on the same bad files with a clear error.
export function readExport(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) throw new Error(`not a llmscratch export: it starts with "${magic}", not "${MAGIC}"`);
  if (bytes.length < MAGIC.length + 4) throw new Error("the file is truncated: too short for the header's length");
  const view = new DataView(buffer);
  const n = view.getUint32(MAGIC.length, true);  // little-endian
  const headerStart = MAGIC.length + 4;
  if (headerStart + n > bytes.length) throw new Error(`the file is truncated: the header says ${n} bytes`);
  let header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(headerStart, headerStart + n)));
  } catch (err) {
    throw new Error(`the header does not parse as JSON (${err.message})`);
  }
  if (!header || !header.config || !Array.isArray(header.tensors)) {
    throw new Error("the header does not parse as an export header: it has no config or no tensors");
  }
  const weights = {};
  for (const spec of header.tensors) {
    const values = readTensor(view, headerStart + n, spec, spec.shape);
    if (spec.scale) {
      // int8 codes, one scale per output row: w = scale[row] * code (quantization.dequantize_tensor).
      const scale = readTensor(view, headerStart + n, spec.scale, [spec.shape[0]]);
      const cols = values.length / spec.shape[0];
      for (let i = 0; i < values.length; i++) values[i] *= scale[Math.floor(i / cols)];
    }
    weights[spec.name] = values;
  }
  if (header.config.tie_weights) weights["lm_head.weight"] = weights["token_embedding.weight"];
  return { config: header.config, weights, dtype: header.dtype };
}

// Raise unless the JavaScript engine implements every choice of `config` (a GPTConfig as JSON).
export function checkSupported(config) {
  const wanted = { position: "rope", norm: "layernorm", norm_placement: "pre", activation: "gelu", residual: true,
                   attention_window: null, n_experts: 0 };
  for (const [field, value] of Object.entries(wanted)) {
    if (config[field] !== value) {
      const [want, got] = [JSON.stringify(value), JSON.stringify(config[field])];
      throw new Error(`this engine runs GPTs with ${field}=${want}, not ${got}`);
    }
  }
  if (config.n_kv_heads !== null && config.n_kv_heads !== config.n_heads) {
    throw new Error("this engine has no grouped-query attention: n_kv_heads must equal n_heads");
  }
  if (config.d_ff === 0) throw new Error("this engine needs a feed-forward sublayer (d_ff > 0)");
}

// A model: its config, weights, and the sizes every call needs.
export function makeModel({ config, weights, dtype }) {
  checkSupported(config);
  return { config, weights, dtype, ffDim: config.d_ff ?? 4 * config.d_model };
}

export async function loadModel(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return makeModel(readExport(await response.arrayBuffer()));
}

// An empty KV cache with room for `capacity` positions in every layer. Mirrors KVCache.for_model.
// Layer l keeps keys[l] and values[l], (n_heads, capacity, head_dim) each: the keys of one head
// lie one after another, so attention reads them in order.
export function createCache(config, capacity = config.context_length) {
  const size = config.d_model * capacity;  // n_heads * capacity * head_dim
  const keys = [];
  const values = [];
  for (let l = 0; l < config.n_layers; l++) {
    keys.push(new Float32Array(size));
    values.push(new Float32Array(size));
  }
  return { length: 0, capacity, keys, values };
}

// cos and sin of the angles p · w_i of positions start .. start + length - 1, each (length, headDim / 2),
// with w_i = base^(-2i / headDim). Mirrors positional.rope_angles, which computes in float32:
// Math.fround rounds where it rounds, so that an angle of 70 radians is the same number here and there.
export function ropeAngles(length, headDim, base, start = 0) {
  const half = headDim / 2;
  const cos = new Float32Array(length * half);
  const sin = new Float32Array(length * half);
  for (let i = 0; i < half; i++) {
    const frequency = Math.fround(base ** Math.fround(-(2 * i) / headDim));
    for (let p = 0; p < length; p++) {
      const angle = Math.fround((start + p) * frequency);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

// Rotate each feature pair (a, b) of the headDim numbers of `x` from index `from` into `out` at
// `to`: (a cos - b sin, a sin + b cos), with row `row` of the angles. Mirrors positional.apply_rope.
export function applyRope(x, from, out, to, cos, sin, row, headDim) {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const a = x[from + 2 * i];
    const b = x[from + 2 * i + 1];
    const c = cos[row * half + i];
    const s = sin[row * half + i];
    out[to + 2 * i] = a * c - b * s;
    out[to + 2 * i + 1] = a * s + b * c;
  }
}

// Causal self-attention of T new tokens x (T, d_model) that follow the cache.length cached ones;
// stores their keys and values in `cache` (it is the caller's job to advance cache.length, as
// GPT.forward does once every layer has stored). `weights` holds prefix + "qkv.weight" etc.
// Mirrors attention.CausalSelfAttention.forward. With `rows` (one array per head), it also keeps
// the weights, as return_weights=True does: rows[h][p] is the Float32Array of query p's weights
// over keys 0..p. A query's row depends on the tokens up to it only, so the rows of the cached
// positions stay valid and only the new ones are written.
export function attention(weights, prefix, x, T, cache, layer, config, rows = null) {
  const d = config.d_model;
  const H = config.n_heads;
  const hs = d / H;
  const start = cache.length;  // the position of the first new token
  if (start + T > cache.capacity) throw new Error(`the cache holds ${cache.capacity} positions, not ${start + T}`);
  const qkv = linear(x, T, weights[prefix + "qkv.weight"], 3 * d, d, weights[prefix + "qkv.bias"] ?? null);  // (T, 3d)
  const { cos, sin } = ropeAngles(T, hs, config.rope_base, start);  // the new positions' angles
  const keys = cache.keys[layer];
  const values = cache.values[layer];
  const C = cache.capacity;
  const q = new Float32Array(T * d);  // (T, H, hs): rotated queries
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const at = t * 3 * d + h * hs;  // row t of qkv is q (H, hs), then k (H, hs), then v (H, hs)
      const slot = (h * C + start + t) * hs;  // head h, position start + t
      applyRope(qkv, at, q, t * d + h * hs, cos, sin, t, hs);
      applyRope(qkv, at + d, keys, slot, cos, sin, t, hs);  // keys are stored rotated
      values.set(qkv.subarray(at + 2 * d, at + 2 * d + hs), slot);
    }
  }
  const scale = 1 / Math.sqrt(hs);
  const y = new Float32Array(T * d);  // (T, H * hs): the heads side by side
  const scores = new Float32Array(start + T);
  for (let t = 0; t < T; t++) {
    const seen = start + t + 1;  // causal: the keys at positions 0 .. start + t
    for (let h = 0; h < H; h++) {
      const qAt = t * d + h * hs;
      for (let j = 0; j < seen; j++) {
        const kAt = (h * C + j) * hs;
        let dot = 0;
        for (let i = 0; i < hs; i++) dot += q[qAt + i] * keys[kAt + i];
        scores[j] = dot * scale;
      }
      const w = softmax(scores.subarray(0, seen));  // (seen,): the weights of this query
      if (rows !== null) rows[h][start + t] = w.slice();  // a copy: `scores` is reused
      for (let j = 0; j < seen; j++) {
        const vAt = (h * C + j) * hs;
        for (let i = 0; i < hs; i++) y[qAt + i] += w[j] * values[vAt + i];
      }
    }
  }
  return linear(y, T, weights[prefix + "proj.weight"], d, d, weights[prefix + "proj.bias"] ?? null);  // (T, d)
}

// down(gelu(up(x))) for x (T, d_model). Mirrors blocks.FeedForward.forward.
export function feedForward(model, prefix, x, T) {
  const { config, weights, ffDim } = model;
  const d = config.d_model;
  const h = gelu(linear(x, T, weights[prefix + "up.weight"], ffDim, d, weights[prefix + "up.bias"] ?? null));
  return linear(h, T, weights[prefix + "down.weight"], d, ffDim, weights[prefix + "down.bias"] ?? null);
}

// One pre-norm block, in place on x (T, d_model). Mirrors blocks.Block.forward; `rows` as in attention.
export function block(model, layer, x, T, cache, rows = null) {
  const { config, weights } = model;
  const p = `blocks.${layer}.`;
  const norm = (name) => layerNorm(x, T, weights[p + name + ".weight"], weights[p + name + ".bias"] ?? null);
  // x = x + attention(norm_1(x))
  addInPlace(x, attention(weights, p + "attention.", norm("norm_1"), T, cache, layer, config, rows));
  // x = x + feed_forward(norm_2(x))
  addInPlace(x, feedForward(model, p + "feed_forward.", norm("norm_2"), T));
  return x;
}

// The token vectors of `ids`, (T, d_model). Mirrors GPT.embed (RoPE adds no position vector).
export function embed(model, ids) {
  const { config, weights } = model;
  const d = config.d_model;
  const table = weights["token_embedding.weight"];
  const x = new Float32Array(ids.length * d);
  ids.forEach((id, t) => {
    if (!(Number.isInteger(id) && id >= 0 && id < config.vocab_size)) {
      throw new Error(`token id ${id} is outside the vocabulary (0..${config.vocab_size - 1})`);
    }
    x.set(table.subarray(id * d, (id + 1) * d), t * d);
  });
  return x;
}

// The logits (vocab_size,) for the token after `ids`, which follow the cached tokens if a cache
// is given (and are then added to it). Mirrors GPT.forward with sampling.last_logits.
// `attentionRows`, if given, is an array with an array per layer, each with an array per head:
// every layer writes its weights there (see attention), as GPT.trace records them.
export function forward(model, ids, cache = null, attentionRows = null) {
  const { config, weights } = model;
  const d = config.d_model;
  const T = ids.length;
  if (T === 0) throw new Error("forward needs at least one token");
  // Without a cache, a fresh one holds this call's keys and values and is then dropped.
  const store = cache ?? createCache(config, T);
  const x = embed(model, ids);  // (T, d)
  for (let layer = 0; layer < config.n_layers; layer++) {
    block(model, layer, x, T, store, attentionRows === null ? null : attentionRows[layer]);
  }
  store.length += T;  // every layer has stored these positions
  const last = layerNorm(x.subarray((T - 1) * d), 1, weights["final_norm.weight"], weights["final_norm.bias"] ?? null);
  return linear(last, 1, weights["lm_head.weight"], config.vocab_size, d);  // (V,): the output layer has no bias
}
