// Tape's pages in a real browser (Debian's chromium, driven by playwright-core),
// against a real `tape run --demo`. Run by cli/tests/browser.rs, which starts the
// server and passes:
//   TAPE_URL          http://127.0.0.1:PORT
//   TAPE_ADMIN_TOKEN  the operator's bootstrap token
//   TAPE_ARTIFACTS    where screenshots go
//   TAPE_CHROMIUM     the browser (default /usr/bin/chromium)
// It walks what a team evaluating Tape would do: an operator creates keys; a
// trader places orders and sees them in the book and in open orders; a second
// trader fills one; both see the trade, the wallet change and the candle; the first
// cancels another order and meets the API's message for a bad decimal; the operator
// creates a market and approves a withdrawal; an auditor downloads a statement.
// No page may log a console error or fetch anything from another host.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { until as poll, post } from "./lib.mjs";

const URL_ = process.env.TAPE_URL;
const ADMIN = process.env.TAPE_ADMIN_TOKEN;
const OUT = process.env.TAPE_ARTIFACTS || "artifacts";
const CHROMIUM = process.env.TAPE_CHROMIUM || "/usr/bin/chromium";
assert.ok(URL_ && ADMIN, "TAPE_URL and TAPE_ADMIN_TOKEN are required");
fs.mkdirSync(OUT, { recursive: true });
const host = new URL(URL_).host;

const problems = [];
const step = (s) => console.log(`face: ${s}`);
const until = (what, f, ms = 15000) => poll(what, f, ms);
const gql = (token, query, variables) => post(URL_, token, query, variables);

/** The text of each cell of each row of a table body. */
function rows(page, selector) {
  return page.$$eval(`${selector} tr`, (trs) => trs.filter((tr) => !tr.classList.contains("empty")).map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
}

const same = (a, b) => Number(a) === Number(b);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });

/** A page of its own (its own session), watched for console errors and foreign requests. */
async function open(name, pathname, token, viewport = { width: 1280, height: 800 }, colorScheme = "light") {
  const context = await browser.newContext({ viewport, acceptDownloads: true, colorScheme });
  const page = watched(await context.newPage(), name);
  await page.goto(`${URL_}${pathname}`);
  if (token) await logIn(page, token);
  return page;
}

async function logIn(page, token) {
  await page.fill("#token", token);
  await page.press("#token", "Enter");
  await page.waitForSelector("#whoami");
}

/** `page`, its console errors, uncaught errors, failed requests and foreign hosts noted in `problems`. */
function watched(page, name) {
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${name}: console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${name}: uncaught: ${e.message}`));
  page.on("request", (r) => {
    const u = new URL(r.url());
    if ((u.protocol === "http:" || u.protocol === "https:" || u.protocol === "ws:") && u.host !== host) problems.push(`${name}: fetched ${r.url()}`);
  });
  page.on("requestfailed", (r) => {
    // A fetch cut short by the page moving on (a reload after logging in) is not a fault.
    const why = r.failure() && r.failure().errorText;
    if (why !== "net::ERR_ABORTED") problems.push(`${name}: request failed: ${r.url()} ${why}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`${name}: ${r.status()} for ${r.url()}`);
  });
  return page;
}

/** Every visible control has an accessible name (a label, aria-label or text). */
async function labelled(page, name) {
  const bare = await page.$$eval("input, select, button, textarea", (els) =>
    els
      .filter((e) => e.offsetParent !== null && e.type !== "hidden")
      .filter((e) => {
        const text = (e.getAttribute("aria-label") || "").trim() || (e.labels && [...e.labels].map((l) => l.textContent).join("").trim()) || (e.tagName === "BUTTON" && e.textContent.trim()) || e.getAttribute("placeholder");
        return !text;
      })
      .map((e) => e.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(bare, [], `${name}: controls without a name`);
}

try {
  // --- the operator makes keys ------------------------------------------------
  const ops = await open("operator", "/operator", ADMIN);
  await ops.waitForSelector('#health [data-metric="engine-lag"]');
  // The engine's liquidation work carried over: none on a fresh exchange.
  const sweeps = await ops.textContent('#health [data-metric="liquidation-sweeps"] .v');
  assert.equal(sweeps.trim(), "0", "perpetuals with crossed positions to check");
  const newKey = async (role, account) => {
    await ops.selectOption("#key-form select[name=role]", role);
    await ops.fill("#key-form input[name=account]", account == null ? "" : String(account));
    const before = await ops.textContent("#new-key");
    await ops.click("#key-form button[type=submit]");
    await until(`a new ${role} key`, async () => (await ops.textContent("#new-key")) !== before && ops.isVisible("#new-token"));
    return (await ops.textContent("#new-token")).trim();
  };
  const t1Token = await newKey("TRADER", 1);
  const t2Token = await newKey("TRADER", 2);
  const auditorToken = await newKey("AUDITOR", null);
  step("the operator created two trader keys and an auditor key");

  // --- 1. a trader places a limit order and sees it in the book and open orders
  const t1 = await open("trader 1", "/#BTC-USDT", t1Token);
  const t2 = await open("trader 2", "/#BTC-USDT", t2Token);
  // Logging in reloads the page, which cuts short what the page still has out (here
  // its list of markets, held back): that is no fault to show.
  const early = watched(await (await browser.newContext()).newPage(), "logging in early");
  let held = 0;
  await early.route("**/graphql", (route) => {
    if (/\bmarkets \{/.test(route.request().postData() || "") && held++ === 0) return; // never answered
    return route.continue();
  });
  await early.goto(`${URL_}/#BTC-USDT`);
  await logIn(early, t2Token);
  assert.equal(held, 2, "the first document's list of markets was held, the second's answered");
  await early.context().close();
  for (const [p, a] of [[t1, 1], [t2, 2]]) assert.match(await p.textContent("#whoami"), new RegExp(`account ${a}`));
  await labelled(t1, "trade page");
  const place = async (page, side, kind, values) => {
    await page.check(`input[name=side][value=${side}]`, { force: true });
    await page.selectOption("#kind", kind);
    for (const [name, v] of Object.entries(values)) await page.fill(`#order-form [name=${name}]`, v);
    const before = await page.textContent("#order-status");
    await page.click("#place");
    return until(`${page === t1 ? "trader 1" : "trader 2"}'s order status`, async () => {
      const s = (await page.textContent("#order-status")).trim();
      return s !== before && s !== "Placing…" && s;
    });
  };
  const placed = await place(t1, "SELL", "LIMIT", { price: "30000", quantity: "0.5" });
  const sell = Number(/Accepted \(#(\d+)\)/.exec(placed)?.[1]);
  assert.ok(sell, `the sell was accepted: ${placed}`);
  const other = Number(/#(\d+)/.exec(await place(t1, "SELL", "LIMIT", { price: "31000", quantity: "0.1" }))?.[1]);
  assert.ok(other, "the second sell was accepted");
  await until("the sell in trader 1's book", async () => (await rows(t1, "#asks")).some((r) => same(r[0], 30000) && same(r[1], 0.5)));
  await until("the sell in trader 2's book", async () => (await rows(t2, "#asks")).some((r) => same(r[0], 30000) && same(r[1], 0.5)));
  await until("the sell in open orders", async () => (await rows(t1, "#open-orders")).some((r) => r[0] === String(sell) && same(r[4], 30000)));
  for (const p of [t1, t2]) {
    // The local books were kept from deltas, each proven by its checksum: none had to start over.
    assert.equal(await p.getAttribute("#asks >> xpath=..", "data-resyncs"), null, "no book resynced");
  }
  step(`trader 1's sell #${sell} shows in the book and in open orders`);

  // --- 2. the second trader fills it --------------------------------------------
  const bought = await place(t2, "BUY", "LIMIT", { price: "30000", quantity: "0.5" });
  assert.match(bought, /Accepted \(#\d+\), 1 fill/, "the buy filled at once");
  step(`trader 2 filled it: ${bought}`);

  // --- 3. both see the trade, the wallet change and the candle -------------------
  for (const [p, who, btc] of [[t1, "trader 1", 9.5], [t2, "trader 2", 0.5]]) {
    await until(`the trade on ${who}'s tape`, async () => (await rows(p, "#tape")).some((r) => same(r[1], 30000) && same(r[2], 0.5)));
    await p.click("#tab-wallet");
    await until(`${who}'s BTC after the trade`, async () => (await rows(p, "#wallet")).some((r) => r[0] === "BTC" && same(r[3], btc)));
    await until(`the candle on ${who}'s chart`, async () => same(await p.getAttribute("#candles", "data-last-close"), 30000));
    await p.click("#tab-fills");
    await until(`${who}'s fill`, async () => (await rows(p, "#fills")).some((r) => same(r[5], 30000) && same(r[6], 0.5)));
  }
  // A ladder a side, through the API's batches, so the book and its chart have depth.
  const ladder = (side, prices) => prices.map((p) => ({ market: "BTC-USDT", side, kind: "LIMIT", price: String(p), quantity: "0.05" }));
  for (const [token, side, prices] of [[t1Token, "SELL", [30050, 30100, 30150, 30200, 30300]], [t2Token, "BUY", [29950, 29900, 29850, 29800, 29700]]]) {
    const r = await gql(token, "mutation($i: [PlaceOrderInput!]!) { placeOrders(inputs: $i) { items { status reason } } }", { i: ladder(side, prices) });
    assert.ok(r.data && r.data.placeOrders.items.every((x) => x.status === "ACCEPTED"), JSON.stringify(r));
  }
  await until("the ladders in the book", async () => (await rows(t1, "#bids")).length === 5 && (await rows(t1, "#asks")).length === 6);
  for (const p of [t1, t2]) assert.equal(await p.getAttribute("#asks >> xpath=..", "data-resyncs"), null, "no book resynced after the trade");
  await t1.click("#tab-wallet");
  await t1.screenshot({ path: path.join(OUT, "trade.png"), fullPage: true });
  step("both traders see the trade, their wallets and the candle");

  // --- 4. the first trader cancels its other order --------------------------------
  await t1.click("#tab-open");
  await t1.click(`button[aria-label="Cancel order ${other}"]`);
  await until("the cancelled order gone from open orders", async () => !(await rows(t1, "#open-orders")).some((r) => r[0] === String(other)));
  await t1.click("#tab-history");
  await until("the cancel in order history", async () => (await rows(t1, "#history")).some((r) => r[0] === String(other) && r[9] === "cancelled"));
  step(`trader 1 cancelled #${other}`);

  // --- 5. a bad decimal shows the API's own message ----------------------------------
  const api = await gql(t1Token, "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { status } }", {
    i: { market: "BTC-USDT", side: "SELL", kind: "LIMIT", price: "12.3.4", quantity: "0.1", timeInForce: "GTC", postOnly: false, clientOrderId: null },
  });
  const message = api.errors && api.errors[0].message;
  assert.ok(message, `the API refuses 12.3.4: ${JSON.stringify(api)}`);
  const shown = await place(t1, "SELL", "LIMIT", { price: "12.3.4", quantity: "0.1" });
  assert.ok(shown.includes(message), `the page shows the API's message\n  page: ${shown}\n  API:  ${message}`);
  step(`a bad decimal shows: ${message}`);

  // --- the other kinds: iceberg (and an amend of it), stop-limit, market by quote, sliced, bracket
  const iceberg = Number(/#(\d+)/.exec(await place(t1, "SELL", "LIMIT", { price: "30500", quantity: "0.2", displayQuantity: "0.05" }))?.[1]);
  assert.ok(iceberg, "the iceberg was accepted");
  await until("the iceberg showing 0.05 of 0.2", async () => (await rows(t1, "#asks")).some((r) => same(r[0], 30500) && same(r[1], 0.05)));
  // The amend form keeps the focus and what is typed while the account reloads under
  // it: an IOC of the trader's own that expires reloads it half way through typing.
  await t1.click("#tab-open");
  await t1.click(`button[aria-label="Amend order ${iceberg}"]`);
  const newPrice = `input[aria-label="New price of order ${iceberg}"]`;
  await t1.fill(newPrice, "");
  await t1.keyboard.type("306");
  const ioc = await gql(t1Token, "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { status id } }", {
    i: { market: "BTC-USDT", side: "SELL", kind: "LIMIT", price: "31000", quantity: "0.01", timeInForce: "IOC", postOnly: false, clientOrderId: null },
  });
  assert.ok(ioc.data && ioc.data.placeOrder.status === "ACCEPTED", JSON.stringify(ioc));
  await until("the expired IOC in order history", async () => (await rows(t1, "#history")).some((r) => r[0] === String(ioc.data.placeOrder.id)));
  await t1.keyboard.type("00");
  assert.equal(await t1.inputValue(newPrice), "30600", "what is typed across a reload stays in the amend form");
  await t1.keyboard.press("Enter");
  await until("the amend's answer", async () => /amended/.test(await t1.textContent("#open-status")));
  await until("the amended iceberg in the book", async () => (await rows(t1, "#asks")).some((r) => same(r[0], 30600) && same(r[1], 0.05)));
  await until("the amend in open orders", async () => (await rows(t1, "#open-orders")).some((r) => r[0] === String(iceberg) && same(r[4], 30600)));
  assert.match(await place(t1, "SELL", "STOP_LIMIT", { triggerPrice: "29000", price: "28900", quantity: "0.01" }), /^Accepted/);
  await t2.selectOption("#kind", "MARKET");
  await t2.selectOption("#order-form [name=sizeBy]", "quote");
  assert.match(await place(t2, "BUY", "MARKET", { quoteQuantity: "100" }), /^Accepted \(#\d+\), 1 fill/, "a market buy of 100 USDT fills");
  const sliced = await place(t2, "BUY", "SLICED", { lowerPrice: "29000", upperPrice: "29200", count: "3", totalQuantity: "0.03" });
  assert.match(sliced, /^Accepted/);
  await until("the sliced report", async () => /Sliced #\d+ on BTC-USDT: .*3 child order\(s\) open/.test(await t2.textContent("#report")));
  assert.equal((await rows(t2, "#report tbody")).length, 3, "three children");
  assert.match(await place(t2, "BUY", "BRACKET", { entryPrice: "29500", quantity: "0.01", exitPrice: "31500" }), /^Accepted/);
  await until("the bracket report", async () => /Bracket #\d+: closed 0/.test(await t2.textContent("#report")));
  step("iceberg (amended), stop-limit, market by quote, sliced and bracket orders placed from the page, with their reports");

  // --- 6. the operator creates a market and approves a withdrawal ---------------------
  await ops.fill("#market-form [name=symbol]", "ETH-BTC");
  await ops.fill("#market-form [name=base]", "ETH");
  await ops.fill("#market-form [name=quote]", "BTC");
  await ops.fill("#market-form [name=tickSize]", "0.00001");
  await ops.fill("#market-form [name=lotSize]", "0.001");
  await ops.fill("#market-form [name=minNotional]", "0.0001");
  await ops.click("#market-form button[type=submit]");
  await until("the new market accepted", async () => /Accepted/.test(await ops.textContent("#market-form .status")));
  await until("the new market listed", async () => (await rows(ops, "#markets")).some((r) => r[0] === "ETH-BTC" && r[1] === "active"));
  // Its fees, typed across one of the console's reloads (every 3 s): the form stays,
  // and so do the focus and what is typed.
  await ops.click('button[aria-label="Fees of ETH-BTC"]');
  const makerFee = 'input[aria-label="Maker fee of ETH-BTC (ppm)"]';
  await ops.fill(makerFee, "");
  await ops.keyboard.type("15");
  await ops.$eval("#markets tr", (tr) => { tr.dataset.before = "yes"; });
  await until("the console's next reload of its markets", async () => ops.$eval("#markets tr", (tr) => tr.dataset.before !== "yes"));
  await ops.keyboard.type("0");
  assert.equal(await ops.inputValue(makerFee), "150", "what is typed across a reload stays in the fees form");
  await ops.keyboard.press("Enter");
  await until("the new fees listed", async () => (await rows(ops, "#markets")).some((r) => r[0] === "ETH-BTC" && /^150 \//.test(r[5])));
  await t2.click("#tab-wallet");
  await t2.selectOption("#withdraw-asset", "USDT");
  await t2.fill("#withdraw-form [name=amount]", "100");
  await t2.click("#withdraw-form button[type=submit]");
  const asked = await until("the withdrawal accepted", async () => /Accepted \(#(\d+)\)/.exec(await t2.textContent("#withdraw-form .status")));
  const withdrawal = Number(asked[1]);
  await ops.click(`button[aria-label="Approve withdrawal ${withdrawal}"]`, { timeout: 15000 });
  await until("the withdrawal approved", async () => /Accepted/.test(await ops.textContent("#withdrawals-status")));
  const w = await gql(ADMIN, `{ withdrawal(id: ${withdrawal}) { status } }`);
  assert.equal(w.data.withdrawal.status, "COMPLETED");
  await until("the withdrawal gone from the waiting list", async () => !(await rows(ops, "#withdrawals")).some((r) => r[0] === String(withdrawal)));
  await labelled(ops, "operator console");
  await ops.screenshot({ path: path.join(OUT, "operator.png"), fullPage: true });
  step(`the operator created ETH-BTC and approved withdrawal #${withdrawal}`);

  // --- 7. an auditor downloads a statement ---------------------------------------------
  const aud = await open("auditor", "/auditor", auditorToken);
  // The engine's last checkpoint and its state hash, as the API has it (the page polls).
  await until("the last checkpoint on the auditor page", async () => {
    const s = await gql(ADMIN, "{ system { lastCheckpoint { stateHash } } }");
    const hash = s.data.system.lastCheckpoint && s.data.system.lastCheckpoint.stateHash;
    return /^[0-9a-f]{64}$/.test(hash || "") && (await aud.$eval("#state-hash", (e) => e.textContent).catch(() => null)) === hash;
  });
  await aud.fill("#statement-form [name=account]", "1");
  const [download] = await Promise.all([aud.waitForEvent("download"), aud.click("#statement-form button[type=submit]")]);
  const csv = fs.readFileSync(await download.path(), "utf8");
  fs.writeFileSync(path.join(OUT, download.suggestedFilename()), csv);
  const lines = csv.trim().split("\n").map((l) => l.split(","));
  assert.deepEqual(lines[0], ["seq", "time", "asset", "kind", "amount", "balance", "reference"]);
  assert.ok(lines.some((l) => l[2] === "BTC" && l[3] === "trade" && same(l[4], -0.5) && same(l[5], 9.5)), `the statement has the sale:\n${csv}`);
  assert.ok(lines.some((l) => l[2] === "BTC" && l[3] === "deposit" && same(l[4], 10)), `the statement has the deposit:\n${csv}`);
  const now = await gql(ADMIN, "{ portfolio(account: 1) { balances { asset total } } }");
  const btc = now.data.portfolio.balances.find((b) => b.asset === "BTC").total;
  await aud.fill("#balances-form [name=account]", "1");
  await aud.click("#balances-form button[type=submit]");
  await until("balances now", async () => (await rows(aud, "#balances")).some((r) => r[0] === "BTC" && same(r[1], btc)));
  await labelled(aud, "auditor page");
  await aud.screenshot({ path: path.join(OUT, "auditor.png") });
  step(`the auditor downloaded ${download.suggestedFilename()} (${lines.length - 1} rows)`);

  // --- GraphiQL, bundled; the trade page at phone width in the dark ------------------
  const gi = await open("graphiql", "/graphql", null);
  await gi.waitForSelector(".graphiql-container", { timeout: 15000 });
  await gi.screenshot({ path: path.join(OUT, "graphiql.png") });
  const phone = await open("phone", "/#BTC-USDT", t1Token, { width: 390, height: 844 }, "dark");
  await until("the trades at phone width", async () => (await rows(phone, "#tape")).length > 0);
  assert.equal(await phone.getAttribute("html", "data-theme"), "dark");
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 1, `the trade page fits a phone's width (overflow ${overflow}px)`);
  await phone.screenshot({ path: path.join(OUT, "trade-phone-dark.png"), fullPage: true });
  step("GraphiQL loads from the binary; the trade page fits a phone, dark");

  // Keyboard: from the page's start, Tab reaches the order entry's price field.
  await t1.goto(`${URL_}/#BTC-USDT`);
  await t1.waitForSelector("#whoami");
  await t1.selectOption("#kind", "LIMIT");
  await t1.focus("#kind");
  let reached = false;
  for (let i = 0; i < 10 && !reached; i++) {
    await t1.keyboard.press("Tab");
    reached = await t1.evaluate(() => document.activeElement && document.activeElement.name === "price");
  }
  assert.ok(reached, "Tab moves from the order type to the price");
} finally {
  await browser.close();
}

assert.deepEqual(problems, [], "no console errors, failed requests or foreign hosts");
step("every page clean: no console error, no failed request, nothing from another host");
