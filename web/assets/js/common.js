// What every page shares: the session (an API token kept in sessionStorage only),
// GraphQL over HTTP and over the websocket (graphql-ws, vendored), the header with
// login and theme, and small DOM helpers. Pages speak the public GraphQL API only.

const TOKEN = "tape.token";
const THEME = "tape.theme";

/** A GraphQL error as the API sent it: its message and `extensions.code`. */
export class ApiError extends Error {
  constructor(message, code, extensions) {
    super(message);
    this.code = code || "";
    this.extensions = extensions || {};
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN) || "";
}

// Set once the page is being left (a reload after logging in or out, a link, the
// browser going elsewhere): the requests still out are cut short then, which is no
// fault to show, and nothing is left to act on their answers.
let leaving = false;
addEventListener("pagehide", () => {
  leaving = true;
});

/** Reloads the page, quietly dropping the answers still to come. */
function reloadPage() {
  leaving = true;
  location.reload();
}

/** What a request cut short by the page being left resolves to: nothing, ever. */
const never = () => new Promise(() => {});

/** POSTs a query; resolves to `data` (with `seq` from `extensions.seq`) or throws the first error. */
export async function gql(query, variables = {}) {
  const headers = { "content-type": "application/json" };
  if (token()) headers.authorization = `Bearer ${token()}`;
  let r;
  try {
    r = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch (e) {
    if (leaving) return never();
    throw new ApiError(`the server cannot be reached: ${e.message}`, "UNAVAILABLE");
  }
  let body;
  try {
    body = await r.json();
  } catch (e) {
    if (leaving) return never();
    throw new ApiError(`the server answered ${r.status} without a GraphQL body (${e.message})`, "UNAVAILABLE");
  }
  if (body.errors && body.errors.length) {
    const e = body.errors[0];
    throw new ApiError(e.message, e.extensions && e.extensions.code, e.extensions);
  }
  const data = body.data || {};
  Object.defineProperty(data, "seq", { value: body.extensions && body.extensions.seq, enumerable: false });
  return data;
}

let client = null;
/** The one websocket client of the page (graphql-transport-ws), authenticated by the session token. */
function ws() {
  if (!client) {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql/ws`;
    client = window.graphqlWs.createClient({
      url,
      connectionParams: () => (token() ? { authorization: `Bearer ${token()}` } : {}),
      retryAttempts: Infinity,
      shouldRetry: () => true,
      lazy: true,
    });
    client.on("connected", () => setLive(true));
    client.on("closed", () => setLive(false));
  }
  return client;
}

/**
 * Subscribes; `onData(payload)` gets each item. `variables` may be a function, so a
 * resubscription (after an error such as RESYNC) asks again for `fromSeq`.
 * Returns a function that ends the subscription.
 */
export function subscribe(query, variables, onData, onError = reportError) {
  let stopped = false;
  let dispose = () => {};
  // Errors that another try would only repeat end the subscription for good.
  const final = (e) => ["FORBIDDEN", "UNAUTHENTICATED", "BAD_INPUT", "NOT_FOUND"].includes(e.code);
  const fail = (e) => {
    if (final(e)) stopped = true;
    onError(e);
  };
  const start = () => {
    if (stopped) return;
    const vars = typeof variables === "function" ? variables() : variables;
    dispose = ws().subscribe(
      { query, variables: vars },
      {
        next: (msg) => {
          if (msg.errors && msg.errors.length) {
            const e = msg.errors[0];
            fail(new ApiError(e.message, e.extensions && e.extensions.code, e.extensions));
            return;
          }
          onData(Object.values(msg.data || {})[0]);
        },
        error: (e) => {
          const first = Array.isArray(e) ? e[0] : e;
          const err = new ApiError((first && first.message) || String(e), first && first.extensions && first.extensions.code);
          fail(err);
          // RESYNC and lost connections: start again (the caller reloads on `onError`).
          setTimeout(start, 500);
        },
        complete: () => {
          if (!stopped) setTimeout(start, 500);
        },
      },
    );
  };
  start();
  return () => {
    stopped = true;
    dispose();
  };
}

/** Ends the websocket, so the next subscription authenticates with the current token. */
export function resetSocket() {
  if (client) {
    client.dispose();
    client = null;
  }
}

// --- the header: navigation, login, theme -------------------------------------

export let me = { role: null, keyId: null, account: null };

/** Builds the header and resolves to who the session is (`me`). */
export async function start(pageName) {
  applyTheme(localStorage.getItem(THEME) || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
  const header = document.querySelector("header.top");
  header.append(
    el("a", { class: "brand", href: "/" }, "Tape"),
    el(
      "nav",
      { "aria-label": "Pages" },
      ...[
        ["/", "Trade"],
        ["/operator", "Operator"],
        ["/auditor", "Auditor"],
        ["/graphql", "GraphiQL"],
      ].map(([href, name]) => el("a", { href, "aria-current": name === pageName ? "page" : null }, name)),
    ),
    el("span", { class: "live", id: "live", title: "Live updates", role: "status", hidden: true }, "offline"),
    el("div", { class: "session", id: "session" }),
    el("button", { type: "button", id: "theme", "aria-label": "Switch between light and dark" }, "◐"),
  );
  document.getElementById("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    localStorage.setItem(THEME, next);
    applyTheme(next);
  });
  await whoAmI();
  return me;
}

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  document.dispatchEvent(new CustomEvent("tape:theme", { detail: t }));
}

export function dark() {
  return document.documentElement.dataset.theme === "dark";
}

async function whoAmI() {
  const box = document.getElementById("session");
  box.replaceChildren();
  me = { role: null, keyId: null, account: null };
  if (token()) {
    try {
      me = (await gql("{ me { role keyId account } }")).me;
    } catch (e) {
      sessionStorage.removeItem(TOKEN);
      showError(box, e);
    }
  }
  if (me.role) {
    const who = me.account != null ? `${me.role.toLowerCase()} · account ${me.account}` : me.role.toLowerCase();
    const out = el("button", { type: "button", id: "logout" }, "Log out");
    out.addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN);
      reloadPage();
    });
    box.append(el("span", { id: "whoami" }, who), out);
  } else {
    const input = el("input", { id: "token", type: "password", autocomplete: "off", placeholder: "API token", "aria-label": "API token" });
    const form = el("form", { id: "login", class: "inline" }, input, el("button", { type: "submit" }, "Log in"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN, input.value.trim());
      reloadPage();
    });
    box.append(form);
  }
}

function setLive(on) {
  const b = document.getElementById("live");
  if (b) {
    b.hidden = false;
    b.textContent = on ? "live" : "offline";
    b.classList.toggle("on", on);
  }
}

// --- DOM helpers ----------------------------------------------------------------

/** `el("td", {class: "num"}, "1.5")`: attributes with null values are left out; `on…` functions become listeners. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** A table body's rows from `rows`, each a list of cells (strings or nodes). */
export function fillTable(tbody, rows, empty = "Nothing yet") {
  tbody.replaceChildren();
  if (!rows.length) {
    const cols = tbody.closest("table").querySelectorAll("thead th").length || 1;
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: cols }, empty)));
    return;
  }
  for (const cells of rows) {
    tbody.append(el("tr", {}, ...cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))));
  }
}

/**
 * Runs `rebuild`, which may take `form` (an edit form kept across reloads) out of the
 * page and put it back: whatever in it had the focus has it again, caret included,
 * so a reload under someone typing never eats a keystroke.
 */
export function keepingFocus(form, rebuild) {
  const typing = form && form.contains(document.activeElement) ? document.activeElement : null;
  // Number inputs have no caret to read (null) or set (it throws).
  const caret = typing && typing.selectionStart != null ? [typing.selectionStart, typing.selectionEnd, typing.selectionDirection] : null;
  rebuild();
  if (typing && typing.isConnected && document.activeElement !== typing) {
    typing.focus();
    if (caret) typing.setSelectionRange(...caret);
  }
}

export function num(v, cls = "") {
  return el("td", { class: `num ${cls}`.trim() }, v == null ? "–" : v);
}

export function time(ms) {
  if (ms == null) return "–";
  const d = new Date(Number(ms));
  return d.toISOString().replace("T", " ").slice(0, 19);
}

/** Shows an API error (message and code) in `box`, which is a live region. */
export function showError(box, e) {
  box.replaceChildren(
    el("span", { class: "error" }, e.message, e.code ? el("code", {}, ` ${e.code}`) : null),
  );
}

export function showOk(box, text) {
  box.replaceChildren(el("span", { class: "ok" }, text));
}

/** A receipt as a sentence: ACCEPTED / REJECTED: reason — why / PENDING. */
export function receiptText(r) {
  if (!r) return "";
  if (r.status === "REJECTED") return `Rejected: ${r.reason}${r.message ? ` — ${r.message}` : ""}`;
  if (r.status === "PENDING") return `Pending (command ${r.commandId})`;
  return `Accepted${r.id != null ? ` (#${r.id})` : ""}`;
}

export function reportError(e) {
  const bar = document.getElementById("notice");
  if (bar) showError(bar, e);
}

/**
 * Runs `f` (a mutation resolving to its receipt, or to a sentence) and shows the
 * answer in `box`: an error when the API refused it or the engine rejected it, else
 * `okText(receipt)`. Resolves to the receipt, or null when the API refused it.
 */
export async function attempt(box, f, okText = receiptText, pending = "…") {
  box.replaceChildren(el("span", { class: "muted" }, pending));
  try {
    const out = await f();
    if (out && out.status === "REJECTED") showError(box, new ApiError(receiptText(out), "REJECTED"));
    else showOk(box, typeof out === "string" ? out : okText(out) || "Done");
    return out;
  } catch (e) {
    showError(box, e);
    return null;
  }
}

/** Runs `f` on submit of `form`, showing its answer in the form's status line (see `attempt`). */
export function onSubmit(form, f) {
  const status = form.querySelector(".status") || form.appendChild(el("p", { class: "status", role: "status", "aria-live": "polite" }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    attempt(status, () => f(new FormData(form)));
  });
  return status;
}

/** A form's fields as an object: empty strings become null, checkboxes booleans. */
export function fields(form, data) {
  const out = {};
  for (const [k, v] of data.entries()) out[k] = v === "" ? null : v;
  for (const box of form.querySelectorAll("input[type=checkbox]")) out[box.name] = box.checked;
  return out;
}

/** Reads `/metrics` (Prometheus text) into { name: value } for unlabelled samples. */
export async function metrics() {
  const r = await fetch("/metrics");
  const text = await r.text();
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
    if (m && !m[2]) out[m[1]] = Number(m[3]);
  }
  return out;
}

/** Downloads `text` as a file named `name`. */
export function download(name, text, type = "text/csv") {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

/** GraphQL string literal. */
export function lit(s) {
  return JSON.stringify(String(s));
}

/** Minor units (a decimal string, maybe signed) as an amount with `scale` decimals. */
export function minorUnits(units, scale) {
  let n = BigInt(units);
  const sign = n < 0n ? "-" : "";
  if (n < 0n) n = -n;
  if (!scale) return sign + n.toString();
  const p = 10n ** BigInt(scale);
  return `${sign}${n / p}.${(n % p).toString().padStart(scale, "0")}`;
}
