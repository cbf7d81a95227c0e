// edge-asc dashboard: fills the page from the JSON API and the live feed (/api/live).
"use strict";

const $ = (id) => document.getElementById(id);
const pct = (p) => `${Math.round(100 * p)} %`;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

function live(handlers) {
  const source = new EventSource("/api/live");
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (msg) => handler(JSON.parse(msg.data)));
  }
  source.onerror = () => { if ($("status")) $("status").textContent = "reconnecting…"; };
  source.onopen = () => { if ($("status")) $("status").textContent = "live"; };
  return source;
}

function showWindow(data) {
  const w = data.window;
  if (data.ended) $("status").textContent = "the stream ended";
  if (!w) return;
  $("label").textContent = w.label;
  $("label").className = w.label === "uncertain" || w.label === "silence" ? "quiet" : "";
  $("confidence").textContent = pct(w.confidence);
  const bars = $("bars");
  bars.replaceChildren(...w.top_k.map(([label, p]) => {
    const row = el("div", null, { class: "bar" });
    const fill = el("i");
    fill.style.width = `${(100 * p).toFixed(1)}%`; // CSSOM: allowed by the page's CSP
    const track = el("b");
    track.append(fill);
    row.append(el("span", label), track, el("span", pct(p)));
    return row;
  }));
  $("level").value = Math.max(-120, w.dbfs);
  $("dbfs").textContent = `${w.dbfs.toFixed(1)} dBFS`;
  $("event").textContent = w.event
    ? `event: ${w.event.label} since ${w.event.start.slice(11, 19)} UTC (${w.event.duration_s.toFixed(1)} s)`
    : "";
  $("warnings").replaceChildren(...w.warnings.map((text) => el("li", text)));
  $("time").textContent = `${w.time.slice(11, 23)} UTC`;
  $("model").textContent = w.model;
}

function pageNow() {
  if (document.body.dataset.live !== "1") return; // `edge-asc serve`: no audio behind it
  getJSON("/api/now").then(showWindow).catch((e) => { $("status").textContent = e.message; });
  live({ window: showWindow });
}

function pageToday() {
  const load = () => getJSON("/api/today").then((data) => {
    const classes = Object.keys(data.totals);
    const head = el("tr");
    head.append(el("th", "hour (UTC)"), ...classes.map((c) => el("th", c)));
    $("hours").tHead.replaceChildren(head);
    $("hours").tBodies[0].replaceChildren(...data.hours.filter((h) => Object.keys(h.counts).length)
      .map((h) => {
        const row = el("tr");
        row.append(el("td", h.hour.slice(0, 16).replace("T", " ")),
          ...classes.map((c) => el("td", h.counts[c] || "")));
        return row;
      }));
    $("timeline").src = `/api/today.svg?t=${Date.now()}`;
  });
  load();
  setInterval(load, 60000);
}

function eventRow(e) {
  const row = el("tr", null, { "data-id": e.id });
  const clip = el("td");
  if (e.clip) clip.append(el("audio", null, { controls: "", preload: "none", src: e.clip }));
  row.append(el("td", e.start.slice(0, 19).replace("T", " ")), el("td", e.label),
    el("td", `${e.duration_s.toFixed(1)} s`), el("td", pct(e.peak_confidence)),
    el("td", `${e.peak_dbfs.toFixed(1)} dBFS`), clip);
  return row;
}

function pageEvents() {
  const form = $("filters");
  const body = $("events").tBodies[0];
  const count = () => { $("count").textContent = `${body.rows.length} events shown`; };
  const load = () => {
    const query = new URLSearchParams(new FormData(form));
    getJSON(`/api/events?${query}`).then((data) => {
      body.replaceChildren(...data.events.map(eventRow));
      count();
    }).catch((e) => { $("count").textContent = e.message; });
  };
  form.addEventListener("change", load);
  load();
  if (document.body.dataset.live === "1") {
    live({
      detection: (e) => {
        const label = form.elements.label.value;
        if ((label && e.label !== label) || body.querySelector(`tr[data-id="${e.id}"]`)) return;
        body.prepend(eventRow(e));
        count();
      },
    });
  }
}

function pageModel() {
  getJSON("/api/model").then((data) => {
    const card = data.card;
    const list = $("card");
    const add = (term, value) => list.append(el("dt", term), el("dd", value));
    add("id", data.id);
    for (const [key, value] of Object.entries(card)) {
      if (value === null || typeof value !== "object") add(key, String(value));
      else if (Array.isArray(value) && value.every((v) => typeof v !== "object")) add(key, value.join(", "));
    }
    $("raw").textContent = JSON.stringify(card, null, 2);
  });
}

({ now: pageNow, today: pageToday, events: pageEvents, model: pageModel })[document.body.dataset.page]();
