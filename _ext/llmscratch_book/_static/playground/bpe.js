// bpe.js: the course's byte-level BPE tokenizer, reading data/bpe_tokenizer.json.
//
// Mirrors llmscratch.bpe (pretokenization.py and tokenizer.py) and gives the same ids for any
// text: text becomes UTF-8 bytes (ids 0..255), special tokens such as <|endoftext|> are cut out
// whole, a regex cuts the rest into pre-tokens, and inside each pre-token the merges are
// replayed, lowest rank first; merge number r makes id 256 + r, and special tokens come last.
//
// The pattern is the file's own, written for Python's `regex` module. JavaScript runs it almost
// unchanged with the "u" flag (\p{L} and \p{N} mean the same), except for \s: Python's regex
// means Unicode's White_Space property, while JavaScript's \s leaves out U+0085 and adds U+FEFF.
// `toJsPattern` writes \p{White_Space} instead, and the checks compare the two engines'
// classes on every code point.
//
// Left out: training (the course trains in Python) and the heap of BPETokenizer._merge_ids:
// here the textbook loop replays the merges, which gives the same ids (that method's docstring
// says why) and is fast enough for the short pieces the pattern makes.

// Python's pattern as a JavaScript RegExp; null (no pre-tokenization) stays null.
export function toJsPattern(pattern) {
  if (pattern === null) return null;
  // \s and \S outside and inside brackets; a doubled backslash (a literal one) is left alone.
  const js = pattern.replace(/(\\\\)|\\s|\\S/g, (m, escaped) =>
    escaped ? m : m === "\\s" ? "\\p{White_Space}" : "\\P{White_Space}");
  return new RegExp(js, "gu");
}

// Cut `text` into pre-tokens. Mirrors llmscratch.bpe.pretokenization.pretokenize.
export function pretokenize(text, regexp) {
  if (regexp === null) return text ? [text] : [];
  const pieces = text.match(regexp) ?? [];
  if (pieces.reduce((n, p) => n + p.length, 0) !== text.length) {
    throw new Error(`the pre-tokenization pattern ${regexp} does not match every character of the text`);
  }
  return pieces;
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Cut `text` around every special token, keeping them: special tokens at odd positions,
// ordinary text at even ones (maybe ""). The longest special token wins where one is a
// prefix of another. Mirrors llmscratch.bpe.pretokenization.split_special.
export function splitSpecial(text, specialTokens) {
  if (specialTokens.length === 0) return [text];
  const longestFirst = [...specialTokens].sort((a, b) => b.length - a.length);
  // One capturing group: split then returns the separators too, at odd positions, as Python's does.
  return text.split(new RegExp("(" + longestFirst.map(escapeRegExp).join("|") + ")", "u"));
}

// Replace every occurrence of (a, b) in `ids` by `newId`, left to right, never overlapping.
// Mirrors llmscratch.bpe.train.merge.
export function merge(ids, a, b, newId) {
  const out = [];
  for (let i = 0; i < ids.length; i++) {
    if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
      out.push(newId);
      i++;
    } else {
      out.push(ids[i]);
    }
  }
  return out;
}

const utf8 = new TextEncoder();
const pairKey = (a, b) => a * 0x100000 + b;  // ids stay far below 2^20

// Mirrors llmscratch.bpe.tokenizer.BPETokenizer.
export class BPETokenizer {
  static FORMAT = "llmscratch.BPETokenizer";
  static VERSION = 1;

  constructor(merges, specialTokens = [], pattern = null) {
    this.vocab = [];  // id -> Uint8Array of its bytes
    for (let b = 0; b < 256; b++) this.vocab.push(Uint8Array.of(b));
    this.merges = merges.map(([a, b]) => [a, b]);
    this.ranks = new Map();  // pairKey(a, b) -> r
    this.merges.forEach(([a, b], r) => {
      if (!(a >= 0 && a < 256 + r && b >= 0 && b < 256 + r)) {
        throw new Error(`merge ${r} is [${a}, ${b}], but only ids 0..${255 + r} exist at that point`);
      }
      this.ranks.set(pairKey(a, b), r);
      const bytes = new Uint8Array(this.vocab[a].length + this.vocab[b].length);
      bytes.set(this.vocab[a]);
      bytes.set(this.vocab[b], this.vocab[a].length);
      this.vocab.push(bytes);
    });
    this.specialTokens = new Map(specialTokens.map((s, i) => [s, this.vocab.length + i]));
    for (const s of specialTokens) this.vocab.push(utf8.encode(s));
    this.pattern = pattern;
    this.regexp = toJsPattern(pattern);
    this.cache = new Map();  // pre-token -> ids
  }

  get vocabSize() {
    return this.vocab.length;
  }

  // The tokenizer a JSON file describes. Mirrors BPETokenizer.load.
  static fromJSON(data) {
    if (data.format !== BPETokenizer.FORMAT || data.version !== BPETokenizer.VERSION) {
      throw new Error(`not a ${BPETokenizer.FORMAT} file of version ${BPETokenizer.VERSION}: ` +
                      `format ${data.format}, version ${data.version}`);
    }
    return new BPETokenizer(data.merges, data.special_tokens, data.pattern);
  }

  static async load(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return BPETokenizer.fromJSON(await response.json());
  }

  // Apply the merges to one pre-token's byte ids: merge the lowest-ranked adjacent pair
  // everywhere, and repeat until no adjacent pair has a merge. Mirrors BPETokenizer._merge_ids.
  mergeIds(ids) {
    while (ids.length >= 2) {
      let best = Infinity;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = this.ranks.get(pairKey(ids[i], ids[i + 1]));
        if (r !== undefined && r < best) best = r;
      }
      if (best === Infinity) break;
      const [a, b] = this.merges[best];
      ids = merge(ids, a, b, 256 + best);
    }
    return ids;
  }

  // Mirrors BPETokenizer._encode_piece.
  encodePiece(piece) {
    let ids = this.cache.get(piece);
    if (ids === undefined) {
      ids = this.mergeIds(Array.from(utf8.encode(piece)));
      if (piece.length <= 64) this.cache.set(piece, ids);
    }
    return ids;
  }

  // Text to ids; special tokens become their single id. Mirrors BPETokenizer.encode, which
  // raises for text that is not valid Unicode (a lone surrogate): so does this.
  encode(text) {
    if (!text.isWellFormed()) throw new Error("the text holds a lone surrogate: it is not valid Unicode");
    const ids = [];
    splitSpecial(text, [...this.specialTokens.keys()]).forEach((part, index) => {
      if (index % 2) {
        ids.push(this.specialTokens.get(part));
      } else {
        for (const piece of pretokenize(part, this.regexp)) ids.push(...this.encodePiece(piece));
      }
    });
    return ids;
  }

  // The exact bytes of `ids`. Mirrors BPETokenizer.decode_bytes.
  decodeBytes(ids) {
    const parts = ids.map((i) => {
      if (!(Number.isInteger(i) && i >= 0 && i < this.vocab.length)) {
        throw new Error(`id ${i} is outside the vocabulary (0..${this.vocab.length - 1})`);
      }
      return this.vocab[i];
    });
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  // Ids to text; bytes that are not valid UTF-8 become U+FFFD. Mirrors BPETokenizer.decode
  // (Python's errors="replace" and TextDecoder follow the same rule for how many bytes one
  // U+FFFD replaces).
  decode(ids) {
    // ignoreBOM keeps a leading U+FEFF in the text, as Python's "utf-8" codec does (TextDecoder drops it otherwise).
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(this.decodeBytes(ids));
  }
}
