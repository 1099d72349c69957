// views.js: what the playground page draws: tokens, the next-token bars, the attention map.
//
// Plain DOM and SVG, no library. Every function takes the numbers and an element, and rewrites
// that element; none keeps state. The numbers each view shows are also left on its elements as
// data attributes (data-ids, data-prob, data-w), at full precision, for tools/playground_check.py
// to compare with the package, and for anyone curious in the browser's inspector.
//
// Colours come from the stylesheet (playground.css), which follows the theme's light or dark mode.

const SVG = "http://www.w3.org/2000/svg";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Whitespace a reader could not see, drawn as a visible stand-in: ␣ and ↵ as in the chapters'
// labels (llmscratch.viz.visible_whitespace), and a few more.
const VISIBLE = { " ": "␣", "\n": "↵", "\t": "→", "\r": "␍", "\u00a0": "⍽" };

function el(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function svgEl(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  return node;
}

// One token as the page shows it: { text, title, special, partial }. A token whose bytes are
// not whole UTF-8 characters (a piece of an emoji, say) is shown as its bytes, "\xf0\x9f", as
// BPETokenizer.token_str shows it.
export function describeToken(tokenizer, id, visible = true) {
  const bytes = tokenizer.decodeBytes([id]);
  const special = id >= tokenizer.vocabSize - tokenizer.specialTokens.size;
  let text;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    const hex = Array.from(bytes, (b) => "\\x" + b.toString(16).padStart(2, "0")).join("");
    return { text: hex, title: `token ${id}: the bytes ${hex}, part of a character`, special, partial: true };
  }
  const shown = special || !visible ? text : Array.from(text, (c) => VISIBLE[c] ?? c).join("");
  return { text: shown, title: `token ${id}: ${JSON.stringify(text)}`, special, partial: false };
}

// A token as a chip: its text with visible whitespace (or as it is, with `visible` false), its id
// in the tooltip. Neighbouring chips alternate colours, so the boundaries show.
export function tokenChip(tokenizer, id, index, visible = true) {
  const t = describeToken(tokenizer, id, visible);
  const chip = el("span", { class: `pg-tok pg-tok-${index % 4}`, "data-id": String(id), title: t.title }, t.text);
  if (t.special) chip.classList.add("pg-tok-special");
  if (t.partial) chip.classList.add("pg-tok-partial");
  return chip;
}

// Rewrite `container` as the chips of `ids`, breaking the line after a token that ends in a newline.
export function drawTokens(container, tokenizer, ids) {
  container.replaceChildren();
  container.dataset.ids = "";
  appendTokens(container, tokenizer, ids);
}

// Add the chips of `ids` after those already in `container`, and their ids to its data-ids.
export function appendTokens(container, tokenizer, ids, visible = true) {
  const before = container.dataset.ids ? container.dataset.ids.split(" ") : [];
  ids.forEach((id, i) => {
    const chip = tokenChip(tokenizer, id, before.length + i, visible);
    container.append(chip);
    if (visible && chip.textContent.endsWith(VISIBLE["\n"]) && !chip.classList.contains("pg-tok-special")) {
      container.append(el("br"));
    }
  });
  container.dataset.ids = before.concat(ids.map(String)).join(" ");
}

const percent = (p) => (p >= 0.001 ? `${(100 * p).toFixed(1)} %` : p > 0 ? "< 0.1 %" : "0 %");

// The next-token bars: the `count` tokens with the largest logits, most likely first. Each bar is
// the probability the sampler would use (`probs`, after temperature and the cut); the outline
// behind it is the probability after temperature alone (`before`), so renormalisation shows as a
// bar longer than its outline, and a token the cut removed as an empty outline marked "cut".
export function drawBars(list, summary, tokenizer, logits, probs, before, count = 20) {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, count);
  const scale = Math.max(...order.map((i) => Math.max(probs[i], before[i])), 1e-12);
  list.replaceChildren();
  order.forEach((id, rank) => {
    const kept = probs[id] > 0;
    const item = el("li", { class: kept ? "pg-bar" : "pg-bar pg-cut", "data-rank": String(rank + 1),
                            "data-id": String(id), "data-prob": String(probs[id]),
                            "data-before": String(before[id]) });
    const track = el("span", { class: "pg-bar-track", "aria-hidden": "true" });
    track.append(el("span", { class: "pg-bar-before", style: `width: ${(100 * before[id] / scale).toFixed(2)}%` }),
                 el("span", { class: "pg-bar-fill", style: `width: ${(100 * probs[id] / scale).toFixed(2)}%` }));
    const chip = tokenChip(tokenizer, id, 0);
    chip.className = "pg-tok";  // one colour: here the bars, not the chips, tell the tokens apart
    item.append(chip, track,
                el("span", { class: "pg-bar-value" }, kept ? percent(probs[id]) : "cut"));
    list.append(item);
  });
  const survivors = probs.reduce((n, p) => n + (p > 0 ? 1 : 0), 0);
  const heldBefore = before.reduce((s, p, i) => s + (probs[i] > 0 ? p : 0), 0);
  const top = order.slice(0, 5).filter((i) => probs[i] > 0)
    .map((i) => `${JSON.stringify(tokenizer.decode([i]))} ${percent(probs[i])}`).join(", ");
  const cut = survivors === logits.length ? `No cut: all ${survivors} tokens can be drawn.`
    : `${survivors} of ${logits.length} tokens survive the cut; they held ${percent(heldBefore)} before renormalising.`;
  summary.textContent = `${cut} Most likely: ${top}.`;
  list.dataset.ids = order.join(" ");
}

// The attention map of one head: rows are queries, columns keys, both the last `shown` tokens of
// the text; the masked future is left blank, as in the Part 2 figures. `rows[p]` holds query p's
// weights over keys 0..p. When the text has more tokens than the map shows, a first column
// "earlier" holds the weight each query gives to all the keys before them, so every row sums to 1.
export function drawAttention(svg, caption, tokenizer, ids, rows, { layer, head, modelName, shown }) {
  const T = ids.length;
  const start = Math.max(0, T - shown);
  const n = T - start;
  const earlier = start > 0 ? 1 : 0;  // the extra column
  const cell = 16;
  const labels = ids.map((id) => describeToken(tokenizer, id).text);
  const labelWidth = 8 + 7 * Math.min(12, Math.max(...labels.slice(start).map((l) => l.length), 6));
  const left = labelWidth + 4;
  const top = 4;
  const width = left + (n + earlier) * cell + 4;
  const height = top + n * cell + labelWidth + 4;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  const short = (s) => (s.length > 12 ? s.slice(0, 11) + "…" : s);
  const grid = svgEl("g", { class: "pg-heat" });
  for (let q = start; q < T; q++) {
    const y = top + (q - start) * cell;
    const label = svgEl("text", { x: left - 4, y: y + cell / 2, class: "pg-heat-label pg-heat-query" });
    label.textContent = short(labels[q]);
    svg.append(label);
    // Under the weights, the keys this query may see: weight 0 shows as this, the masked future as nothing.
    const seen = (q - start + 1 + earlier) * cell;
    grid.append(svgEl("rect", { x: left, y, width: seen, height: cell, class: "pg-heat-base" }));
    const row = rows[q];
    const cells = earlier ? [[-1, row.subarray(0, start).reduce((a, b) => a + b, 0)]] : [];
    for (let k = start; k <= q; k++) cells.push([k, row[k]]);
    for (const [k, w] of cells) {
      const x = left + (k < 0 ? 0 : k - start + earlier) * cell;
      const rect = svgEl("rect", { x, y, width: cell, height: cell, class: "pg-heat-cell", "fill-opacity": w.toFixed(4),
                                   "data-q": q, "data-k": k, "data-w": String(w) });
      const title = svgEl("title");
      const key = k < 0 ? `the ${start} earlier keys` : `key ${JSON.stringify(labels[k])} (position ${k})`;
      title.textContent = `query ${JSON.stringify(labels[q])} (position ${q}) → ${key}: ${w.toFixed(3)}`;
      rect.append(title);
      grid.append(rect);
    }
  }
  svg.prepend(grid);
  const columns = earlier ? ["earlier"] : [];
  for (let k = start; k < T; k++) columns.push(short(labels[k]));
  columns.forEach((text, c) => {
    const x = left + c * cell + cell / 2;
    const y = top + n * cell + 4;
    const label = svgEl("text", { x, y, class: "pg-heat-label pg-heat-key", transform: `rotate(-90 ${x} ${y})` });
    label.textContent = text;
    svg.append(label);
  });
  svg.dataset.layer = String(layer);
  svg.dataset.head = String(head);
  svg.dataset.start = String(start);
  // The text alternative: what the picture shows, and where the last token looks most.
  const last = rows[T - 1];
  const best = Array.from(last.keys()).sort((a, b) => last[b] - last[a]).slice(0, 3)
    .map((k) => `${JSON.stringify(labels[k])} at position ${k} (${last[k].toFixed(2)})`).join(", ");
  const span = start > 0 ? `the last ${n} of your ${T} tokens` : `your ${T} tokens`;
  caption.textContent = `Attention weights of layer ${layer + 1}, head ${head + 1} of ${modelName}, on ${span}. ` +
    "Row: the query token; column: a key token it may look at; a stronger blue means more weight, and each row " +
    `sums to 1. The future (above the diagonal) is masked and left blank. The last token, ` +
    `${JSON.stringify(labels[T - 1])}, looks most at ${best}.`;
}
