// robot_irl adversary console: plain JS, no dependencies. Talks to the JSON API of robot_irl/console/app.py.
"use strict";

const $ = (selector) => document.querySelector(selector);
const $$ = (selector) => Array.from(document.querySelectorAll(selector));
const DEG = Math.PI / 180;
const LIGHT_PRESETS = {
  dark: { diffuse: [0.12, 0.12, 0.12], ambient: [0.03, 0.03, 0.03] },
  bright: { diffuse: [1.0, 1.0, 1.0], ambient: [0.35, 0.35, 0.35] },
  warm: { diffuse: [1.0, 0.72, 0.42] },
  cool: { diffuse: [0.55, 0.7, 1.0] },
};

const state = { lastSeq: 0, targets: {}, status: null, busy: false };
// the per-session token the server embedded in this page; every state-changing request carries it
const TOKEN = document.querySelector('meta[name="robot-irl-console-token"]').content;

// -- HTTP ------------------------------------------------------------------------------------------------------
async function api(method, path, body) {
  const options = { method, headers: {} };
  if (method !== "GET") {
    options.headers["Content-Type"] = "application/json";
    options.headers["X-Console-Token"] = TOKEN;
    options.body = JSON.stringify(body === undefined ? {} : body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    return { ok: false, status: 0, data: { error: `console unreachable: ${err.message}` } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = { error: `${response.status} ${response.statusText}` };
  }
  return { ok: response.ok, status: response.status, data };
}

// -- event log -------------------------------------------------------------------------------------------------
function fmt(x) {
  if (x === 0) x = 0; // no "-0"
  return typeof x === "number" ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(3).replace(/\.?0+$/, "")) : x;
}

function summarise(params) {
  const shown = Object.entries(params || {}).filter(([key]) => !["previous", "geoms", "lights"].includes(key));
  return shown.map(([key, value]) => {
    const text = Array.isArray(value) ? `[${value.map(fmt).join(", ")}]` : typeof value === "string"
      ? `“${value}”` : fmt(value);
    return `${key} ${text}`;
  }).join(" · ");
}

function addLogEntry({ cls, title, detail, seq, kind }) {
  const item = document.createElement("li");
  item.className = `event ${cls}`;
  if (seq !== undefined) item.dataset.seq = seq;
  if (kind) item.dataset.kind = kind;
  const head = document.createElement("div");
  head.className = "event-title";
  head.textContent = title;
  item.appendChild(head);
  if (detail) {
    const body = document.createElement("div");
    body.className = "event-detail";
    body.textContent = detail;
    item.appendChild(body);
  }
  const list = $("#events");
  list.prepend(item);
  while (list.children.length > 200) list.lastChild.remove();
  $("#event-count").textContent = `(${list.querySelectorAll(".event.perturbation").length})`;
}

function logEvent(event) {
  if (event.error) {
    const request = typeof event.request === "object" && event.request ? event.request : {};
    addLogEntry({ cls: "error", seq: event.seq, kind: request.kind,
      title: `#${event.seq} refused ${request.kind || ""} ${request.target || ""}`.trim(), detail: event.error });
    return;
  }
  const when = event.step === null || event.step === undefined ? "" : ` · step ${event.step} · t ${fmt(event.sim_time)} s`;
  addLogEntry({ cls: "perturbation", seq: event.seq, kind: event.kind,
    title: `#${event.seq} ${event.kind} → ${event.target}${when}`, detail: summarise(event.params) });
  if (event.kind === "instruction" && event.params && event.params.text) showInstruction(event.params.text);
}

function note(message, cls = "note") {
  addLogEntry({ cls, title: message });
}

async function pollEvents() {
  const r = await api("GET", `/api/events?after=${state.lastSeq}`);
  if (!r.ok) return;
  for (const event of r.data.events) {
    if (event.seq > state.lastSeq) {
      state.lastSeq = event.seq;
      logEvent(event);
    }
  }
}

// -- perturbations ---------------------------------------------------------------------------------------------
async function perturb(kind, target, params) {
  if (!target) {
    note(`${kind}: no target to apply it to (the driver lists none)`, "error");
    return null;
  }
  const r = await api("POST", "/api/perturb", { kind, target, params });
  if (r.status === 422 || r.status === 0) note(`${kind}: ${r.data.error}`, "error");
  await pollEvents();
  return r;
}

const num = (id) => Number($(id).value) || 0;
const value = (id) => $(id).value;

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((c) => Math.round((c / 255) * 1000) / 1000);
}

function push(direction) {
  const speed = num("#push-speed");
  return perturb("push", value("#push-target"), { velocity: direction.map((d) => d * speed) });
}

async function moveObject() {
  const target = value("#move-target");
  const status = await api("GET", "/api/status");
  const pose = status.ok && status.data.objects ? status.data.objects[target] : undefined;
  if (!pose) {
    note(`move_object: the position of ${target || "the object"} is unknown (not in the status)`, "error");
    return null;
  }
  const d = [num("#move-dx"), num("#move-dy"), num("#move-dz")].map((c) => c / 100);
  const position = pose.position.map((p, i) => p + d[i]);
  return perturb("move_object", target, { position, yaw: pose.yaw + num("#move-yaw") * DEG });
}

function lighting(params) {
  return perturb("lighting", value("#light-target"), params);
}

function recolor(hex) {
  return perturb("color", value("#color-target"), { rgba: [...hexToRgb(hex), 1.0] });
}

function shiftCamera(reset) {
  const params = reset ? { offset: [0, 0, 0] } : {
    offset: [num("#camera-dx"), num("#camera-dy"), num("#camera-dz")].map((c) => c / 100),
    yaw: num("#camera-yaw") * DEG, pitch: num("#camera-pitch") * DEG,
  };
  return perturb("camera", value("#camera-target"), params);
}

function sendInstruction(text) {
  text = (text || "").trim();
  if (!text) {
    note("instruction: type some text first", "error");
    return null;
  }
  return perturb("instruction", (state.targets.instruction || ["task"])[0], { text });
}

// -- episode ---------------------------------------------------------------------------------------------------
async function episode(command) {
  const r = await api("POST", `/api/episode/${command}`);
  const message = r.data.message || r.data.error || `${r.status}`;
  note(`episode ${command}: ${message}`, r.ok ? "episode" : "error");
  refreshStatus();
  return r;
}

// -- status, instruction, cameras ------------------------------------------------------------------------------
function showInstruction(text) {
  $("#instruction").textContent = text || "(none)";
}

function statusText(s) {
  const parts = [s.driver || s.source || "driver"];
  if (s.driver_seen === false) parts.push("waiting for the driver…");
  if (typeof s.step === "number") parts.push(`step ${s.step}`);
  if (typeof s.sim_time === "number") parts.push(`t ${s.sim_time.toFixed(2)} s`);
  const task = s.task || {};
  if (typeof task.success === "boolean" || typeof task.success === "number") {
    parts.push(task.success ? "success ✓" : "not solved");
  }
  if (s.recorder) {
    parts.push(recorderText(s.recorder));
  } else if (s.episode) {
    parts.push(`last: ${s.episode.command} ${s.episode.ok ? "ok" : "failed"}`);
  }
  return parts.join(" · ");
}

function recorderText(r) {
  if (r.last_error) return `recorder error: ${r.last_error}`;
  const what = r.recording ? `● recording episode ${r.episode} (${r.frames} frames)` : "recorder idle";
  const marked = r.marked === true ? " · marked success" : r.marked === false ? " · marked failure" : "";
  return `${what}${marked} · saved ${r.saved_episodes ?? 0}`;
}

async function refreshStatus() {
  const r = await api("GET", "/api/status");
  const line = $("#status");
  if (!r.ok) {
    line.textContent = r.data.error || "status unavailable";
    line.classList.add("offline");
    return;
  }
  state.status = r.data;
  line.classList.remove("offline");
  line.textContent = statusText(r.data);
  showInstruction(r.data.instruction);
}

function startCameras(cameras) {
  const box = $("#cameras");
  if (!cameras.length) return;
  box.innerHTML = "";
  for (const name of cameras) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.className = "camera";
    img.alt = `camera ${name}`;
    img.dataset.camera = name;
    const caption = document.createElement("figcaption");
    caption.textContent = name;
    figure.append(img, caption);
    box.appendChild(figure);
    img.onerror = () => pollCamera(img, name); // no MJPEG support or the stream broke: poll JPEGs instead
    img.src = `/camera/${encodeURIComponent(name)}/stream`;
  }
}

function pollCamera(img, name) {
  img.onerror = null;
  const next = () => setTimeout(() => { img.src = `/camera/${encodeURIComponent(name)}.jpg?t=${Date.now()}`; }, 200);
  img.onload = next;
  img.onerror = () => setTimeout(next, 800);
  next();
}

function fillTargets(targets) {
  state.targets = targets;
  for (const select of $$("select.target")) {
    const names = targets[select.dataset.kind] || [];
    select.innerHTML = "";
    for (const name of names) select.add(new Option(name, name));
    const card = select.closest(".card");
    const supported = names.length > 0;
    card.classList.toggle("unsupported", !supported);
    card.title = supported ? "" : "this driver does not support it";
    for (const control of card.querySelectorAll("button, input, select")) control.disabled = !supported;
  }
  const lights = $("#light-target");
  if ([...lights.options].some((o) => o.value === "all")) lights.value = "all";
}

function preferViewedCamera(cameras) {
  const select = $("#camera-target");
  const viewed = cameras.find((name) => [...select.options].some((o) => o.value === name));
  if (viewed) select.value = viewed;
}

function fillPresets(presets) {
  const box = $("#presets");
  box.innerHTML = "";
  for (const text of presets) {
    const button = document.createElement("button");
    button.className = "preset";
    button.type = "button";
    button.textContent = text;
    button.addEventListener("click", () => sendInstruction(text));
    box.appendChild(button);
  }
}

// -- wiring ----------------------------------------------------------------------------------------------------
function wire() {
  for (const button of $$("[data-push]")) {
    button.addEventListener("click", () => push(button.dataset.push.split(",").map(Number)));
  }
  $("#move-apply").addEventListener("click", moveObject);
  for (const button of $$("[data-light]")) {
    button.addEventListener("click", () => lighting(LIGHT_PRESETS[button.dataset.light]));
  }
  $("#light-apply").addEventListener("click", () => lighting({ diffuse: hexToRgb(value("#light-color")) }));
  for (const swatch of $$(".swatch")) {
    swatch.addEventListener("click", () => {
      $("#color-value").value = swatch.dataset.rgb;
      recolor(swatch.dataset.rgb);
    });
  }
  $("#color-apply").addEventListener("click", () => recolor(value("#color-value")));
  $("#camera-apply").addEventListener("click", () => shiftCamera(false));
  $("#camera-reset").addEventListener("click", () => shiftCamera(true));
  $("#distractor-add").addEventListener("click", () => perturb("distractor_add", value("#distractor-target"), {}));
  $("#distractor-remove").addEventListener("click",
    () => perturb("distractor_remove", value("#distractor-target"), {}));
  $("#instruction-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sendInstruction(value("#instruction-text"));
  });
  for (const button of $$("[data-episode]")) {
    button.addEventListener("click", () => episode(button.dataset.episode));
  }
  document.addEventListener("keydown", onKey);
}

const KEYS = {
  ArrowUp: () => $("#push-xp").click(), ArrowDown: () => $("#push-xn").click(),
  ArrowLeft: () => $("#push-yp").click(), ArrowRight: () => $("#push-yn").click(), u: () => $("#push-zp").click(),
  b: () => $("#ep-start").click(), s: () => $("#ep-save").click(), d: () => $("#ep-discard").click(),
  y: () => $("#ep-success").click(), n: () => $("#ep-failure").click(),
};

function onKey(e) {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  const action = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
  if (action) {
    e.preventDefault();
    action();
  }
}

async function init() {
  wire();
  const [config, targets] = await Promise.all([api("GET", "/api/config"), api("GET", "/api/targets")]);
  if (targets.ok) fillTargets(targets.data);
  if (config.ok) {
    fillPresets(config.data.instruction_presets);
    startCameras(config.data.cameras);
    preferViewedCamera(config.data.cameras);
  }
  await Promise.all([refreshStatus(), pollEvents()]);
  setInterval(pollEvents, 400);
  setInterval(refreshStatus, 1000);
  document.body.dataset.ready = "true";
}

window.addEventListener("load", init);
