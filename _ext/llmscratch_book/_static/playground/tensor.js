// tensor.js: the arithmetic of a GPT's forward pass, on plain Float32Arrays.
//
// A matrix is a Float32Array in row-major order, its shape passed alongside: a (rows, cols)
// matrix holds element (r, c) at index r * cols + c, as a contiguous PyTorch tensor does. A
// weight matrix is stored as PyTorch's nn.Linear stores it, (out_features, in_features), so
// that each output is the dot product of the input with one contiguous row.
//
// JavaScript numbers are float64: sums here are accumulated in float64 and rounded to float32
// when stored. PyTorch accumulates in float32, so results agree to float32 rounding (about 1e-7
// relative), not bit for bit.
//
// Left out: SIMD, WebAssembly, threads and the GPU. Every loop is the textbook loop, except that
// `linear` computes four outputs at a time (see there why).

// y = x wᵀ + b for x (rows, inFeatures) and w (outFeatures, inFeatures): (rows, outFeatures).
// Mirrors torch.nn.functional.linear (what nn.Linear.forward computes); `bias` may be null.
export function linear(x, rows, w, outFeatures, inFeatures, bias = null) {
  if (x.length !== rows * inFeatures || w.length !== outFeatures * inFeatures) {
    throw new Error(`linear: x has ${x.length} numbers for (${rows}, ${inFeatures}), ` +
                    `w has ${w.length} for (${outFeatures}, ${inFeatures})`);
  }
  const y = new Float32Array(rows * outFeatures);
  const b = (o) => (bias === null ? 0 : bias[o]);
  // Four outputs o .. o + 3 at a time: each x[r, i] read serves four rows of w, and the four sums
  // advance independently. Reading typed arrays is what costs in the browser; this halves the reads
  // per multiply and makes the whole model about twice as fast in Chromium as the loop further down.
  let o = 0;
  for (; o + 4 <= outFeatures; o += 4) {
    const w0 = o * inFeatures;  // rows o, o + 1, o + 2, o + 3 of w start here
    const w1 = w0 + inFeatures;
    const w2 = w1 + inFeatures;
    const w3 = w2 + inFeatures;
    for (let r = 0; r < rows; r++) {
      const xStart = r * inFeatures;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < inFeatures; i++) {
        const xi = x[xStart + i];
        s0 += xi * w[w0 + i];
        s1 += xi * w[w1 + i];
        s2 += xi * w[w2 + i];
        s3 += xi * w[w3 + i];
      }
      const at = r * outFeatures + o;
      y[at] = s0 + b(o);
      y[at + 1] = s1 + b(o + 1);
      y[at + 2] = s2 + b(o + 2);
      y[at + 3] = s3 + b(o + 3);
    }
  }
  // The textbook loop, one output at a time, for the last outFeatures % 4 outputs.
  for (; o < outFeatures; o++) {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let i = 0; i < inFeatures; i++) sum += x[r * inFeatures + i] * w[o * inFeatures + i];
      y[r * outFeatures + o] = sum + b(o);
    }
  }
  return y;
}

// softmax over each row of x (rows, cols), in place; returns x. Mirrors torch.softmax(x, dim=-1).
// Subtracting the row's maximum first changes nothing mathematically and keeps exp from
// overflowing; a score of -Infinity (a masked key) gets weight exactly 0.
export function softmax(x, rows = 1, cols = x.length / rows) {
  for (let r = 0; r < rows; r++) {
    const start = r * cols;
    let max = -Infinity;
    for (let i = 0; i < cols; i++) max = Math.max(max, x[start + i]);
    let total = 0;
    for (let i = 0; i < cols; i++) {
      const e = Math.exp(x[start + i] - max);
      x[start + i] = e;
      total += e;
    }
    for (let i = 0; i < cols; i++) x[start + i] /= total;
  }
  return x;
}

// LayerNorm of each row of x (rows, dim): (x - mean) / sqrt(var + eps) * weight + bias, with the
// biased variance (divided by dim), as torch.nn.LayerNorm computes it (eps 1e-5, its default).
// Returns a new array; `bias` may be null (GPTConfig.bias = False).
export function layerNorm(x, rows, weight, bias = null, eps = 1e-5) {
  const dim = weight.length;
  const y = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const start = r * dim;
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[start + i];
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) variance += (x[start + i] - mean) ** 2;
    variance /= dim;
    const inverse = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) {
      y[start + i] = (x[start + i] - mean) * inverse * weight[i] + (bias === null ? 0 : bias[i]);
    }
  }
  return y;
}

// The error function, which JavaScript's Math lacks. Accurate to about 1e-15 (the checks
// compare it with Python's math.erf from -8 to 8):
// - for |x| < 2, its Maclaurin series 2/√π · Σ (-1)^n x^(2n+1) / (n! (2n+1)), summed until a
//   term no longer changes the sum (at |x| = 2 the terms grow to about 20 before they shrink,
//   which costs under two of float64's sixteen digits);
// - for |x| >= 2, through erfc(x) = exp(-x²)/√π / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))),
//   Laplace's continued fraction, evaluated from the 60th level up; it converges fast for large x.
export function erf(x) {
  const a = Math.abs(x);
  if (a < 2) {
    let term = x;  // (-1)^n x^(2n+1) / n!
    let sum = x;
    for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= -x * x / n;
      sum += term / (2 * n + 1);
    }
    return sum * 2 / Math.sqrt(Math.PI);
  }
  let fraction = a;
  for (let k = 60; k >= 1; k--) fraction = a + (k / 2) / fraction;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / fraction;
  return Math.sign(x) * (1 - erfc);
}

// GELU, exactly: x · Φ(x) = x/2 · (1 + erf(x / √2)), in place; returns x.
// Mirrors torch.nn.functional.gelu with its default approximate="none" (what blocks.FeedForward
// uses), not GPT-2's tanh approximation.
export function gelu(x) {
  for (let i = 0; i < x.length; i++) x[i] = 0.5 * x[i] * (1 + erf(x[i] / Math.SQRT2));
  return x;
}

// x += y, element by element (the residual connection); returns x.
export function addInPlace(x, y) {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
  return x;
}

// The index of the largest entry, the first one among equals (torch.argmax's choice).
export function argmax(x) {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
