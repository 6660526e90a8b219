// Keeps the chat page whole through network drops (Chainlit 2.12's page).
//
// The page re-reads GET /user when the network flickers; any failure of that request counts as
// "signed out" (react-client `useUser` sets the user to null) and the page then navigates to
// /login (AppWrapper.tsx). During a drop that navigation fails too and leaves the browser's own
// offline error page, so the chat never comes back. Measured: 0.1 s after going offline.
// The same drop at another moment leaves an error box in place of a reply's footer (Chainlit
// fetches a custom element's source, /public/elements/*.jsx, when it first renders one) or an
// empty sidebar reading "Failed to fetch" (the thread list, POST /project/threads): neither is
// fetched again. Here a failed read of these (no network, or a proxy's 502/503/504 while an
// instance restarts) waits and tries again, so the page only sees a real answer.
(() => {
  const send = window.fetch.bind(window);
  const HELD = [
    ["GET", (path) => path.endsWith("/user") || path.endsWith("/auth/config")],
    ["GET", (path) => path.includes("/public/elements/")],
    ["POST", (path) => path.endsWith("/project/threads")], // a read: listing the threads
  ];
  const GIVE_UP_MS = 120000; // a server gone for two minutes is an error the page may show
  const TRANSIENT = new Set([502, 503, 504]);

  const held = (input, init) => {
    const raw = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const url = new URL(raw, window.location.href);
    const asked = (init && init.method) || (input instanceof Request ? input.method : "GET");
    const method = asked.toUpperCase();
    if (input instanceof Request && method !== "GET") return false; // its body can be read only once
    return url.origin === window.location.origin && HELD.some(([m, at]) => m === method && at(url.pathname));
  };

  const pause = (ms) =>
    new Promise((resolve) => {
      if (!navigator.onLine) {
        window.addEventListener("online", () => resolve(), { once: true });
      } else {
        window.setTimeout(resolve, ms);
      }
    });

  window.fetch = async (input, init) => {
    if (!held(input, init)) return send(input, init);
    const started = Date.now();
    for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
      let response = null;
      try {
        response = await send(input, init);
      } catch (error) {
        if ((error && error.name === "AbortError") || Date.now() - started > GIVE_UP_MS) throw error;
      }
      if (response && (!TRANSIENT.has(response.status) || Date.now() - started > GIVE_UP_MS)) {
        return response;
      }
      await pause(delay);
    }
  };
})();

// Render reports: while a reply streams (Chainlit shows its stop button) and the tab is visible,
// count animation frames and the time lost to long ones, and post a report to the page's own
// window every 250 ms. Chainlit's page forwards every window message to the server as a
// `window_message` socket event, where smart-agent sets this page's pace from it
// (smart_agent/web/pacing.py): fewer, larger updates when frames run long, more when they are
// short. It answers the server's ping when a session opens, and says when a reply starts, so
// that a page the server has no reports from yet starts gently rather than at full speed.
// Nothing but a look for the stop button (every 50 ms) runs while no reply streams.
(() => {
  const REPORT_MS = 250;
  const LOOK_MS = 50;
  const FRAME_MS = 1000 / 60;
  let running = false;
  let generation = 0; // one frame loop and one idle loop per streaming period
  let last = 0; // the previous frame's time
  let started = 0; // the report window's start
  let frames = 0;
  let lost = 0; // ms of frame time beyond 1/60 s, summed over the window
  let worst = 0; // the longest frame in the window, ms
  let idle = 0; // ms the main thread was idle in the window (requestIdleCallback's time remaining)

  const reset = (now) => {
    started = now;
    frames = 0;
    lost = 0;
    worst = 0;
    idle = 0;
  };

  const frame = (now, mine = generation) => {
    if (!running || mine !== generation) return;
    const gap = now - last;
    last = now;
    frames += 1;
    lost += Math.max(0, gap - FRAME_MS);
    worst = Math.max(worst, gap);
    window.requestAnimationFrame((t) => frame(t, mine));
  };

  // One callback per idle period: its time remaining is that period's idle time.
  const idled = (deadline, mine = generation) => {
    if (!running || mine !== generation) return;
    idle += deadline.timeRemaining();
    window.requestIdleCallback((d) => idled(d, mine));
  };

  const streaming = () => !document.hidden && document.getElementById("stop-button") !== null;

  const post = (body) => window.postMessage({ smartAgentRender: body }, window.location.origin);
  // The server's ping comes back to this window (Chainlit posts a server's window message to the
  // page's parent, which for a top-level page is itself); so does every message posted here.
  window.addEventListener("message", (event) => {
    const body = event.source === window && event.data ? event.data.smartAgentRender : null;
    if (body && body.ping === true) post({ hello: true });
  });

  window.setInterval(() => {
    const now = performance.now();
    if (!streaming()) {
      running = false;
      return;
    }
    if (!running) {
      running = true;
      generation += 1;
      last = now;
      reset(now);
      window.requestAnimationFrame(frame);
      if (window.requestIdleCallback) window.requestIdleCallback(idled);
      post({ started: true });
      return;
    }
    if (now - started < REPORT_MS) return;
    // The frame still being drawn counts too: a page frozen since its last frame reports it.
    const pending = now - last;
    const window_s = (now - started) / 1000;
    const report = {
      window: window_s,
      frames,
      busy: (lost + Math.max(0, pending - FRAME_MS)) / 1000,
      worst_frame: Math.max(worst, pending) / 1000,
      idle: Math.min(idle, now - started) / 1000,
    };
    reset(now);
    if (pending > FRAME_MS) last = now; // reported: the next frame's gap counts from here
    post(report);
  }, LOOK_MS);
})();

// A refused sign-in (Chainlit 2.12's login page, POST /login): the page shows the answer's detail in
// the form through its translation `auth.login.errors.<detail>` ("Wrong user name or password.",
// "Too many failed sign-ins. …": the app root's translations), and also in a toast as the raw key
// ("Unauthorized: credentialssignin"), because its API client toasts every HTTP error
// (react-client api.ts `handleRequestError`). A refusal handed to the page as a plain Error keeps the
// form's translated message and no toast (the login form shows an Error's message the same way).
(() => {
  const send = window.fetch;
  const REFUSED = new Set([401, 429]);
  const KEY = /^[a-z]+$/;

  window.fetch = async (input, init) => {
    const response = await send(input, init);
    const raw = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const url = new URL(raw, window.location.href);
    const method = ((init && init.method) || "GET").toUpperCase();
    if (method !== "POST" || url.origin !== window.location.origin || !url.pathname.endsWith("/login")) {
      return response;
    }
    if (!REFUSED.has(response.status)) return response;
    let detail = null;
    try {
      detail = (await response.clone().json()).detail;
    } catch (error) {
      return response;
    }
    if (typeof detail !== "string" || !KEY.test(detail)) return response;
    throw new Error(detail);
  };
})();

// Math (Chainlit 2.12 with `[features] latex = true`: remark-math and rehype-katex in its Markdown
// component). Three changes to what the page shows, none to what is stored, sent or copied:
// 1. A single `$` never opens math, so "It costs $5 and $10." stays text in every message, the
//    user's too; `$$…$$` is math. remark-math has no option for this that an app can reach: its
//    text tokenizer (micromark-extension-math `mathText`) reads `(options || {}).singleDollarTextMath`
//    and remark-math passes it a plain empty object, so the default comes from Object.prototype
//    (non-enumerable: no `for…in`, Object.keys or JSON ever sees it).
// 2. `\(…\)` and `\[…\]` (what most models write) become `$$…$$` in assistant messages, outside
//    code: Markdown would take their backslashes as escapes, so this must happen before rendering.
//    It is done to the Socket.IO frames the page receives (websocket and long-polling alike), so
//    the page's state holds the shown text while the server keeps the model's.
// 3. Copying a message copies the model's text: Chainlit's copy button copies the message as the
//    page holds it, so a shown text is mapped back to the model's.
(() => {
  Object.defineProperty(Object.prototype, "singleDollarTextMath", {
    value: false,
    writable: true,
    configurable: true,
    enumerable: false,
  });

  const FENCE = /^ {0,3}(`{3,}|~{3,})/;
  // A code span (kept), an escaped backslash (kept), \(…\) or \[…\] (neither across a blank line:
  // that ends a paragraph, and TeX refuses it inside math).
  const INLINE =
    /(?<!`)(`+)(?!`)[\s\S]*?[^`]\1(?!`)|\\\\|\\\(((?:(?!\n[ \t]*\n)[\s\S])+?)\\\)|\\\[((?:(?!\n[ \t]*\n)[\s\S])+?)\\\]/g;

  const prose = (text) =>
    text.replace(INLINE, (match, ticks, inline, display, at, whole) => {
      if (inline !== undefined) return `$$${inline}$$`;
      if (display === undefined) return match;
      const before = whole.slice(whole.lastIndexOf("\n", at - 1) + 1, at);
      const end = whole.indexOf("\n", at + match.length);
      const after = whole.slice(at + match.length, end < 0 ? whole.length : end);
      if (/^[ \t]*$/.test(before) && /^[ \t]*$/.test(after)) {
        // Alone on its lines: a display block ($$ fences on lines of their own).
        return `$$\n${display.replace(/^[ \t]*\n|\n[ \t]*$/g, "")}\n${before}$$`;
      }
      return `$$${display}$$`;
    });

  /** The text as the page shows it: LaTeX delimiters outside code made remark-math's. */
  const shown = (text) => {
    if (!text.includes("\\(") && !text.includes("\\[")) return text;
    const out = [];
    let pending = [];
    let fence = null;
    const flush = () => {
      if (pending.length) out.push(prose(pending.join("\n")));
      pending = [];
    };
    for (const line of text.split("\n")) {
      if (fence !== null) {
        out.push(line);
        const close = FENCE.exec(line);
        if (close && close[1][0] === fence[0] && close[1].length >= fence.length && !line.slice(close[0].length).trim()) {
          fence = null;
        }
        continue;
      }
      const open = FENCE.exec(line);
      if (open) {
        flush();
        out.push(line);
        fence = open[1];
        continue;
      }
      pending.push(line);
    }
    flush();
    return out.join("\n");
  };
  window.smartAgentShownMath = shown; // for the tests and for measuring

  // Each assistant message's text: the model's (`model`) and the page's (`page`), by message id.
  const texts = new Map();
  const KEEP = 2000;
  const remember = (id, model, page) => {
    texts.delete(id);
    texts.set(id, { model, page });
    if (texts.size > KEEP) texts.delete(texts.keys().next().value);
  };

  const step = (data) => {
    if (!data || data.type !== "assistant_message" || typeof data.output !== "string") return false;
    const page = shown(data.output);
    remember(data.id, data.output, page);
    if (page === data.output) return false;
    data.output = page;
    return true;
  };

  // A token may end inside a delimiter (`\` then `(`): the whole text is shown anew each time, and
  // Chainlit replaces a message's text with a token marked `isSequence`.
  const token = (data) => {
    const known = data && texts.get(data.id);
    if (!known || data.isInput) return false;
    const model = data.isSequence ? data.token : known.model + data.token;
    const page = shown(model);
    const plain = known.page === known.model && page === model;
    remember(data.id, model, page);
    if (plain) return false;
    data.token = page;
    data.isSequence = true;
    return true;
  };

  const EVENTS = {
    new_message: step,
    update_message: step,
    stream_start: step,
    stream_token: token,
    resume_thread: (thread) => {
      let changed = false;
      for (const s of (thread && thread.steps) || []) changed = step(s) || changed;
      return changed;
    },
  };
  const EVENT = /^42(\d*)\["([a-z_]+)"/;

  // One engine.io packet: `42["event",{...}]` is a Socket.IO event on the main namespace.
  const packet = (text) => {
    const match = EVENT.exec(text);
    if (!match || !(match[2] in EVENTS)) return text;
    const prefix = `42${match[1]}`;
    const [name, ...args] = JSON.parse(text.slice(prefix.length));
    return EVENTS[name](args[0]) ? prefix + JSON.stringify([name, ...args]) : text;
  };
  const SOCKET = /\/ws\/socket\.io\//;

  // The websocket transport: engine.io-client sets `ws.onmessage` (Chainlit 2.12's bundle).
  const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true,
    enumerable: onmessage.enumerable,
    get() {
      return onmessage.get.call(this);
    },
    set(handler) {
      if (typeof handler !== "function" || !SOCKET.test(this.url)) {
        onmessage.set.call(this, handler);
        return;
      }
      onmessage.set.call(this, (event) => {
        if (typeof event.data !== "string") return handler.call(this, event);
        const data = packet(event.data);
        return handler.call(this, data === event.data ? event : new MessageEvent("message", { data }));
      });
    },
  });

  // The long-polling transport (before the upgrade and after each reconnection): engine.io-client
  // reads `xhr.responseText` once per poll, packets separated by \x1e. Read twice, it gets the same.
  const polls = new WeakMap();
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    if (String(method).toUpperCase() === "GET" && SOCKET.test(String(url))) polls.set(this, null);
    return open.call(this, method, url, ...rest);
  };
  const responseText = Object.getOwnPropertyDescriptor(XMLHttpRequest.prototype, "responseText");
  Object.defineProperty(XMLHttpRequest.prototype, "responseText", {
    configurable: true,
    enumerable: responseText.enumerable,
    get() {
      const text = responseText.get.call(this);
      if (!polls.has(this) || this.readyState !== XMLHttpRequest.DONE || !text) return text;
      const seen = polls.get(this);
      if (seen && seen.text === text) return seen.page;
      const page = text.split("\x1e").map(packet).join("\x1e");
      polls.set(this, { text, page });
      return page;
    },
  });

  const modelText = (text) => {
    for (const { model, page } of texts.values()) if (page === text && model !== text) return model;
    return text;
  };
  const clipboard = navigator.clipboard; // only on a secure page (https or localhost)
  if (!clipboard) return;
  const writeText = clipboard.writeText.bind(clipboard);
  clipboard.writeText = (text) => writeText(modelText(text));
  const write = clipboard.write.bind(clipboard);
  clipboard.write = async (items) => {
    const mapped = await Promise.all(
      items.map(async (item) => {
        if (!item.types.includes("text/plain")) return item;
        const text = await (await item.getType("text/plain")).text();
        const model = modelText(text);
        if (model === text) return item;
        const parts = {};
        for (const type of item.types) {
          parts[type] = type === "text/plain" ? new Blob([model], { type }) : await item.getType(type);
        }
        return new ClipboardItem(parts);
      }),
    );
    return write(mapped);
  };
})();
