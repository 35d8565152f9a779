// market-backfill console: plain DOM, no build step. Every URL is relative to the page
// (<airflow>/market-backfill/); the Airflow UI's root is "../".
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const fmt = new Intl.NumberFormat("en-US");
const loaded = {};

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace(/(:\d\d)(\.\d+)?\+00:00$/, "$1Z") : "";
}

async function api(name, params = {}) {
  const url = new URL(`api/${name}`, document.baseURI);
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) url.searchParams.set(k, v);
  const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    throw new Error(`${name}: HTTP ${resp.status} ${JSON.stringify(body.detail ?? "")}`);
  }
  return resp.json();
}

function showError(err) {
  const box = $("#error");
  box.textContent = err ? String(err.message ?? err) : "";
  box.hidden = !err;
}

function formParams(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// ---- tabs -------------------------------------------------------------------------------
function selectTab(name) {
  for (const b of $$("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of $$("section[role=tabpanel]")) s.hidden = s.id !== name;
  if (!loaded[name]) LOADERS[name]().catch(showError);
}

// ---- completeness heatmap -----------------------------------------------------------------
function bucket(row) {
  if (row.percent == null) return "none";
  if (row.stored === 0) return "p0";
  if (row.percent >= 100) return "p100";
  if (row.percent >= 99) return "p99";
  if (row.percent >= 95) return "p95";
  if (row.percent >= 80) return "p80";
  return "plow";
}

function monthEnd(month) {
  const [y, m] = month.split("-").map(Number);
  return new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
}

function renderHeatmap(rows) {
  const started = performance.now();
  const months = [...new Set(rows.map((r) => r.month))].sort();
  const col = new Map(months.map((m, i) => [m, i]));
  const series = new Map();
  for (const r of rows) {
    const key = `${r.symbol}|${r.roll_rule}|${r.rank}`;
    if (!series.has(key)) series.set(key, { label: r.series, symbol: r.symbol, cells: new Array(months.length) });
    series.get(key).cells[col.get(r.month)] = r;
  }
  const head = months.map((m) => `<th scope="col">${m}</th>`).join("");
  const body = [];
  for (const s of series.values()) {
    const cells = s.cells.map((r, i) => {
      if (!r) return `<td class="none" title="${esc(s.label)} ${months[i]}: no data"></td>`;
      const tip = `${r.series} ${r.month}: expected ${fmt.format(r.expected ?? 0)}, stored ` +
        `${fmt.format(r.stored)} (${r.percent ?? "?"}%), open gaps ${r.open_gaps}` +
        (r.unfillable_gaps ? `, unfillable ${r.unfillable_gaps}` : "");
      const mark = r.open_gaps ? " gapmark" : "";
      return `<td class="${bucket(r)}${mark}" data-symbol="${esc(r.symbol)}" data-month="${r.month}" ` +
        `data-expected="${r.expected ?? ""}" data-stored="${r.stored}" data-open-gaps="${r.open_gaps}" ` +
        `title="${esc(tip)}"></td>`;
    });
    body.push(`<tr data-series="${esc(s.label)}"><th scope="row">${esc(s.label)}</th>${cells.join("")}</tr>`);
  }
  $("#heatmap").classList.toggle("roomy", months.length <= 48);
  $("#heatmap").innerHTML = `<thead><tr><th></th>${head}</tr></thead><tbody>${body.join("")}</tbody>`;
  const ms = performance.now() - started;
  document.body.dataset.heatmapRenderMs = ms.toFixed(1);
  document.body.dataset.heatmapCells = String(rows.length);
  return { series: series.size, months: months.length };
}

function monthInput(day) {
  return day ? `${day}-01` : "";
}

async function loadCompleteness() {
  loaded.completeness = true;
  const form = $("#completeness-filter");
  const p = formParams(form);
  const started = performance.now();
  const rows = await api("completeness", {
    symbol: p.symbol,
    start: monthInput(p.start),
    end: p.end ? monthEnd(p.end) : "",
  });
  document.body.dataset.completenessFetchMs = (performance.now() - started).toFixed(1);
  const shape = renderHeatmap(rows);
  const expected = rows.reduce((a, r) => a + (r.expected ?? 0), 0);
  const stored = rows.reduce((a, r) => a + r.stored, 0);
  const open = rows.reduce((a, r) => a + r.open_gaps, 0);
  $("#summary").textContent = `${shape.series} series, ${shape.months} months: ` +
    `${fmt.format(stored)} of ${fmt.format(expected)} trading minutes stored` +
    (expected ? ` (${(100 * stored / expected).toFixed(2)}%)` : "") + `, ${open} open gaps`;
  document.body.dataset.heatmapReadyAt = performance.now().toFixed(1);  // since navigation
  document.body.dataset.ready = "completeness";
}

function openMonthGaps(cell) {
  const form = $("#gaps-filter");
  if (![...form.symbol.options].some((o) => o.value === cell.dataset.symbol)) {
    form.symbol.add(new Option(cell.dataset.symbol, cell.dataset.symbol));
  }
  form.symbol.value = cell.dataset.symbol;
  form.status.value = "";
  form.start.value = `${cell.dataset.month}-01`;
  form.end.value = monthEnd(cell.dataset.month);
  loaded.gaps = false;
  selectTab("gaps");
}

// ---- gaps --------------------------------------------------------------------------------
async function loadGaps() {
  loaded.gaps = true;
  const rows = await api("gaps", formParams($("#gaps-filter")));
  const head = ["Series", "Gap start (UTC)", "Gap end", "Minutes", "Status", "Attempts",
    "Detected", "Filled", "Last error"];
  $("#gaps-table").innerHTML = `<thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.map((g) => `<tr class="gap" data-symbol="${esc(g.symbol)}" data-gap-start="${g.gap_start}">` +
      `<td>${esc(g.series)}</td><td>${when(g.gap_start)}</td><td>${when(g.gap_end)}</td>` +
      `<td class="num">${fmt.format(g.minutes)}</td><td class="status-${g.status}">${g.status}</td>` +
      `<td class="num">${g.attempts}</td><td>${when(g.detected_at)}</td><td>${when(g.filled_at)}</td>` +
      `<td>${esc(g.last_error)}</td></tr>`).join("") ||
      `<tr><td colspan="${head.length}" class="muted">No gap matches.</td></tr>`}</tbody>`;
  document.body.dataset.ready = "gaps";
}

// ---- runs --------------------------------------------------------------------------------
function chunkRows(run) {
  const head = ["Symbol", "Chunk", "Status", "Attempts", "Rows written", "Commits", "Retries",
    "Finished", "Error"];
  const rows = run.chunk_rows.map((c) => {
    const n = c.counts || {};
    return `<tr><td>${esc(c.symbol)}</td><td>${esc(c.chunk)}</td><td class="status-${c.status}">${c.status}</td>` +
      `<td class="num">${c.attempts}</td><td class="num">${fmt.format(n.rows_written ?? 0)}</td>` +
      `<td class="num">${n.commits ?? ""}</td><td class="num">${n.retries ?? ""}</td>` +
      `<td>${when(c.finished_at)}</td><td>${esc(c.error)}</td></tr>`;
  });
  return `<table class="grid"><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table>`;
}

async function loadRuns() {
  loaded.runs = true;
  const runs = await api("runs", { limit: 50 });
  const head = ["DAG", "Run", "Status", "Started (UTC)", "Finished", "Chunks", "Failed",
    "Rows written", "Commits", "Retries", "Estimated cost"];
  const body = runs.map((r, i) => `<tr class="run" data-index="${i}">` +
    `<td>${esc(r.dag_id)}</td><td><a href="../${r.airflow_path}" target="_top">${esc(r.run_id)}</a></td>` +
    `<td class="status-${r.status}">${r.status}</td><td>${when(r.started_at)}</td><td>${when(r.finished_at)}</td>` +
    `<td class="num">${r.chunks}</td><td class="num">${r.chunks_failed}</td>` +
    `<td class="num">${fmt.format(r.rows_written)}</td><td class="num">${r.commits}</td>` +
    `<td class="num">${r.retries}</td>` +
    `<td class="num">${r.estimated_cost_usd == null ? "" : "$" + r.estimated_cost_usd.toFixed(2)}</td></tr>` +
    `<tr class="chunks" hidden><td colspan="${head.length}">${chunkRows(r)}</td></tr>`);
  $("#runs-table").innerHTML = `<thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead>` +
    `<tbody>${body.join("") || `<tr><td colspan="${head.length}" class="muted">No runs yet.</td></tr>`}</tbody>`;
  document.body.dataset.ready = "runs";
}

// ---- freshness ---------------------------------------------------------------------------
async function loadFreshness() {
  loaded.freshness = true;
  const rows = await api("freshness", formParams($("#freshness-filter")));
  const head = ["Series", "Calendar", "Newest bar (UTC)", "Lag (trading minutes)", ""];
  $("#freshness-table").innerHTML = `<thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.map((f) => `<tr data-symbol="${esc(f.symbol)}"><td>${esc(f.series)}</td>` +
      `<td>${esc(f.calendar)}</td><td>${when(f.newest_bar)}</td>` +
      `<td class="num">${f.lag_minutes == null ? "" : fmt.format(f.lag_minutes)}</td>` +
      `<td class="${f.stale ? "stale" : "status-success"}">${f.stale ? "stale" : "fresh"}</td></tr>`).join("")}</tbody>`;
  document.body.dataset.ready = "freshness";
}

const LOADERS = { completeness: loadCompleteness, gaps: loadGaps, runs: loadRuns, freshness: loadFreshness };

async function fillSymbols() {
  const rows = await api("freshness");
  const symbols = [...new Set(rows.map((r) => r.symbol))].sort();
  for (const select of $$("select.symbols")) {
    select.insertAdjacentHTML("beforeend", symbols.map((s) => `<option>${esc(s)}</option>`).join(""));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of $$("#tabs button")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  for (const [name, load] of Object.entries(LOADERS)) {
    const form = $(`#${name}-filter`);
    if (form) form.addEventListener("submit", (e) => { e.preventDefault(); showError(null); load().catch(showError); });
  }
  $("#heatmap").addEventListener("click", (e) => {
    const cell = e.target.closest("td[data-month]");
    if (cell) openMonthGaps(cell);
  });
  $("#runs-table").addEventListener("click", (e) => {
    if (e.target.closest("a")) return;
    const row = e.target.closest("tr.run");
    if (row) row.nextElementSibling.hidden = !row.nextElementSibling.hidden;
  });
  fillSymbols().catch(showError);
  loadCompleteness().catch(showError);
});
