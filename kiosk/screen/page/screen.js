// The kiosk screen: greetings pushed by the kiosk (Server-Sent Events), a clock, the
// status line (polled), and the optional live preview. Every text from the kiosk goes
// into the page with textContent, never as HTML.
"use strict";

const MAX_GREETINGS = 3;
const STATUS_EVERY_MS = 2000;
const PREVIEW_EVERY_MS = 250;
const AFTER_EVENT_MS = 500;
const PROBLEM_TEXT = "Out of order \u2014 please see reception";

let timeZone; // the kiosk's, from /status.json; the browser's until then
let previewOn = false;

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function refreshIdle() {
  const busy = $("greetings").children.length > 0 || !$("unknown").hidden;
  $("idle").hidden = busy || !$("problem").hidden;
}

function showFor(node, seconds, done) {
  clearTimeout(node.clockfaceTimer);
  node.clockfaceTimer = setTimeout(done, Math.max(0, seconds) * 1000);
}

function greet(data) {
  const box = $("greetings");
  const item = document.createElement("article");
  const direction = data.direction === "out" ? "out" : "in";
  item.className = `greeting ${direction}`;
  item.dataset.direction = direction;
  item.append(
    element("p", "salutation", `${data.salutation},`),
    element("p", "name", data.name),
    element("p", "detail", `${direction} at ${data.time}`),
  );
  box.prepend(item);
  while (box.children.length > MAX_GREETINGS) {
    box.lastElementChild.remove();
  }
  $("unknown").hidden = true;
  refreshIdle();
  showFor(item, data.shown_for, () => {
    item.remove();
    refreshIdle();
  });
}

function notice(id, data) {
  const node = $(id);
  node.textContent = data.text;
  node.hidden = false;
  refreshIdle();
  showFor(node, data.shown_for, () => {
    node.hidden = true;
    refreshIdle();
  });
}

function listen() {
  const events = new EventSource("/events");
  events.addEventListener("greeting", (e) => {
    greet(JSON.parse(e.data));
    setTimeout(pollStatus, AFTER_EVENT_MS); // the last event, the backlog grown by one
  });
  events.addEventListener("unknown", (e) => {
    if ($("greetings").children.length === 0) notice("unknown", JSON.parse(e.data));
  });
  events.addEventListener("problem", (e) => notice("problem", JSON.parse(e.data)));
  // EventSource reconnects by itself (retry: 2000 from the kiosk) after a restart; one
  // that gave up (an answer that was not an event stream) is opened again.
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) setTimeout(listen, 5000);
  });
}

function tick() {
  const now = new Date();
  const zone = timeZone ? { timeZone } : {};
  try {
    $("clock").textContent = now.toLocaleTimeString("en-GB", {
      hour: "2-digit", minute: "2-digit", second: "2-digit", ...zone,
    });
    $("date").textContent = now.toLocaleDateString("en-GB", {
      weekday: "long", day: "numeric", month: "long", year: "numeric", ...zone,
    });
  } catch (err) {
    timeZone = undefined; // a zone this browser does not know: use its own
    tick();
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function describeCamera(camera) {
  if (camera.ok) {
    return camera.fps === null ? "Camera ok" : `Camera ok, ${camera.fps.toFixed(1)} frames/s`;
  }
  if (camera.last_frame_age_s === null) return "Camera: no frames yet";
  return `Camera: NO FRAMES for ${Math.round(camera.last_frame_age_s)} s`;
}

function describe(s) {
  const parts = [];
  let bad = Boolean(s.problem);
  if (s.state === "starting") {
    parts.push("Starting\u2026 (loading the face models)");
  } else if (s.state === "stopped") {
    parts.push("The kiosk has stopped");
    bad = true;
  } else {
    parts.push(describeCamera(s.camera));
    bad = bad || !s.camera.ok;
    if (s.sync_backlog === 0) parts.push("every event synced");
    else if (s.sync_backlog !== null) parts.push(`${plural(s.sync_backlog, "event")} waiting to sync`);
    parts.push(s.last_event_local ? `last event ${s.last_event_local}` : "no event yet");
  }
  if (s.warning) {
    parts.push(`WARNING: ${s.warning}`);
    bad = true;
  }
  if (s.problem) parts.push(`PROBLEM: ${s.problem}`);
  return [parts.join(" \u00b7 "), bad];
}

async function pollStatus() {
  let text;
  let bad;
  try {
    const answer = await fetch("/status.json", { cache: "no-store" });
    if (!answer.ok) throw new Error(`status ${answer.status}`);
    const status = await answer.json();
    if (status.timezone && status.timezone !== timeZone) {
      timeZone = status.timezone;
      tick(); // the clock in the kiosk's zone at once, not at the next second
    }
    if (status.problem && $("problem").hidden) {
      notice("problem", { text: PROBLEM_TEXT, shown_for: 3600 });
    } else if (!status.problem && !$("problem").hidden) {
      $("problem").hidden = true; // the kiosk restarted since: the problem is over
      refreshIdle();
    }
    [text, bad] = describe(status);
    if (status.preview && !previewOn) startPreview();
  } catch (err) {
    [text, bad] = ["The kiosk is not responding", true];
  }
  const line = $("status");
  line.textContent = text;
  line.classList.toggle("bad", bad);
}

function startPreview() {
  previewOn = true;
  const image = $("preview");
  const next = (delay) => setTimeout(() => {
    image.src = `/preview.jpg?at=${Date.now()}`;
  }, delay);
  image.addEventListener("load", () => {
    $("preview-box").hidden = false;
    next(PREVIEW_EVERY_MS);
  });
  image.addEventListener("error", () => next(1000));
  next(0);
}

listen();
tick();
setInterval(tick, 1000);
pollStatus();
setInterval(pollStatus, STATUS_EVERY_MS);
