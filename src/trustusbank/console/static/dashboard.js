// Draws each time series panel of /d/dora-evidence with uPlot, from the panel's JSON
// (/api/panels/<id>, for the page's own absolute range). The page reads without this script:
// every value is in the table beneath the chart. Labels reach uPlot as data; it writes them
// with textContent, never as markup.
"use strict";
(function () {
  const PALETTE = ["#1f6feb", "#c53030", "#2f855a", "#b7791f", "#6b46c1", "#0e7490", "#9c4221", "#4a5568"];
  const HEIGHT = 220;

  function note(figure, text) {
    const p = document.createElement("p");
    p.className = "chart-note";
    p.textContent = text;
    figure.appendChild(p);
  }

  function width(figure) {
    return Math.max(200, Math.floor(figure.clientWidth));
  }

  async function draw(figure) {
    let data;
    try {
      const response = await fetch(figure.dataset.src, { headers: { Accept: "application/json" } });
      data = await response.json();
      if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
    } catch (err) {
      figure.dataset.state = "failed";
      note(figure, "The chart could not be drawn: " + err.message);
      return;
    }
    const series = [{ label: "Time (UTC)" }].concat(
      data.series.map((s, i) => ({
        label: s.name,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        points: { show: false },
      })),
    );
    const options = {
      width: width(figure),
      height: HEIGHT,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: series,
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max || 0)] } }, // counts start at zero
    };
    const plot = new uPlot(options, [data.times].concat(data.series.map((s) => s.values)), figure);
    if (data.series.length === 0) note(figure, "No data in this range.");
    for (const problem of data.errors) note(figure, problem);
    let drawnWidth = options.width;
    new ResizeObserver(() => {
      const now = width(figure);
      if (now !== drawnWidth) {
        drawnWidth = now;
        plot.setSize({ width: now, height: HEIGHT });
      }
    }).observe(figure);
    figure.dataset.state = "drawn";
  }

  document.querySelectorAll("figure.chart[data-src]").forEach(draw);
})();
