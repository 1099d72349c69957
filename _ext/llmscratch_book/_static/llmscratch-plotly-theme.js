// Restyles every Plotly figure for the book theme's light or dark mode, and again whenever the
// reader switches. pydata-sphinx-theme (under sphinx-book-theme) keeps the mode in
// <html data-theme="light|dark">; a MutationObserver reacts to the switch.
// Loaded only by pages that draw a figure (llmscratch_book adds it with app.add_js_file).
(function () {
  "use strict";
  var LIGHT = {font: "#2a3f5f", grid: "#dfe3eb", line: "#b0b8c6", plot: "#f5f7fb"};
  var DARK = {font: "#d6dbe3", grid: "#3a4150", line: "#5b6475", plot: "#1c2029"};
  function palette() {
    return document.documentElement.dataset.theme === "dark" ? DARK : LIGHT;
  }
  function restyle(div) {
    if (!div.layout || !window.Plotly) { return; }
    var p = palette();
    var update = {
      "paper_bgcolor": "rgba(0,0,0,0)",
      "plot_bgcolor": p.plot,
      "font.color": p.font,
      "legend.bgcolor": "rgba(0,0,0,0)"
    };
    Object.keys(div.layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        update[key + ".gridcolor"] = p.grid;
        update[key + ".linecolor"] = p.line;
        update[key + ".zerolinecolor"] = p.line;
      }
      if (/^scene\d*$/.test(key)) {
        ["xaxis", "yaxis", "zaxis"].forEach(function (ax) {
          update[key + "." + ax + ".gridcolor"] = p.grid;
          update[key + "." + ax + ".backgroundcolor"] = p.plot;
        });
      }
    });
    window.Plotly.relayout(div, update);
  }
  function restyleAll() {
    document.querySelectorAll(".plotly-graph-div").forEach(restyle);
  }
  document.addEventListener("DOMContentLoaded", function () {
    restyleAll();
    new MutationObserver(restyleAll).observe(document.documentElement, {
      attributes: true, attributeFilter: ["data-theme"]
    });
  });
})();
