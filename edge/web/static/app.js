// trailcam web: pictures (a placeholder for one the app cannot serve, frames enlarged on click)
// and keyboard review on the review queue. No framework, no build step.
// Each review posts JSON with the page's CSRF token to /api/review or /api/undo.
"use strict";
(function () {
  // A picture that did not load (its file is gone or outside the station's folders: the server
  // logs which) becomes a grey box that says so, instead of the browser's broken-image icon.
  function missing(img) {
    const box = document.createElement("span");
    box.className = "no-picture " + img.className;
    box.textContent = "picture not available";
    box.title = img.alt;
    img.replaceWith(box);
  }
  document.querySelectorAll("main img").forEach((img) => {
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) missing(img);
    else img.addEventListener("error", () => missing(img), { once: true });
  });

  // A frame on the event page opens as large as the window; a click anywhere or Escape closes
  // it. Without JavaScript the link opens the picture itself.
  let open = null;
  function close() { if (open) { open.remove(); open = null; } }
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a.zoom");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    close();
    const caption = link.closest(".frame") && link.closest(".frame").querySelector(".caption");
    open = document.createElement("div");
    open.className = "lightbox";
    open.setAttribute("role", "dialog");
    open.setAttribute("aria-label", "enlarged frame");
    const img = document.createElement("img");
    img.src = link.href;
    img.alt = (link.querySelector("img") || {}).alt || "frame";
    open.appendChild(img);
    const text = document.createElement("p");
    text.textContent = caption ? caption.textContent : "";
    const full = document.createElement("a");
    full.href = link.href;
    full.textContent = " (open the picture)";
    text.appendChild(full);
    open.appendChild(text);
    open.addEventListener("click", (e) => { if (e.target !== full) close(); });
    document.body.appendChild(open);
  });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
})();

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const queue = document.getElementById("queue");
  if (!queue) return;
  const input = document.getElementById("species-input");
  const status = document.getElementById("queue-status");
  const items = () => Array.from(queue.querySelectorAll(".item"));
  const undoStack = [];  // review ids of this page, newest last

  function current() { return queue.querySelector(".item.current"); }
  function select(item) {
    if (!item) return;
    items().forEach((el) => el.classList.remove("current"));
    item.classList.add("current");
    item.focus({ preventScroll: true });
    item.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    const all = items();
    const at = all.indexOf(current());
    select(all[Math.min(all.length - 1, Math.max(0, at + step))]);
  }
  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data.review;
  }
  function say(text) { status.textContent = text; }
  async function review(action, extra) {
    const item = current();
    if (!item) return;
    try {
      const done = await post("/api/review", Object.assign({ event_id: Number(item.dataset.eventId), action }, extra || {}));
      undoStack.push({ id: done.id, item });
      const what = action === "correct" ? "corrected to " + done.species : action === "individuals"
        ? "individuals " + done.individuals : action === "reject" ? "not a bird" : "confirmed";
      item.querySelector(".outcome").textContent = what;
      item.classList.add("done");
      say("event " + done.event_id + ": " + what + " (u: undo)");
      if (action !== "individuals") move(1);
    } catch (error) { say("not recorded: " + error.message); }
  }
  async function undo() {
    const last = undoStack.pop();
    if (!last) { say("nothing to undo"); return; }
    try {
      const undone = await post("/api/undo", { review_id: last.id });
      last.item.querySelector(".outcome").textContent = "";
      last.item.classList.remove("done");
      select(last.item);
      say("review " + undone.id + " undone");
    } catch (error) { undoStack.push(last); say("not undone: " + error.message); }
  }
  // Enter takes the top match of the station's species list for what was typed: an exact
  // name (label, common or scientific, any case) first, then the first name that begins with
  // it, then the first that contains it. Text that matches nothing is sent as typed, and the
  // server refuses it unless it is marked as a new species (edge/store/known_taxa.py).
  function topMatch(typed) {
    const wanted = typed.toLowerCase();
    const options = Array.from(document.querySelectorAll("#species-labels option"))
      .map((o) => ({ value: o.value, names: [o.value, o.textContent || ""].map((n) => n.toLowerCase()) }));
    const exact = options.find((o) => o.names.some((n) => n === wanted || n.replace(/ \(.*\)$/, "") === wanted));
    const prefix = options.find((o) => o.names.some((n) => n.startsWith(wanted)));
    const inside = options.find((o) => o.names.some((n) => n.includes(wanted)));
    const found = exact || prefix || inside;
    return found ? found.value : typed;
  }
  if (input) {
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        const typed = input.value.trim();
        const species = typed ? topMatch(typed) : "";
        if (species) { input.value = ""; input.blur(); review("correct", { species }); }
      } else if (event.key === "Escape") { input.blur(); }
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    const key = event.key;
    if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "c") review("confirm");
    else if (key === "x") review("reject");
    else if (key === "u") undo();
    else if (key === "s" && input) { event.preventDefault(); input.focus(); }
    else if (/^[1-9]$/.test(key)) review("individuals", { individuals: Number(key) });
    else return;
    event.preventDefault();
  });
})();
