// Scribe's first page: upload with progress, follow the job over SSE, show the transcript.
"use strict";

const STAGES = ["decode", "diarize", "transcribe", "identify", "merge"];
const COLOURS = ["#2457d6", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d"];
const $ = (id) => document.getElementById(id);

function fmtTime(s) {
  const m = Math.floor(s / 60), sec = Math.floor(s % 60);
  const h = Math.floor(m / 60);
  const mm = String(m % 60).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function errorMessage(xhr) {
  try { return JSON.parse(xhr.responseText).error.message; } catch { return `HTTP ${xhr.status}`; }
}

// ---------------------------------------------------------------- upload

const form = $("upload-form"), fileInput = $("file"), drop = $("drop");

fileInput.addEventListener("change", () => {
  $("drop-text").textContent = fileInput.files[0] ? fileInput.files[0].name : "Drop a file here";
});
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault(); drop.classList.add("over");
}));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  if (e.dataTransfer.files.length) {
    fileInput.files = e.dataTransfer.files;
    fileInput.dispatchEvent(new Event("change"));
  }
});

form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (!fileInput.files[0]) { $("upload-status").textContent = "Choose a file first."; return; }
  const data = new FormData();
  for (const [k, v] of new FormData(form)) if (k !== "file" && v !== "") data.append(k, v);
  data.append("file", fileInput.files[0]);  // last: options arrive before the big part

  const bar = $("upload-progress"), status = $("upload-status");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/jobs");
  xhr.upload.onprogress = (ev) => {
    if (ev.lengthComputable) {
      bar.value = ev.loaded / ev.total;
      status.textContent = `Uploading… ${Math.round(100 * bar.value)}%`;
    }
  };
  xhr.onload = () => {
    $("submit").disabled = false;
    if (xhr.status === 202) {
      const job = JSON.parse(xhr.responseText);
      status.textContent = `Uploaded. Job ${job.id}`;
      follow(job);
    } else {
      status.textContent = `Upload refused: ${errorMessage(xhr)}`;
    }
  };
  xhr.onerror = () => { $("submit").disabled = false; status.textContent = "Network error."; };
  bar.hidden = false; bar.value = 0; $("submit").disabled = true;
  xhr.send(data);
});

// ---------------------------------------------------------------- progress

function stageRows() {
  const list = $("stages");
  list.replaceChildren();
  const rows = {};
  for (const s of STAGES) {
    const li = document.createElement("li");
    li.innerHTML = `<span>${s}</span><progress max="1" value="0" aria-label="${s} progress"></progress><span class="state">waiting</span>`;
    list.append(li);
    rows[s] = li;
  }
  return rows;
}

function setStage(row, state, value) {
  row.className = state;
  row.querySelector(".state").textContent = state;
  if (value !== undefined) row.querySelector("progress").value = value;
}

function follow(job) {
  $("progress").hidden = false; $("result").hidden = true; $("job-error").hidden = true;
  const rows = stageRows();
  const source = new EventSource(job.links.events);
  const on = (type, fn) => source.addEventListener(type, (m) => fn(JSON.parse(m.data)));
  on("stage.started", (e) => setStage(rows[e.stage], "running", 0));
  on("stage.progress", (e) => setStage(rows[e.stage], "running", e.progress ?? 0));
  on("stage.finished", (e) => setStage(rows[e.stage], e.reused ? "reused" : "succeeded", 1));
  on("stage.failed", (e) => setStage(rows[e.stage], "failed"));
  on("job.succeeded", () => { source.close(); showResult(job); });
  on("job.failed", (e) => {
    source.close();
    const err = $("job-error");
    err.textContent = `Failed${e.stage ? ` at ${e.stage}` : ""}: ${e.message || "unknown reason"}`;
    err.hidden = false;
  });
  // EventSource reconnects by itself (sending Last-Event-ID); nothing to do on error.
}

// ---------------------------------------------------------------- result

async function showResult(job) {
  const res = await fetch(job.links.result);
  if (!res.ok) { $("job-error").textContent = "Could not load the result."; $("job-error").hidden = false; return; }
  const result = await res.json();
  const colour = {}, names = {};
  result.speakers.forEach((s, i) => { colour[s.id] = COLOURS[i % COLOURS.length]; names[s.id] = s.name || s.id; });

  $("downloads").replaceChildren(...["txt", "srt", "vtt", "json"].map((f) => {
    const a = document.createElement("a");
    a.href = `${job.links.result}?format=${f}`; a.textContent = f.toUpperCase();
    if (f !== "json") a.download = `${job.id}.${f}`;
    return a;
  }));
  $("speakers").replaceChildren(...result.speakers.map((s) => {
    const chip = document.createElement("span");
    chip.className = "chip"; chip.style.background = colour[s.id];
    chip.textContent = `${names[s.id]} · ${fmtTime(s.talk_time_s)}`;
    return chip;
  }));
  $("transcript").replaceChildren(...result.segments.map((seg) => {
    const li = document.createElement("li");
    const t = document.createElement("time"); t.textContent = fmtTime(seg.start);
    const who = document.createElement("span"); who.className = "who";
    who.style.color = colour[seg.speaker]; who.textContent = names[seg.speaker] || seg.speaker;
    const text = document.createElement("span"); text.textContent = seg.text;
    li.append(t, who, text);
    return li;
  }));
  $("result").hidden = false;
  $("result-title").focus?.();
}
