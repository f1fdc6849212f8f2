// The live reply's browser half (an anywidget ES module shipped inside the package: nothing is fetched).
//
// The kernel sends each update as one custom message holding only what is new:
//   r: reasoning text to append        n: reasoning deltas so far (the live token count)
//   a: answer text to append to the open tail
//   b: finished answer blocks, as HTML the kernel rendered and sanitized (Markdown, raw HTML off, then nh3)
//   t: the whole open tail, replacing it (sent with b, once the tail's start moved on)
//   reset: the reply is being asked again; start over
// so the bytes sent grow with the reply, not with its square, at any pace.
//
// Model text is untrusted. It reaches the page only as text (Text nodes, textContent), or as the kernel's
// sanitized HTML, which is sanitized here once more with the same allow-list before insertion (a walk over an
// inert <template>, where nothing runs or loads). The open tail is drawn approximately (paragraphs, headings,
// lists, quotes, tables, code, inline emphasis, code spans, links) by creating elements, never from an HTML
// string; when its block is finished, the kernel's rendering replaces it.

const TAGS = new Set([
  "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
  "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
  "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
]);
// Dropped with everything inside; any other unknown element is unwrapped (its text kept).
const DROP = new Set([
  "script", "style", "template", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
  "noembed", "xmp", "plaintext", "textarea", "title", "svg", "math", "img", "image", "picture", "video",
  "audio", "source", "track", "canvas", "link", "meta", "base", "form", "input", "button", "select",
  "option", "portal", "head", "html", "body",
]);
const ATTRIBUTES = {
  a: new Set(["href", "title"]),
  abbr: new Set(["title"]),
  ol: new Set(["start"]),
  code: new Set(["class"]),
  th: new Set(["style"]),
  td: new Set(["style"]),
};
const SAFE_URL = /^(https?|mailto):/i;
const ALIGN = /^\s*text-align\s*:\s*(left|right|center)\s*;?\s*$/i;
const LANGUAGE = /^language-[\w+#.-]{1,40}$/;

function safeUrl(url) {
  // What a browser would see: controls and whitespace are ignored inside a scheme.
  const seen = url.replace(/[\u0000-\u0020\u007f]/g, "");
  return SAFE_URL.test(seen) ? url : null;
}

function keepAttribute(tag, name, value) {
  const allowed = ATTRIBUTES[tag];
  if (!allowed || !allowed.has(name)) return false;
  if (name === "href") return safeUrl(value) !== null;
  if (name === "style") return ALIGN.test(value);
  if (name === "class") return tag === "code" && LANGUAGE.test(value);
  if (name === "start") return /^\d{1,9}$/.test(value);
  return true;
}

function clean(node) {
  for (const child of Array.from(node.childNodes)) {
    if (child.nodeType === Node.TEXT_NODE) continue;
    if (child.nodeType !== Node.ELEMENT_NODE) {
      child.remove();
      continue;
    }
    const tag = child.localName;
    if (!TAGS.has(tag)) {
      if (DROP.has(tag) || child.namespaceURI !== "http://www.w3.org/1999/xhtml") {
        child.remove();
      } else {
        clean(child);
        child.replaceWith(...Array.from(child.childNodes));
      }
      continue;
    }
    for (const attribute of Array.from(child.attributes)) {
      if (!keepAttribute(tag, attribute.name.toLowerCase(), attribute.value)) child.removeAttribute(attribute.name);
    }
    if (tag === "a") {
      child.setAttribute("target", "_blank");
      child.setAttribute("rel", "noopener noreferrer");
    }
    clean(child);
  }
}

/** The kernel's sanitized HTML as nodes, sanitized once more (parsed in an inert template). */
export function safeFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  clean(template.content);
  return template.content;
}

function element(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// ------------------------------------------------------------------ the open tail, drawn approximately

const PUNCTUATION = /[!-/:-@[-`{-~]/;
const LINK = /\[([^\]\n]+)\]\(([^()\s]+)\)/y;

/** Inline Markdown of ``text`` appended to ``parent`` as elements and Text nodes. */
function inline(parent, text) {
  let plain = "";
  const flush = () => {
    if (plain) parent.append(plain);
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\\" && i + 1 < text.length && PUNCTUATION.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "`") {
      let j = i;
      while (text[j] === "`") j++;
      const run = text.slice(i, j);
      let close = text.indexOf(run, j);
      while (close >= 0 && (text[close + run.length] === "`" || text[close - 1] === "`")) {
        close = text.indexOf(run, close + run.length);
      }
      if (close < 0) {
        plain += run;
        i = j;
        continue;
      }
      flush();
      let body = text.slice(j, close).replace(/\n/g, " ");
      if (body.length > 2 && body[0] === " " && body[body.length - 1] === " " && body.trim()) body = body.slice(1, -1);
      const code = element("code");
      code.textContent = body;
      parent.append(code);
      i = close + run.length;
      continue;
    }
    if (c === "*" || c === "_" || c === "~") {
      const double = text[i + 1] === c;
      if (c === "~" && !double) {
        plain += c;
        i += 1;
        continue;
      }
      const marker = double ? c + c : c;
      const start = i + marker.length;
      const wordBefore = i > 0 && /\w/.test(text[i - 1]);
      let close = -1;
      if (start < text.length && !/\s/.test(text[start]) && !(c === "_" && wordBefore)) {
        close = text.indexOf(marker, start + 1);
        const closer = (at) => !/\s/.test(text[at - 1]) && (double || text[at + 1] !== c)
          && !(c === "_" && /\w/.test(text[at + marker.length] || ""));
        while (close >= 0 && !closer(close)) {
          close = text.indexOf(marker, close + marker.length);
        }
      }
      if (close < 0) {
        plain += marker;
        i = start;
        continue;
      }
      flush();
      const node = element(c === "~" ? "del" : double ? "strong" : "em");
      inline(node, text.slice(start, close));
      parent.append(node);
      i = close + marker.length;
      continue;
    }
    if (c === "[") {
      LINK.lastIndex = i;
      const match = LINK.exec(text);
      if (match && safeUrl(match[2])) {
        flush();
        const link = element("a");
        link.setAttribute("href", match[2]);
        link.setAttribute("target", "_blank");
        link.setAttribute("rel", "noopener noreferrer");
        inline(link, match[1]);
        parent.append(link);
        i += match[0].length;
        continue;
      }
    }
    plain += c;
    i += 1;
  }
  flush();
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const ITEM = /^ {0,3}([-+*]|(\d{1,9})[.)])(?:[ \t]+|$)/;
const QUOTE = /^ {0,3}> ?/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const DELIMITER = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function cells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function isTable(lines, i) {
  return i + 1 < lines.length && lines[i].includes("|") && DELIMITER.test(lines[i + 1]) && lines[i + 1].includes("-");
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || ITEM.test(line) || QUOTE.test(line) || RULE.test(line);
}

/** A table being streamed: complete rows are added as they come, never redrawn. */
class TableDraw {
  constructor(parent, header, delimiter) {
    this.table = parent.appendChild(element("table"));
    const head = this.table.appendChild(element("thead")).appendChild(element("tr"));
    this.aligns = cells(delimiter).map((cell) =>
      cell.startsWith(":") && cell.endsWith(":") ? "center" : cell.endsWith(":") ? "right" : cell.startsWith(":") ? "left" : "",
    );
    for (const [index, cell] of cells(header).entries()) this.cell(head, "th", cell, index);
    this.width = this.aligns.length;
    this.body = this.table.appendChild(element("tbody"));
    this.partial = null;
  }

  cell(row, tag, text, index) {
    const node = row.appendChild(element(tag));
    if (this.aligns[index]) node.style.textAlign = this.aligns[index];
    inline(node, text);
  }

  row(line, partial) {
    const row = element("tr");
    if (partial) row.className = "dsm-partial";
    const values = cells(line);
    for (let index = 0; index < this.width; index++) this.cell(row, "td", values[index] ?? "", index);
    this.body.append(row);
    return row;
  }

  /** Rows of complete ``lines`` plus the unfinished ``last``; false when the table has ended. */
  extend(lines, last) {
    if (this.partial) this.partial.remove();
    this.partial = null;
    for (const line of lines) {
      if (!line.includes("|")) return false;
      this.row(line, false);
    }
    if (last) this.partial = this.row(last, true);
    return true;
  }
}

/** Draws the open tail; grows a streaming table or code block in place instead of redrawing it. */
class Tail {
  constructor(parent) {
    this.el = parent.appendChild(element("div", "dsm-tail"));
    this.text = "";
    this.grow = null; // {kind, done (offset of the first line not drawn yet), ...}
  }

  set(text) {
    this.text = text;
    this.redraw();
  }

  append(text) {
    this.text += text;
    if (!(this.grow && this.extend())) this.redraw();
  }

  extend() {
    const grow = this.grow;
    const end = this.text.lastIndexOf("\n") + 1;
    if (grow.kind === "code") {
      const body = this.text.slice(grow.done);
      const lines = body.split("\n");
      if (lines.slice(0, -1).some((line) => grow.closes.test(line))) return false;
      grow.code.textContent = body;
      return true;
    }
    const complete = end > grow.done ? this.text.slice(grow.done, end - 1).split("\n") : [];
    if (!grow.table.extend(complete, this.text.slice(Math.max(end, grow.done)))) return false;
    grow.done = Math.max(end, grow.done);
    return true;
  }

  redraw() {
    this.el.replaceChildren();
    this.grow = null;
    const lines = this.text.split("\n");
    const starts = [0];
    for (const line of lines) starts.push(starts[starts.length - 1] + line.length + 1);
    const firstContent = lines.findIndex((line) => line.trim());
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) {
        i += 1;
        continue;
      }
      const first = i === firstContent;
      let match = FENCE.exec(line);
      if (match) {
        const marker = match[1];
        const closes = new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}[ \\t]*$`);
        const body = [];
        const open = i;
        i += 1;
        while (i < lines.length && !(i < lines.length - 1 && closes.test(lines[i]))) body.push(lines[i++]);
        const ended = i < lines.length;
        i += 1;
        const code = this.el.appendChild(element("pre")).appendChild(element("code"));
        code.textContent = body.join("\n");
        if (first && !ended) this.grow = { kind: "code", code, closes, done: starts[open + 1] };
        continue;
      }
      match = HEADING.exec(line);
      if (match) {
        inline(this.el.appendChild(element(`h${match[1].length}`)), match[2] || "");
        i += 1;
        continue;
      }
      if (isTable(lines, i)) {
        const table = new TableDraw(this.el, lines[i], lines[i + 1]);
        i += 2;
        while (i < lines.length - 1 && lines[i].includes("|")) table.row(lines[i++], false);
        const last = i === lines.length - 1 ? lines[i] : null;
        if (last !== null && (last === "" || last.includes("|"))) {
          if (last) table.partial = table.row(last, true);
          if (first) this.grow = { kind: "table", table, done: starts[i] };
          i += 1;
        }
        continue;
      }
      if (RULE.test(line)) {
        this.el.append(element("hr"));
        i += 1;
        continue;
      }
      if (QUOTE.test(line)) {
        const quoted = [];
        while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i])) quoted.push(lines[i++].replace(QUOTE, ""));
        inline(this.el.appendChild(element("blockquote")).appendChild(element("p")), quoted.join("\n"));
        continue;
      }
      match = ITEM.exec(line);
      if (match) {
        const ordered = match[2] !== undefined;
        const list = this.el.appendChild(element(ordered ? "ol" : "ul"));
        if (ordered && match[2] !== "1") list.setAttribute("start", String(Number(match[2])));
        while (i < lines.length && (match = ITEM.exec(lines[i]))) {
          const item = [lines[i].slice(match[0].length)];
          i += 1;
          while (i < lines.length && lines[i].trim() && !ITEM.test(lines[i]) && !FENCE.test(lines[i])) {
            item.push(lines[i++].trim());
          }
          inline(list.appendChild(element("li")), item.join("\n"));
        }
        continue;
      }
      const paragraph = [line];
      i += 1;
      while (i < lines.length && lines[i].trim() && !startsBlock(lines[i]) && !isTable(lines, i)) paragraph.push(lines[i++]);
      inline(this.el.appendChild(element("p")), paragraph.join("\n"));
    }
  }
}

// ------------------------------------------------------------------ the widget

const LIVE = new Map(); // by the widget's key: what every view of it shows

function tokens(count) {
  return `${count.toLocaleString("en-US")} token${count === 1 ? "" : "s"}`;
}

class View {
  constructor(model, el, live) {
    this.model = model;
    this.live = live;
    const root = el.appendChild(element("div", "dsm-live jp-RenderedHTMLCommon"));
    const header = root.appendChild(element("div")).appendChild(element("sub"));
    this.headerText = header.appendChild(document.createTextNode(""));
    header.append(" · ");
    this.status = header.appendChild(element("b"));
    this.note = root.appendChild(element("div", "dsm-note"));
    this.error = root.appendChild(element("div", "dsm-error"));
    this.reasoning = root.appendChild(element("details", "dsm-reasoning"));
    this.title = this.reasoning.appendChild(element("summary"));
    this.thoughts = this.reasoning.appendChild(element("blockquote")).appendChild(document.createTextNode(""));
    const answer = root.appendChild(element("div", "dsm-answer"));
    this.blocks = answer.appendChild(element("div", "dsm-blocks"));
    this.tail = new Tail(answer);
    this.tools = root.appendChild(element("details", "dsm-tools"));
    this.toolsTitle = this.tools.appendChild(element("summary"));
    this.toolsBody = this.tools.appendChild(element("div"));
    this.footer = root.appendChild(element("div")).appendChild(element("sub"));
    this.show();
    this.clock = setInterval(() => this.showTitle(), 100);
  }

  show() {
    const live = this.live;
    this.thoughts.data = live.reasoning;
    this.blocks.replaceChildren(...live.blocks.map((html) => safeFragment(html)));
    this.tail.set(live.tail);
    for (const name of ["header", "status", "note", "error", "tools", "footer"]) this.changed(name);
  }

  apply(message) {
    if (message.reset) {
      this.thoughts.data = "";
      this.blocks.replaceChildren();
      this.tail.set("");
    }
    if (message.r) this.thoughts.appendData(message.r);
    if (message.b) this.blocks.append(safeFragment(message.b));
    if (message.t !== undefined) this.tail.set(message.t);
    else if (message.a) this.tail.append(message.a);
    this.showTitle();
  }

  showTitle() {
    const live = this.live;
    const final = this.model.get("title");
    this.reasoning.classList.toggle("dsm-hidden", !live.reasoning && !final);
    let title = final;
    if (!title && live.started !== null) {
      title = `Thinking… ${tokens(live.n)} · ${((Date.now() - live.started) / 1000).toFixed(1)} s`;
    }
    if (this.title.textContent !== title) this.title.textContent = title;
  }

  changed(name) {
    const value = this.model.get(name) || "";
    if (name === "header") this.headerText.data = value;
    else if (name === "status") this.status.textContent = value;
    else if (name === "note") this.note.textContent = value;
    else if (name === "error") {
      this.error.replaceChildren();
      if (value) {
        const label = element("b");
        label.textContent = "Error:";
        this.error.append(label, ` ${value}`);
      }
    } else if (name === "footer") this.footer.textContent = value;
    else if (name === "tools") {
      this.toolsBody.replaceChildren(safeFragment(value));
      this.toolsTitle.textContent = this.model.get("tools_title") || "Tool calls";
    }
    this.note.classList.toggle("dsm-hidden", !this.model.get("note"));
    this.error.classList.toggle("dsm-hidden", !this.model.get("error"));
    this.tools.classList.toggle("dsm-hidden", !this.model.get("tools"));
    this.showTitle();
  }

  dispose() {
    clearInterval(this.clock);
  }
}

export default {
  initialize({ model }) {
    const live = { reasoning: "", n: 0, started: null, blocks: [], tail: "", views: new Set() };
    const key = model.get("key");
    LIVE.set(key, live);
    model.on("msg:custom", (message) => {
      if (message.reset) Object.assign(live, { reasoning: "", n: 0, started: null, blocks: [], tail: "" });
      if (message.r) {
        live.reasoning += message.r;
        if (live.started === null) live.started = Date.now();
      }
      if (message.n !== undefined) live.n = message.n;
      if (message.b) live.blocks.push(message.b);
      if (message.t !== undefined) live.tail = message.t;
      else if (message.a) live.tail += message.a;
      for (const view of live.views) view.apply(message);
    });
    return () => LIVE.delete(key);
  },

  render({ model, el }) {
    const live = LIVE.get(model.get("key"));
    const view = new View(model, el, live);
    live.views.add(view);
    const names = ["header", "status", "note", "error", "tools", "footer", "title"];
    const listeners = names.map((name) => [name, () => view.changed(name)]);
    for (const [name, listener] of listeners) model.on(`change:${name}`, listener);
    return () => {
      for (const [name, listener] of listeners) model.off(`change:${name}`, listener);
      live.views.delete(view);
      view.dispose();
    };
  },
};
