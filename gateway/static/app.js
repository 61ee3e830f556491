// Scribe's page: upload with byte progress, the job list, live stage progress over SSE,
// the transcript with a player that follows it, corrections (rename a speaker, edit a line,
// give it to another speaker, undo any of them) and known voices.
// Plain JavaScript, no build step; every request goes to the gateway's /v1 API.
"use strict";

// The stages a job runs, from the server's graph (GET /v1/stages), loaded at start.
let STAGES = [];
let STAGE_INFO = {};
// Dark enough for text on white (WCAG AA), distinct enough side by side.
const COLOURS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf"];
const FORMATS = ["txt", "srt", "vtt", "json"];
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- small helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function clock(s) {
  s = Math.max(0, Math.floor(s || 0));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 0.05) return "< 0.1 s";
  return s < 10 ? `${s.toFixed(1)} s` : s < 90 ? `${Math.round(s)} s` : clock(s);
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function when(iso) {
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function defaultName(label) {
  const m = /^S(\d+)$/.exec(label);
  return m ? `Speaker ${m[1]}` : label;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// ---- API key: only when the server asks for one (auth on). Kept in this browser only.

const KEY_STORE = "scribe.apiKey";

function apiKey() {
  try { return localStorage.getItem(KEY_STORE) || ""; } catch { return ""; }
}

function withKey(headers) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

function showKeyField(message) {
  let box = $("api-key");
  if (!box) {
    const input = el("input", { id: "api-key-input", type: "password", autocomplete: "off", placeholder: "scr_…" });
    input.value = apiKey();
    box = el("form", { id: "api-key", class: "api-key", style: "display:flex;gap:.5rem;align-items:center;margin:.5rem 0" },
      el("label", {}, "API key ", input),
      el("button", { type: "submit", class: "quiet", text: "Save" }),
      el("span", { id: "api-key-status", class: "status", role: "status" }));
    box.addEventListener("submit", (e) => {
      e.preventDefault();
      const value = input.value.trim();
      try {
        if (value) localStorage.setItem(KEY_STORE, value); else localStorage.removeItem(KEY_STORE);
      } catch { /* storage disabled: the key lasts until the page is left */ }
      setStatus($("api-key-status"), value ? "Saved." : "Cleared.");
      refreshJobs(); refreshPeople(); route();
    });
    document.querySelector("header.top").append(box);
  }
  if (message) setStatus($("api-key-status"), message, true);
}

// EventSource and <audio> cannot send headers: a short-lived token stands in for the key.
async function streamToken(id) {
  return (await api(`/v1/jobs/${id}/events/token`, { method: "POST" })).token;
}

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: withKey(options.body ? { "Content-Type": "application/json", ...options.headers } : options.headers),
  });
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (res.status === 401) showKeyField(body?.error?.message || "This server needs an API key.");
  if (!res.ok) throw new ApiError(res.status, body?.error?.message || `the server answered ${res.status}`);
  return body;
}

function setStatus(node, text, bad = false) {
  node.textContent = text;
  node.classList.toggle("bad", bad);
}

// ---------------------------------------------------------------- upload

const form = $("upload-form"), fileInput = $("file"), drop = $("drop");

function showChosen() {
  const f = fileInput.files[0];
  $("drop-text").textContent = f ? `${f.name} · ${bytes(f.size)}` : "Drop an audio or video file here, or choose one";
  drop.classList.toggle("has-file", Boolean(f));
}
fileInput.addEventListener("change", showChosen);
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault(); drop.classList.add("over");
}));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  if (e.dataTransfer.files.length) { fileInput.files = e.dataTransfer.files; showChosen(); }
});

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const status = $("upload-status");
  const file = fileInput.files[0];
  if (!file) { setStatus(status, "Choose a file first.", true); fileInput.focus(); return; }
  const data = new FormData();
  for (const [k, v] of new FormData(form)) if (k !== "file" && String(v).trim() !== "") data.append(k, v);
  data.append("file", file); // last, so the options arrive before the big part

  const bar = $("upload-progress"), submit = $("submit");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/jobs");
  if (apiKey()) xhr.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
  xhr.upload.onprogress = (ev) => {
    if (!ev.lengthComputable) return;
    bar.value = ev.loaded / ev.total;
    setStatus(status, `Uploading… ${bytes(ev.loaded)} of ${bytes(ev.total)} (${Math.round(100 * bar.value)}%)`);
  };
  const done = () => { submit.disabled = false; $("upload-meter").hidden = true; };
  xhr.onload = () => {
    done();
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 202 && body) {
      setStatus(status, `Uploaded ${file.name}. Processing…`);
      form.reset(); showChosen();
      refreshJobs();
      location.hash = `#/jobs/${body.id}`;
    } else {
      if (xhr.status === 401) showKeyField(body?.error?.message);
      setStatus(status, `Upload refused: ${body?.error?.message || `the server answered ${xhr.status}`}`, true);
    }
  };
  xhr.onerror = () => { done(); setStatus(status, "The upload failed: the server could not be reached.", true); };
  bar.value = 0; $("upload-meter").hidden = false; submit.disabled = true;
  setStatus(status, "Uploading…");
  xhr.send(data);
});

// ---------------------------------------------------------------- job list

let jobs = [];
const speakerCache = new Map(); // job id -> speakers of a succeeded job (names as corrected)

async function refreshJobs() {
  try { jobs = await api("/v1/jobs?limit=30"); } catch { return; }
  renderJobs();
  const missing = jobs.filter((j) => j.status === "succeeded" && !speakerCache.has(j.id));
  await Promise.all(missing.map(async (j) => {
    try { speakerCache.set(j.id, await api(`/v1/jobs/${j.id}/speakers`)); } catch { /* later */ }
  }));
  if (missing.length) renderJobs();
}

function speakerSummary(job) {
  const speakers = speakerCache.get(job.id);
  if (!speakers) return null;
  if (!speakers.length) return "no speech";
  const count = `${speakers.length} speaker${speakers.length > 1 ? "s" : ""}`;
  // Names only once someone is named; "Speaker 1, Speaker 2" says nothing the count does not.
  if (!speakers.some((s) => s.name)) return count;
  return `${count}: ${speakers.map((s) => s.name || defaultName(s.id)).join(", ")}`;
}

let jobsDrawn = "";

function renderJobs() {
  const list = $("job-list");
  $("jobs-empty").hidden = jobs.length > 0;
  // Redraw only on change, so the periodic refresh never moves keyboard focus.
  const drawn = JSON.stringify([current?.id, jobs.map((j) => [j.id, j.status, j.duration_s, j.language, speakerSummary(j)])]);
  if (drawn === jobsDrawn) return;
  jobsDrawn = drawn;
  list.replaceChildren(...jobs.map((job) => {
    const facts = [when(job.created_at), job.duration_s ? clock(job.duration_s) : null,
      job.language ? job.language.toUpperCase() : null, speakerSummary(job)].filter(Boolean);
    const name = job.filename || "recording";
    return el("li", { class: job.id === current?.id ? "current" : "", "data-job": job.id },
      el("a", { href: `#/jobs/${job.id}`, "aria-current": job.id === current?.id ? "true" : null },
        el("span", { class: "job-name" },
          el("strong", { text: name, title: name }),
          el("span", { class: `badge ${job.status}`, text: job.status })),
        el("span", { class: "job-facts", text: facts.join(" · ") })),
      el("button", {
        type: "button", class: "danger", text: "✕", title: `Delete ${name}`, "aria-label": `Delete ${name}`,
        onclick: () => deleteJob(job, name),
      }));
  }));
}

async function deleteJob(job, name) {
  if (!confirm(`Delete “${name}”, its transcript and its audio?`)) return;
  try { await api(`/v1/jobs/${job.id}`, { method: "DELETE" }); } catch (e) { alert(e.message); return; }
  speakerCache.delete(job.id);
  if (current?.id === job.id) location.hash = "";
  refreshJobs();
}

$("jobs-refresh").addEventListener("click", refreshJobs);

// ---------------------------------------------------------------- search across meetings

// A hit opens its job and plays from its moment once the transcript and player are there.
let pendingSeek = null; // {id, t}

$("search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = $("search-q").value.trim();
  const status = $("search-status");
  $("search-results").replaceChildren();
  if (!q) { setStatus(status, "Type what to look for.", true); return; }
  setStatus(status, "Searching…");
  let found;
  try { found = await api(`/v1/search?q=${encodeURIComponent(q)}&limit=10`); } catch (err) {
    setStatus(status, err.message, true);
    return;
  }
  setStatus(status, found.hits.length ? "" : "Nothing found.");
  $("search-results").replaceChildren(...found.hits.map((h) => el("li", {},
    el("button", {
      type: "button", class: "hit",
      onclick: () => openMoment(h.job_id, h.start),
      "aria-label": `${h.file_name || h.job_id} at ${clock(h.start)}, ${h.speaker}: ${h.text}`,
    },
    el("span", { class: "hit-where", text: `${h.file_name || h.job_id} · ${clock(h.start)} · ${h.speaker}` }),
    el("span", { class: "hit-text", text: h.text })))));
});

function openMoment(id, t) {
  if (current?.id === id && current.result) { seek(t); return; }
  pendingSeek = { id, t };
  if (location.hash === `#/jobs/${id}`) openJob(id); else location.hash = `#/jobs/${id}`;
}

function seekWhenReady(jobId) {
  if (!pendingSeek || pendingSeek.id !== jobId) return;
  const { t } = pendingSeek;
  pendingSeek = null;
  if (player.readyState >= 1) seek(t);
  else player.addEventListener("loadedmetadata", () => seek(t), { once: true });
}

// ---------------------------------------------------------------- the selected job

let current = null; // {id, job, source, rows, timer, result}

function lastEventKey(id) { return `scribe:last-event:${id}`; }

function closeCurrent() {
  if (!current) return;
  current.source?.close();
  clearInterval(current.timer);
  current = null;
}

function route() {
  const m = /^#\/jobs\/([0-9a-f-]{36})$/.exec(location.hash);
  if (!m) { closeCurrent(); showPlaceholder(); renderJobs(); return; }
  openJob(m[1]);
}
window.addEventListener("hashchange", route);

function showPlaceholder() {
  $("job-placeholder").hidden = false;
  $("job-detail").hidden = true;
}

async function openJob(id) {
  closeCurrent();
  current = { id, rows: stageRows(), result: null };
  const mine = current;
  $("job-placeholder").hidden = true;
  $("job-detail").hidden = false;
  $("result").hidden = true;
  $("job-error").hidden = true;
  $("replay").hidden = true;
  $("job-title").textContent = "Loading…";
  $("job-meta").textContent = "";
  renderJobs();
  let job;
  try { job = await api(`/v1/jobs/${id}`); } catch (e) {
    if (current !== mine) return;
    $("job-title").textContent = "Not found";
    $("job-meta").textContent = e.message;
    return;
  }
  if (current !== mine) return;
  mine.job = job;
  showJobHead(job);
  applyStageStates(job);
  mine.timer = setInterval(tick, 500);
  if (job.status === "succeeded" || job.status === "failed") finish(job);
  else follow(sessionStorage.getItem(lastEventKey(id)));
}

function showJobHead(job) {
  $("job-title").textContent = job.filename || "recording";
  const facts = [`${job.status}`, `uploaded ${when(job.created_at)}`, bytes(job.size_bytes),
    job.duration_s ? `${clock(job.duration_s)} long` : null, job.language ? `language ${job.language}` : null];
  $("job-meta").textContent = facts.filter(Boolean).join(" · ");
  $("replay-speakers").value = job.params?.num_speakers ?? "";
  $("replay-language").value = job.params?.language ?? "";
}

// ---- stages

// `stage` and every stage that reads it, directly or not (what a replay runs again).
function downstream(stage) {
  const found = new Set([stage]);
  for (const s of STAGES) if ((STAGE_INFO[s]?.inputs || []).some((i) => found.has(i))) found.add(s);
  return STAGES.filter((s) => found.has(s));
}

async function loadStages() {
  const stages = await api("/v1/stages");
  STAGES = stages.map((s) => s.name);
  STAGE_INFO = Object.fromEntries(stages.map((s) => [s.name, s]));
  // "Run a stage again": every stage, diarize first chosen (the usual reason: a speaker count).
  $("replay-stage").replaceChildren(...stages.map((s) => el("option",
    { value: s.name, text: s.name, title: s.label, ...(s.name === "diarize" ? { selected: "" } : {}) })));
}

function stageRows() {
  const rows = {};
  $("stages").replaceChildren(...STAGES.map((s) => {
    const bar = el("progress", { max: "1", value: "0", "aria-label": `${s} progress` });
    const state = el("span", { class: "stage-state", text: "waiting" });
    const li = el("li", { class: "waiting", "data-stage": s, title: STAGE_INFO[s]?.label || s },
      el("span", { class: "stage-name", text: s }), bar, state);
    rows[s] = { li, bar, state, status: "waiting", startedAt: null, elapsed: null, fraction: 0 };
    return li;
  }));
  return rows;
}

function paint(row) {
  row.li.className = row.status;
  row.li.dataset.state = row.status;
  row.bar.value = row.fraction;
  let text = row.status;
  if (row.status === "running") {
    const pct = `${Math.round(100 * row.fraction)}%`;
    const t = row.startedAt ? seconds(Math.max(0, (Date.now() - row.startedAt) / 1000)) : "";
    text = `${pct}${t ? ` · ${t}` : ""}`;
  } else if (row.status === "succeeded") {
    text = row.elapsed !== null ? `done · ${seconds(row.elapsed)}` : "done";
  } else if (row.status === "reused") {
    text = "reused";
  }
  row.state.textContent = text;
}

function setRow(stage, changes) {
  const row = current?.rows[stage];
  if (!row) return;
  Object.assign(row, changes);
  paint(row);
}

function tick() {
  for (const row of Object.values(current?.rows || {})) if (row.status === "running") paint(row);
}

function announce(text) { $("stage-announcer").textContent = text; }

// The job store's view: right after a reload, and the final word once a run ends.
function applyStageStates(job) {
  for (const s of job.stages) {
    let status = s.status === "succeeded" ? (s.reused ? "reused" : "succeeded")
      : s.status === "pending" ? "waiting" : s.status;
    setRow(s.stage, {
      status,
      fraction: s.status === "succeeded" ? 1 : s.status === "running" ? current.rows[s.stage].fraction : 0,
      startedAt: s.started_at ? Date.parse(s.started_at) : null,
      elapsed: s.elapsed_s,
    });
  }
}

// ---- live events

function follow(after) {
  const mine = current;
  if (!apiKey()) { followWith(mine, after, null); return; }
  streamToken(mine.id).then((token) => { if (current === mine) followWith(mine, after, token); }, () => {});
}

function followWith(mine, after, token) {
  const id = mine.id;
  const query = new URLSearchParams();
  if (after) query.set("after", after);
  if (token) query.set("token", token);
  const url = `/v1/jobs/${id}/events${query.toString() ? `?${query}` : ""}`;
  const source = new EventSource(url);
  mine.source = source;
  const on = (type, fn) => source.addEventListener(type, (m) => {
    if (current !== mine) return;
    if (m.lastEventId) sessionStorage.setItem(lastEventKey(id), m.lastEventId);
    fn(JSON.parse(m.data), m.lastEventId);
  });
  on("job.queued", (e) => {
    // A (re)run from e.stage: that stage and the ones that depend on it start over.
    for (const s of downstream(e.stage)) {
      setRow(s, { status: "queued", fraction: 0, startedAt: null, elapsed: null });
    }
  });
  on("stage.started", (e) => {
    setRow(e.stage, { status: "running", fraction: 0, startedAt: e.ts * 1000, elapsed: null });
    announce(`${e.stage} started`);
  });
  on("stage.progress", (e) => {
    const row = mine.rows[e.stage];
    setRow(e.stage, {
      status: "running", fraction: e.progress ?? 0, startedAt: row?.startedAt ?? e.ts * 1000,
    });
  });
  on("stage.finished", (e) => {
    setRow(e.stage, { status: e.reused ? "reused" : "succeeded", fraction: 1, elapsed: e.elapsed_s });
    announce(`${e.stage} ${e.reused ? "reused" : "finished"}`);
  });
  on("stage.failed", (e) => {
    setRow(e.stage, { status: "failed" });
    announce(`${e.stage} failed`);
  });
  const terminal = async (e, id_) => {
    source.close();
    // The job store has the last word: a terminal event may be an earlier run's.
    let job;
    try { job = await api(`/v1/jobs/${id}`); } catch { return; }
    if (current !== mine) return;
    mine.job = job;
    if (job.status === "queued" || job.status === "running") follow(id_);
    else finish(job);
  };
  on("job.succeeded", terminal);
  on("job.failed", terminal);
  source.onerror = async () => {
    // While CONNECTING the browser retries by itself, sending Last-Event-ID; CLOSED means
    // it gave up. Either way, ask the job store whether the job ended meanwhile, so the
    // page never waits for events that will not come.
    if (current !== mine) return;
    const job = await api(`/v1/jobs/${id}`).catch(() => null);
    if (current !== mine || mine.source !== source) return;
    if (job && (job.status === "succeeded" || job.status === "failed")) {
      source.close();
      mine.job = job;
      finish(job);
    } else if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => { if (current === mine && mine.source === source) openJob(id); }, 3000);
    }
  };
}

function finish(job) {
  showJobHead(job);
  applyStageStates(job);
  sessionStorage.removeItem(lastEventKey(job.id));
  $("replay").hidden = false;
  const box = $("job-error");
  if (job.status === "failed") {
    const stage = job.error?.stage;
    box.replaceChildren(
      el("strong", { text: stage ? `The ${stage} stage failed.` : "The job failed." }),
      el("p", { text: sentence(job.error?.message || "no reason was recorded.") }),
      el("p", { class: "small", text: stage === "decode"
        ? "Check that the file plays on your computer, then upload it again."
        : "You can run the stage again below, for instance with another number of speakers." }));
    box.hidden = false;
    $("result").hidden = true;
    announce(`failed at ${stage || "an unknown stage"}`);
    if (stage) $("replay-stage").value = stage;
  } else {
    box.hidden = true;
    announce("transcript ready");
    loadResult(job);
  }
  refreshJobs();
}

// ---- replay

$("replay-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!current?.job) return;
  const stage = $("replay-stage").value;
  const n = $("replay-speakers").value.trim(), lang = $("replay-language").value.trim();
  const params = { num_speakers: n ? Number(n) : null, language: lang || null };
  const status = $("replay-status");
  try {
    await api(`/v1/jobs/${current.id}/stages/${stage}/replay`, { method: "POST", body: JSON.stringify({ params }) });
  } catch (err) { setStatus(status, err.message, true); return; }
  setStatus(status, `Running again from ${stage}…`);
  speakerCache.delete(current.id);
  $("replay").open = false;
  openJob(current.id).then(() => setStatus(status, ""));
});

// ---------------------------------------------------------------- the transcript

async function loadResult(job) {
  const mine = current;
  let result, corrections;
  try {
    [result, corrections] = await Promise.all([
      api(`/v1/jobs/${job.id}/result`), api(`/v1/jobs/${job.id}/corrections`)]);
  } catch (e) {
    if (current !== mine) return;
    $("job-error").replaceChildren(el("strong", { text: "Could not load the transcript." }), el("p", { text: e.message }));
    $("job-error").hidden = false;
    return;
  }
  if (current !== mine) return;
  const player = $("player");
  let src = `/v1/jobs/${job.id}/audio`;
  if (apiKey()) {
    try { src += `?token=${encodeURIComponent(await streamToken(job.id))}`; } catch { /* the player says */ }
    if (current !== mine) return;
  }
  if (player.getAttribute("src") !== src) player.setAttribute("src", src);
  $("downloads").replaceChildren(...FORMATS.map((f) => el("a", {
    href: `/v1/jobs/${job.id}/result?format=${f}`, download: `${(job.filename || job.id).replace(/\.[^.]+$/, "")}.${f}`,
    text: f.toUpperCase(), "aria-label": `Download as ${f.toUpperCase()}`,
    onclick: apiKey() ? (e) => downloadWithKey(e, `/v1/jobs/${job.id}/result?format=${f}`, e.currentTarget.download) : null,
  })));
  mine.corrections = corrections;
  renderResult(result);
  $("result").hidden = false;
  seekWhenReady(job.id);
}

// After a correction or an undo: the result and the corrections as they read now.
async function reloadResult() {
  const mine = current;
  const [result, corrections] = await Promise.all([
    api(`/v1/jobs/${mine.id}/result`), api(`/v1/jobs/${mine.id}/corrections`)]);
  if (current !== mine) return;
  mine.corrections = corrections;
  renderResult(result);
  speakerCache.delete(mine.id); // names in the list of recordings
  refreshJobs();
}

// A link cannot send the key: fetch the file with it, then save what came back.
async function downloadWithKey(e, path, name) {
  e.preventDefault();
  const res = await fetch(path, { headers: withKey({}) });
  if (!res.ok) { alert(`The download failed (the server answered ${res.status}).`); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function renderResult(result) {
  current.result = result;
  const colour = {}, names = {};
  result.speakers.forEach((s, i) => { colour[s.id] = COLOURS[i % COLOURS.length]; names[s.id] = s.name || defaultName(s.id); });
  current.names = names;
  current.colour = colour;
  renderSpeakers(result, colour, names);

  const words = []; // flat, in time order, for the player
  const segments = result.segments.map((seg, i) => {
    // The double-click's clicks started the player at the word: pause it for the typing.
    const text = el("p", { class: "text", ondblclick: () => { player.pause(); editLine(i); } });
    if (seg.words.length) {
      seg.words.forEach((w, j) => {
        // Whisper's words carry their leading space; keep it outside the highlight.
        if (j > 0 && /^\s/.test(w.word)) text.append(" ");
        const span = el("span", { class: "w", "data-start": w.start, text: w.word.trim() });
        words.push({ start: w.start, end: w.end, span, seg: i });
        text.append(span);
      });
    } else {
      text.textContent = seg.text;
    }
    const c = colour[seg.speaker] || "#98a2b3";
    const who = names[seg.speaker] || defaultName(seg.speaker);
    return el("li", { style: `--c: ${c}`, "data-speaker": seg.speaker, "data-start": seg.start, "data-index": i },
      el("button", {
        type: "button", class: "t", text: clock(seg.start), "aria-label": `Play from ${clock(seg.start)}`,
        onclick: () => seek(seg.start),
      }),
      el("div", { class: "seg-head" },
        el("span", { class: "who", text: who }),
        el("button", { type: "button", class: "quiet edit", text: "Edit",
          "aria-label": `Edit the line at ${clock(seg.start)} (${who})`, onclick: () => editLine(i) })),
      text);
  });
  words.sort((a, b) => a.start - b.start);
  current.words = words;
  current.segments = segments;
  current.nowWord = null;
  current.editing = null;
  $("transcript").replaceChildren(...segments);
  $("transcript-empty").hidden = segments.length > 0;
  renderCorrections();
}

function renderSpeakers(result, colour, names) {
  $("speakers").replaceChildren(...result.speakers.map((s) => {
    const facts = [`${clock(s.talk_time_s)} talking`,
      s.speaker_id ? (s.confidence !== null && s.confidence !== undefined
        ? `recognised (${Math.round(100 * s.confidence)}% match)` : "known voice") : null];
    const li = el("li", { "data-speaker": s.id },
      el("span", { class: "swatch", style: `background: ${colour[s.id]}`, "aria-hidden": "true" }),
      el("span", { class: "speaker-label" },
        el("span", { class: "speaker-name", text: names[s.id] }),
        el("span", { class: "speaker-facts", text: facts.filter(Boolean).join(" · ") })),
      el("button", { type: "button", class: "quiet rename", text: "Rename", "aria-label": `Rename ${names[s.id]}`,
        onclick: () => renameForm(li, s, names[s.id]) }));
    return li;
  }));
}

function renameForm(li, speaker, shown) {
  const id = `rename-${speaker.id}`;
  const input = el("input", { type: "text", id, name: "name", value: speaker.name || "", required: true,
    maxlength: "200", autocomplete: "off", list: "people-names", placeholder: shown });
  const remember = el("input", { type: "checkbox", name: "remember" });
  const cancel = () => {
    renderSpeakers(current.result, current.colour, current.names);
    $("speakers").querySelector(`[data-speaker="${speaker.id}"] .rename`)?.focus();
  };
  const form = el("form", { class: "rename-form" },
    el("label", { for: id, class: "sr-only", text: `New name for ${shown}` }),
    input,
    el("label", { class: "check" }, remember, "Remember this voice"),
    el("button", { type: "submit", class: "primary", text: "Save" }),
    el("button", { type: "button", text: "Cancel", onclick: cancel }));
  form.addEventListener("keydown", (e) => { if (e.key === "Escape") cancel(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    const status = $("speaker-status");
    if (!name) { setStatus(status, "Type a name first.", true); input.focus(); return; }
    const body = { name, remember: remember.checked };
    const known = people.find((p) => p.name.toLowerCase() === name.toLowerCase());
    if (known) body.speaker_id = known.id; // the same person: link (and, remembering, refine) them
    try {
      await api(`/v1/jobs/${current.id}/speakers/${encodeURIComponent(speaker.id)}`, { method: "PATCH", body: JSON.stringify(body) });
    } catch (err) { setStatus(status, err.message, true); return; }
    setStatus(status, `${shown} is now ${name}${body.remember ? "; their voice will be recognised in new recordings" : ""}.`);
    await reloadResult();
    highlight(true);
    $("speakers").querySelector(`[data-speaker="${speaker.id}"] .rename`)?.focus();
    if (body.remember) refreshPeople();
  });
  li.replaceChildren(el("span", { class: "swatch", style: li.firstChild.style.cssText, "aria-hidden": "true" }), form);
  input.focus();
  input.select();
}

// ---- corrections: edit a line's text, give it to another speaker, undo any correction

// A line's text as the page shows it (words keep their own spacing).
function lineText(seg) {
  if (!seg.words.length) return seg.text;
  return seg.words.map((w, j) => (j > 0 && /^\s/.test(w.word) ? " " : "") + w.word.trim()).join("");
}

function lineAt(i) {
  const seg = current.result.segments[i];
  return seg ? `the line at ${clock(seg.start)}` : `line ${i + 1}`;
}

function quote(text, max = 60) {
  return `“${text.length > max ? `${text.slice(0, max - 1)}…` : text}”`;
}

// The correction that says `seg` (line `i`) reads `text`. When exactly one word changed,
// only that word is corrected, so the others keep their timings for the player.
function textFix(seg, i, text) {
  const before = seg.words.map((w) => w.word.trim());
  const after = text.split(" ");
  if (before.length && before.length === after.length && lineText(seg) === before.join(" ")) {
    const changed = before.flatMap((w, j) => (w === after[j] ? [] : [j]));
    if (changed.length === 1) return { kind: "fix_text", segment: i, word: changed[0], text: after[changed[0]] };
  }
  return { kind: "fix_text", segment: i, text };
}

function nextLabel(speakers) {
  const taken = speakers.map((s) => Number(/^S(\d+)$/.exec(s.id)?.[1] || 0));
  return `S${Math.max(0, ...taken) + 1}`;
}

function focusEdit(i) {
  $("transcript").querySelector(`li[data-index="${i}"] button.edit`)?.focus();
}

function editLine(i) {
  if (!current?.result?.segments[i]) return;
  if (current.editing === i) { current.segments[i].querySelector("textarea")?.focus(); return; }
  if (current.editing !== null) renderResult(current.result); // one line at a time
  const seg = current.result.segments[i], li = current.segments[i], at = lineAt(i);
  const shown = lineText(seg);
  const fresh = nextLabel(current.result.speakers);
  const speaker = el("select", { id: `edit-speaker-${i}`, name: "speaker" },
    ...current.result.speakers.map((s) => el("option", { value: s.id, text: current.names[s.id] })),
    el("option", { value: fresh, text: `A new speaker (${defaultName(fresh)})` }));
  speaker.value = seg.speaker;
  const text = el("textarea", { id: `edit-text-${i}`, name: "text", rows: "3", maxlength: "10000",
    required: true, spellcheck: "true", "aria-describedby": `edit-keys-${i}` });
  text.value = shown;
  const error = el("p", { class: "status bad", role: "alert" });
  const save = el("button", { type: "submit", class: "primary", text: "Save" });
  const cancel = () => {
    renderResult(current.result);
    focusEdit(i);
  };
  const form = el("form", { class: "edit-form", "aria-label": `Edit ${at}` },
    el("div", { class: "edit-row" },
      el("label", { for: speaker.id, text: "Said by" }), speaker),
    el("label", { for: text.id, class: "sr-only", text: `Text of ${at}` }),
    text,
    el("div", { class: "edit-row" },
      save,
      el("button", { type: "button", text: "Cancel", onclick: cancel }),
      el("span", { id: `edit-keys-${i}`, class: "muted small", text: "Enter saves, Escape cancels." })),
    error);
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cancel(); }
  });
  text.addEventListener("keydown", (e) => {
    // A line is one line in every format: Enter saves instead of breaking it.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const typed = text.value.replace(/\s+/g, " ").trim();
    if (!typed) { setStatus(error, "Type the text of the line, or cancel.", true); text.focus(); return; }
    const changes = [];
    if (speaker.value !== seg.speaker) changes.push({ kind: "reassign", segment: i, speaker: speaker.value });
    if (typed !== shown) changes.push(textFix(seg, i, typed));
    if (!changes.length) { cancel(); setStatus($("correction-status"), `Nothing changed in ${at}.`); return; }
    const mine = current;
    save.disabled = true;
    let saved = 0;
    try {
      for (const body of changes) {
        await api(`/v1/jobs/${mine.id}/corrections`, { method: "POST", body: JSON.stringify(body) });
        saved++;
      }
    } catch (err) {
      if (!saved) { save.disabled = false; setStatus(error, `Not saved: ${err.message}`, true); text.focus(); return; }
      setStatus($("correction-status"), `Only partly saved: ${err.message}`, true);
    }
    if (current !== mine) return;
    const said = changes.map((c) => (c.kind === "reassign"
      ? `is said by ${current.names[c.speaker] || defaultName(c.speaker)}` : `reads ${quote(typed)}`));
    await reloadResult();
    if (saved === changes.length) setStatus($("correction-status"), `Saved: ${at} ${said.join(" and ")}.`);
    focusEdit(i);
  });
  li.replaceChildren(li.firstChild, form);
  text.focus();
  text.setSelectionRange(text.value.length, text.value.length);
  current.editing = i;
}

// What a correction did, in words (names and times as the transcript reads now).
function describe(c) {
  const p = c.payload || {}, who = (label) => current.names[label] || defaultName(label);
  if (c.kind === "rename_speaker") return `${defaultName(p.speaker)} named ${quote(p.name || "")}`;
  if (c.kind === "reassign") {
    const words = p.word_start !== undefined ? `Words ${p.word_start + 1}–${p.word_end} of ${lineAt(p.segment)}` : sentence(lineAt(p.segment));
    return `${words} given to ${who(p.speaker)}`;
  }
  if (c.kind === "fix_text") {
    const what = p.word !== undefined ? `Word ${p.word + 1} of ${lineAt(p.segment)}` : sentence(lineAt(p.segment));
    return `${what} reads ${quote(p.text || "")}`;
  }
  return sentence(c.kind.replace(/_/g, " "));
}

function renderCorrections() {
  const list = current.corrections || [];
  $("corrections-box").hidden = list.length === 0;
  // Newest first: the one to undo is most often the last one made.
  $("corrections").replaceChildren(...[...list].reverse().map((c) => {
    const what = describe(c);
    return el("li", { "data-correction": c.id, "data-kind": c.kind },
      el("span", { class: "what", text: what }),
      c.created_at ? el("time", { class: "when", datetime: c.created_at, text: when(c.created_at) }) : null,
      el("button", { type: "button", class: "quiet undo", text: "Undo", "aria-label": `Undo: ${what}`,
        onclick: () => undo(c, what) }));
  }));
}

async function undo(c, what) {
  const status = $("correction-status"), mine = current;
  const buttons = [...$("corrections").querySelectorAll("button.undo")];
  const at = buttons.findIndex((b) => b.closest("li").dataset.correction === c.id);
  try {
    await api(`/v1/jobs/${mine.id}/corrections/${c.id}`, { method: "DELETE" });
  } catch (err) {
    // 409: it split a line, and later corrections point at the lines as split.
    const why = err.status === 409 ? "the corrections made after it depend on it; undo those first, the latest first" : err.message;
    setStatus(status, `Could not undo: ${why}.`, true);
    return;
  }
  if (current !== mine) return;
  await reloadResult();
  const kept = c.kind === "rename_speaker" && c.payload?.speaker_id ? " The voice stays among the known voices." : "";
  setStatus(status, `Undone: ${what}.${kept}`);
  // Focus stays in the list: on the correction now in that place, else back to the transcript.
  const left = $("corrections").querySelectorAll("button.undo");
  (left[Math.min(at, left.length - 1)] || $("result-title")).focus();
}

// ---- the player follows the transcript

const player = $("player");

function seek(t) {
  player.currentTime = t + 0.01;
  player.play().catch(() => { /* autoplay refused: the position is set anyway */ });
  highlight(true);
}

$("transcript").addEventListener("click", (e) => {
  const w = e.target.closest(".w");
  if (w) seek(Number(w.dataset.start));
});

function wordAt(t) {
  const words = current?.words || [];
  let lo = 0, hi = words.length - 1, found = -1;
  while (lo <= hi) { // last word that starts at or before t
    const mid = (lo + hi) >> 1;
    if (words[mid].start <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  if (found < 0) return null;
  const w = words[found];
  return t <= w.end + 0.6 ? w : null; // in a pause longer than that, nothing is being said
}

function highlight(jump = false) {
  if (!current?.words) return;
  const w = wordAt(player.currentTime);
  if (w === current.nowWord) return;
  current.nowWord?.span.classList.remove("now");
  const before = current.nowWord;
  current.nowWord = w;
  if (!w) return;
  w.span.classList.add("now");
  if (!before || before.seg !== w.seg) {
    current.segments.forEach((li, i) => li.classList.toggle("playing", i === w.seg));
    if ($("follow").checked && (jump || !player.paused)) {
      current.segments[w.seg].scrollIntoView({ block: "nearest", behavior: jump ? "auto" : "smooth" });
    }
  }
}

let frame = 0;
function loop() { highlight(); frame = player.paused ? 0 : requestAnimationFrame(loop); }
player.addEventListener("play", () => { if (!frame) frame = requestAnimationFrame(loop); });
player.addEventListener("seeked", () => highlight(true));
player.addEventListener("timeupdate", () => highlight());
// With a key, the audio's token expires after ten minutes: take a new one where it stopped.
let audioRetriedAt = 0;
player.addEventListener("error", async () => {
  const mine = current;
  if (!apiKey() || !mine?.job || Date.now() - audioRetriedAt < 60000) return;
  audioRetriedAt = Date.now();
  const at = player.currentTime;
  let token;
  try { token = await streamToken(mine.job.id); } catch { return; }
  if (current !== mine) return;
  player.setAttribute("src", `/v1/jobs/${mine.job.id}/audio?token=${encodeURIComponent(token)}`);
  player.currentTime = at;
});

// ---------------------------------------------------------------- known voices

let people = [];

async function refreshPeople() {
  try { people = await api("/v1/speakers"); } catch { return; }
  $("people-empty").hidden = people.length > 0;
  $("people-names").replaceChildren(...people.map((p) => el("option", { value: p.name })));
  $("people-list").replaceChildren(...people.map((p) => el("li", { "data-person": p.id },
    el("span", { class: "who" }, p.name,
      el("small", { text: p.num_clips ? `${p.num_clips} clip${p.num_clips > 1 ? "s" : ""}` : "from a recording" })),
    el("button", { type: "button", class: "danger", text: "Forget", "aria-label": `Forget ${p.name}'s voice`,
      onclick: async () => {
        if (!confirm(`Forget ${p.name}'s voice? Past transcripts keep the name.`)) return;
        try { await api(`/v1/speakers/${p.id}`, { method: "DELETE" }); } catch (e) { alert(e.message); }
        refreshPeople();
      } }))));
}

// ---------------------------------------------------------------- start

if (apiKey()) showKeyField();
loadStages().catch(() => {}).finally(() => {
  refreshJobs();
  refreshPeople();
  route();
});
// Jobs started elsewhere (the CLI, another tab) show up; quietly, every few seconds.
setInterval(() => { if (document.visibilityState === "visible") refreshJobs(); }, 8000);
