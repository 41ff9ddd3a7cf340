// kbqa's page: ask, stream the answer (server-sent events over fetch), show citations,
// quoted evidence, sources and feedback. Plain JavaScript, no build step.
(() => {
  "use strict";
  const form = document.getElementById("ask");
  const box = document.getElementById("question");
  const conversation = document.getElementById("conversation");
  const empty = document.getElementById("empty");
  const send = document.getElementById("send");
  const history = []; // [question, answer] pairs of this conversation, oldest first
  // The conversation outlives a reload of this tab, not the tab: sessionStorage, the last
  // KEPT turns (each the answer and sources as the server sent them, redrawn as they were).
  const STORED = "kbqa_conversation", KEPT = 10;
  let saved = [];
  let token = localStorage.getItem("kbqa_token") || "";
  let turns = 0;
  let busy = false; // a question is being answered: no second one until it ends

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  };

  const headers = () => {
    const h = { "Content-Type": "application/json" };
    if (token) h.Authorization = "Bearer " + token;
    return h;
  };

  function askForToken() {
    return new Promise((resolve) => {
      const dialog = document.getElementById("token-dialog");
      const input = document.getElementById("token");
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        if (dialog.returnValue === "ok" && input.value.trim()) {
          token = input.value.trim();
          localStorage.setItem("kbqa_token", token);
          // The admin page is a plain link: it reads the token from this cookie.
          document.cookie = "kbqa_token=" + encodeURIComponent(token) + "; path=/; SameSite=Strict";
          resolve(true);
        } else resolve(false);
      });
      dialog.showModal();
      input.focus();
    });
  }

  // Formatted text (HTML rendered and sanitised by the server, render/page.py): each [n] in it
  // becomes a button that shows the cited passage, each command gets a copy button.
  function renderHtml(container, html, turn, span) {
    container.innerHTML = html;
    container.classList.add("formatted");
    citeButtons(container, turn);
    if (span) markIn(container, span, () => el("mark"));
    copyButtons(container);
  }

  function textNodes(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    return nodes;
  }

  function citeButtons(root, turn) {
    for (const node of textNodes(root)) {
      if (!/\[\d+\]/.test(node.nodeValue) || node.parentElement.closest("code, pre")) continue;
      const parts = node.nodeValue.split(/(\[\d+\])/);
      node.replaceWith(...parts.map((part) => {
        const m = /^\[(\d+)\]$/.exec(part);
        return m ? citeButton(turn, Number(m[1])) : part;
      }));
    }
  }

  // Wraps the first occurrence of `text` that lies within one text node.
  function markIn(root, text, make) {
    for (const node of textNodes(root)) {
      const at = node.nodeValue.indexOf(text);
      if (at < 0) continue;
      const rest = node.splitText(at);
      rest.splitText(text.length);
      const wrap = make();
      rest.replaceWith(wrap);
      wrap.append(rest);
      return true;
    }
    return false;
  }

  // A unit that spans formatting (a step with its command): its whole block is highlighted.
  function markBlock(root, text) {
    const flat = (t) => t.replace(/[`*\s]+/g, " ").trim();
    const wanted = flat(text);
    const blocks = [...root.querySelectorAll("li, p, tr, pre")].filter((b) => flat(b.textContent).includes(wanted));
    if (blocks.length) blocks[blocks.length - 1].classList.add("unit");
  }

  // A code block, or inline code that reads as a command (it has a space), can be copied.
  function copyButtons(root) {
    for (const code of root.querySelectorAll("pre, code")) {
      if (code.tagName === "CODE" && (code.closest("pre") || !/\S\s+\S/.test(code.textContent))) continue;
      const text = code.textContent.replace(/\n$/, "");
      const button = el("button", { type: "button", class: "copy", "aria-label": "copy command", title: "Copy", text: "Copy" });
      button.addEventListener("click", async () => {
        try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
        catch (e) { button.textContent = "Select and copy"; }
        setTimeout(() => { button.textContent = "Copy"; }, 1500);
      });
      code.classList.add("copyable");
      code.after(button);
    }
  }

  // Each [n] in the text becomes a button that shows the cited passage.
  function renderText(container, text, turn) {
    container.textContent = "";
    // A quoted answer (the fallback) marks the words that answer, once.
    const answer = turn.answer;
    let span = answer && answer.mode === "extracted" ? answer.span || "" : "";
    for (const part of text.split(/(\[\d+\])/)) {
      const m = /^\[(\d+)\]$/.exec(part);
      if (!m && span && part.includes(span)) {
        const at = part.indexOf(span);
        container.append(part.slice(0, at), el("mark", { text: span }), part.slice(at + span.length));
        span = "";
        continue;
      }
      if (!m) { container.append(part); continue; }
      container.append(citeButton(turn, Number(m[1])));
    }
  }

  // A pointed answer: each unit it rests on, quoted and labelled as a quote, its copied words
  // in bold inside it (never on their own: out of their sentence they would be a new claim),
  // with the button that opens its passage.
  function renderEvidence(turn) {
    const units = turn.evidence;
    turn.text.textContent = "";
    turn.text.append(el("span", { class: "lead", text: "Quoted from the sources:" }));
    turn.quotes.textContent = "";
    for (const unit of units) {
      const cited = turn.citations.get(unit.n);
      const caption = el("figcaption", {}, "Quote from ", citeButton(turn, unit.n),
        ...(cited ? [" ", ...withCode(cited.label)] : []));
      const quote = el("blockquote");
      if (unit.html) {
        quote.innerHTML = unit.html;
        if (unit.span) markIn(quote, unit.span, () => el("strong", { class: "span" }));
        copyButtons(quote);
      } else quote.append(...marked(unit.text, unit.span));
      turn.quotes.append(el("figure", { class: "quote" }, quote, caption));
    }
    turn.quotes.hidden = !units.length;
  }

  // The text with its span in <strong>, or as it is where the span is not in it.
  function marked(text, span) {
    const at = span ? text.indexOf(span) : -1;
    if (at < 0) return [text];
    return [text.slice(0, at), el("strong", { class: "span", text: span }), text.slice(at + span.length)];
  }

  // A passage with the units the answer points at highlighted, their spans marked.
  function highlighted(text, units) {
    const found = units.map((u) => [text.indexOf(u.text), u]).filter(([at]) => at >= 0)
      .sort((a, b) => a[0] - b[0]);
    const nodes = [];
    let pos = 0;
    for (const [at, unit] of found) {
      if (at < pos) continue;
      nodes.push(text.slice(pos, at), el("mark", { class: "unit" }, ...marked(unit.text, unit.span)));
      pos = at + unit.text.length;
    }
    nodes.push(text.slice(pos));
    return nodes;
  }

  function citeButton(turn, n) {
    const button = el("button", {
      type: "button", class: "cite", "data-n": String(n),
      "aria-expanded": "false", "aria-controls": turn.passage.id,
      "aria-label": "show passage " + n, text: "[" + n + "]",
    });
    const cited = turn.citations.get(n);
    if (cited) button.title = cited.label.replace(/`/g, "");  // a tooltip shows no code
    button.addEventListener("click", () => togglePassage(turn, n, button));
    return button;
  }

  function togglePassage(turn, n, button) {
    const cited = turn.citations.get(n);
    const open = button.getAttribute("aria-expanded") === "true";
    for (const b of turn.node.querySelectorAll("button.cite")) b.setAttribute("aria-expanded", "false");
    if (open || !cited) { turn.passage.hidden = true; return; }
    button.setAttribute("aria-expanded", "true");
    turn.passage.textContent = "";
    const units = turn.evidence.filter((u) => u.n === n);
    const body = el("blockquote", { class: "formatted" });
    if (cited.html) {
      body.innerHTML = cited.html;
      for (const unit of units) {
        if (markIn(body, unit.text, () => el("mark", { class: "unit" }))) {
          const mark = body.querySelector("mark.unit:not(.done)");
          if (mark && unit.span) markIn(mark, unit.span, () => el("strong", { class: "span" }));
          if (mark) mark.classList.add("done");
        } else markBlock(body, unit.text);
      }
      copyButtons(body);
    } else body.append(...highlighted(cited.text, units));
    turn.passage.append(el("p", { class: "passage-label" }, "[" + n + "] ", sourceLink(cited)), body);
    turn.passage.hidden = false;
  }

  function sourceLink(source) {
    return source.link
      ? el("a", { href: source.link + textFragment(source), target: "_blank", rel: "noopener" }, ...withCode(source.label))
      : el("span", {}, ...withCode(source.label));
  }

  // A file opens at the cited place, not its top: a text fragment (#:~:text=) with the first
  // words of the passage as the file writes them, then its section heading should those not be
  // found. The words are taken from one text node of the passage's HTML: its markup (list
  // numbers, backticks) is not among them, so they read the same in the raw file.
  function textFragment(source) {
    if (!source.link.startsWith("/files/")) return "";
    const words = (t) => t.split("\n")[0].trim().split(/\s+/).slice(0, 8).join(" ");
    let start = "";
    if (source.html) {
      const html = document.createElement("template");
      html.innerHTML = source.html; // inert: nothing in a template loads or runs
      const node = textNodes(html.content).find((n) => n.nodeValue.trim().split(/\s+/).length >= 3);
      if (node) start = words(node.nodeValue);
    }
    if (!start && source.text) start = words(source.text);
    const heading = (source.heading || "").split(" › ").pop().trim();
    // In a directive "-", "," and "&" are syntax: percent-encoded when they are text.
    const enc = (t) => encodeURIComponent(t).replace(/-/g, "%2D");
    const parts = [start, heading].filter(Boolean).map((t) => "text=" + enc(t));
    return parts.length ? "#:~:" + parts.join("&") : "";
  }

  // Two chunks of one section are one source, listed once with both numbers: "[1][3] Label".
  function onePerSection(citations) {
    const first = new Map();
    for (const c of citations) {
      const key = c.uri + "\u0000" + c.label;
      if (first.has(key)) first.get(key).marks += "[" + c.n + "]";
      else first.set(key, { ...c, marks: "[" + c.n + "]" });
    }
    return [...first.values()];
  }

  function sourceItem(source) {
    const bits = [source.link ? "" : source.where, source.channel ? "#" + source.channel : "", source.age]
      .filter(Boolean);
    return el("li", {}, source.n ? (source.marks || "[" + source.n + "]") + " " : "", sourceLink(source),
      bits.length ? el("span", { class: "meta", text: " — " + bits.join(" · ") }) : "");
  }

  function newTurn(question) {
    turns += 1;
    const id = "t" + turns;
    const turn = {
      question, sentences: [], evidence: [], citations: new Map(), answer: null,
      node: el("article", { class: "turn", id }),
      text: el("p", { class: "answer", "aria-busy": "true" }),
      quotes: el("div", { class: "evidence", role: "group", "aria-label": "quoted evidence" }),
      passage: el("div", { class: "passage", id: id + "-passage", role: "region", "aria-label": "cited passage" }),
    };
    turn.passage.hidden = true;
    turn.quotes.hidden = true;
    turn.text.append(el("span", { class: "working", text: "Searching…" }));
    turn.node.append(el("p", { class: "question", text: question }), turn.text, turn.quotes, turn.passage);
    conversation.append(turn.node);
    empty.hidden = true;
    return turn;
  }

  function finish(turn, answer, sources) {
    turn.answer = answer;
    turn.text.removeAttribute("aria-busy");
    for (const c of (sources && sources.citations) || []) turn.citations.set(c.n, c);
    turn.evidence = answer.abstained ? [] : answer.evidence || [];
    if (turn.evidence.length) renderEvidence(turn);
    else if (answer.html) {
      turn.quotes.hidden = true;
      renderHtml(turn.text, answer.html, turn, answer.mode === "extracted" ? answer.span : "");
      // Quoted sentences (the fallback) are the sources' words, not an answer written for you.
      if (answer.mode === "extracted") turn.text.prepend(el("span", { class: "lead", text: "Quoted from the sources:" }));
    } else { turn.quotes.hidden = true; renderText(turn.text, answer.answer, turn); }
    if (answer.searched) turn.node.querySelector(".question").after(el("p", { class: "searched", text: "searched for: " + answer.searched }));
    if (answer.note) turn.text.before(el("p", { class: "note", role: "note", text: "Note: " + answer.note }));
    if (answer.abstained) {
      const why = el("details", { class: "why", open: "" },
        el("summary", { text: "Why no answer?" }),
        el("p", {}, ...withCode(answer.why || "")));
      const seen = new Set();
      const closest = ((sources && sources.hits) || []).filter((h) => !seen.has(h.uri) && seen.add(h.uri)).slice(0, 3);
      if (closest.length) why.append(el("p", { text: "Closest sources:" }), el("ul", { class: "sources" }, ...closest.map(sourceItem)));
      turn.node.append(why);
    } else {
      // Where a newer source changed a value: one line each, what it replaced, cited.
      if (answer.updated) turn.node.append(el("p", { class: "updated", text: answer.updated }));
      const list = el("ul", { class: "sources", "aria-label": "sources" }, ...onePerSection((sources && sources.citations) || []).map(sourceItem));
      turn.node.append(list);
      if (answer.cached_line) turn.node.append(el("p", { class: "cached", text: answer.cached_line }));
      history.push([turn.question, answer.answer]);
    }
    turn.node.append(feedbackButtons(turn));
  }

  // Plain text with `a command` in backticks (an abstention's why, a Slack thread's title in a
  // label): the command as code, never the backticks.
  function withCode(text) {
    return text.split("`").map((part, i) => (i % 2 ? el("code", { text: part }) : document.createTextNode(part)));
  }

  // Thumbs as inline SVG: an emoji shows as an empty box where no emoji font is installed.
  const THUMB = "M2 10h3v10H2zM7 20h9.2a2 2 0 0 0 2-1.6l1.5-6.6A2 2 0 0 0 17.8 9.5H13l.8-4.1"
    + "A1.6 1.6 0 0 0 12.2 3.6L7 9.6z";

  function thumb(down) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    for (const [k, v] of Object.entries({
      viewBox: "0 0 22 24", width: "1em", height: "1em", "aria-hidden": "true", focusable: "false",
      class: "icon", fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linejoin": "round",
    })) svg.setAttribute(k, v);
    if (down) svg.setAttribute("transform", "rotate(180)");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", THUMB);
    svg.append(path);
    return svg;
  }

  function rated(turn, value) {
    const box = turn.node.querySelector(".feedback");
    for (const b of box.querySelectorAll("button")) {
      b.disabled = true;
      if (Number(b.dataset.value) === value) b.classList.add("chosen");
    }
    box.querySelector(".thanks").textContent = "Thanks — your feedback is saved.";
  }

  function feedbackButtons(turn) {
    const status = el("span", { class: "thanks", role: "status" });
    const box = el("div", { class: "feedback" });
    for (const [value, label] of [[1, "Helpful"], [-1, "Not helpful"]]) {
      const b = el("button", { type: "button", class: "rate", "aria-label": label, title: label, "data-value": String(value) },
        thumb(value < 0), label);
      b.addEventListener("click", async () => {
        const response = await fetch("/api/feedback", {
          method: "POST", headers: headers(),
          body: JSON.stringify({
            value, question: turn.question, answer: turn.answer.answer,
            citations: turn.answer.citations.map((c) => c.uri),
          }),
        });
        if (response.ok) {
          rated(turn, value);
          if (turn.saved) { turn.saved.rated = value; store(); }
        } else status.textContent = "Could not save the feedback.";
      });
      box.append(b);
    }
    box.append(status);
    return box;
  }

  // The status line while an answer is on its way: queued (position N), reading, writing.
  function showProgress(turn, text) {
    const working = turn.text.querySelector(".working");
    if (working) working.textContent = text;
  }

  function showError(turn, message) {
    turn.text.removeAttribute("aria-busy");
    turn.text.textContent = "";
    turn.text.append(el("span", { class: "error", text: message }));
  }

  async function ask(question) {
    const turn = newTurn(question);
    const payload = {
      question, history: history.slice(-3),
      extractive: document.getElementById("extractive").checked,
    };
    let response;
    for (;;) {
      response = await fetch("/api/ask?stream=1", { method: "POST", headers: headers(), body: JSON.stringify(payload) });
      if (response.status !== 401 || !(await askForToken())) break;
    }
    if (!response.ok) {
      let message = "The server answered " + response.status + ".";
      try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
      showError(turn, message);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", sources = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        const body = JSON.parse(data || "null");
        if (event === "sentence") {
          turn.sentences.push(body.text);
          renderText(turn.text, turn.sentences.join(" "), turn);
        } else if (event === "evidence") {
          turn.evidence.push(body);
          renderEvidence(turn);
        } else if (event === "sources") sources = body;
        else if (event === "answer") { finish(turn, body, sources); remember(turn, body, sources); }
        else if (event === "progress") showProgress(turn, body.text);
        else if (event === "error") showError(turn, body.error.message);
      }
    }
    // The question box is pinned at the bottom: the whole answer, its sources and buttons
    // too, is scrolled above it, not under it.
    document.documentElement.style.scrollPaddingBottom = form.offsetHeight + "px";
    turn.node.scrollIntoView({ block: "nearest" });
  }

  // What a turn needs to be drawn again: the closest sources without their passages (only
  // their labels and links are shown), so that a stored turn stays small.
  function remember(turn, answer, sources) {
    const slim = {
      citations: (sources && sources.citations) || [],
      hits: ((sources && sources.hits) || []).map(({ html, text, ...rest }) => rest),
    };
    turn.saved = { question: turn.question, answer, sources: slim, rated: 0 };
    saved.push(turn.saved);
    store();
  }

  function store() {
    saved = saved.slice(-KEPT);
    for (;;) {
      try { sessionStorage.setItem(STORED, JSON.stringify(saved)); return; }
      catch (e) {
        // Full (or storage off): keep fewer turns, down to none.
        if (!saved.length) return;
        saved.shift();
      }
    }
  }

  // The turns of this tab's conversation before a reload. A stored value that does not parse,
  // or a turn that cannot be drawn, is dropped: the page starts empty instead of failing.
  function restore() {
    let stored;
    try { stored = JSON.parse(sessionStorage.getItem(STORED) || "[]"); } catch (e) { stored = []; }
    if (!Array.isArray(stored)) stored = [];
    for (const item of stored.slice(-KEPT)) {
      if (!item || typeof item.question !== "string" || !item.answer || typeof item.answer !== "object") continue;
      const turn = newTurn(item.question);
      const before = history.length;
      try {
        finish(turn, item.answer, item.sources || {});
        turn.saved = item;
        saved.push(item);
        if (item.rated) rated(turn, item.rated);
      } catch (err) {
        console.error(err);
        turn.node.remove();
        history.length = before;
      }
    }
    if (!conversation.children.length) empty.hidden = false;
    store();
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const question = box.value.trim();
    if (!question || busy) return;
    box.value = "";
    busy = true;
    send.disabled = true;
    form.setAttribute("aria-busy", "true");
    try { await ask(question); } catch (err) { console.error(err); }
    finally { busy = false; send.disabled = false; form.removeAttribute("aria-busy"); box.focus(); }
  });
  box.addEventListener("keydown", (e) => {
    // While an answer streams, Enter adds nothing: the question typed waits for it to end.
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); if (!busy) form.requestSubmit(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    for (const p of document.querySelectorAll(".passage")) p.hidden = true;
    for (const b of document.querySelectorAll("button.cite")) b.setAttribute("aria-expanded", "false");
  });
  document.getElementById("new").addEventListener("click", () => {
    history.length = 0;
    saved = [];
    try { sessionStorage.removeItem(STORED); } catch (e) { /* storage off */ }
    conversation.textContent = "";
    empty.hidden = false;
    box.focus();
  });
  restore();
})();
