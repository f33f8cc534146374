// A leveraged position on the trading page, liquidated: run by cli/tests/browser.rs
// against a real `tape run --demo`, with
//   TAPE_URL, TAPE_ADMIN_TOKEN, TAPE_ARTIFACTS, TAPE_CHROMIUM  as face.mjs
//   TAPE_BIN   the tape binary, for `tape oracle`
//   TAPE_DATA  the running tape's data directory
// `tape oracle --demo` creates BTC-USDT-PERP. Account 7 (600 USDT, the
// intermediate tier: 10x) picks 10x with the page's leverage selector and buys
// 0.1 at 50,000 from account 2; the positions panel shows it with its liquidation
// price. A reduce-only sliced sell scales out of it in two children (one larger
// than the position is refused). `tape oracle` then walks the index down to 44,200, below it: the
// position is gone, the panel's liquidations show the insurance fund taking it
// over, the ledger shows the realized loss and the fund holds the position.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { until, data } from "./lib.mjs";

const URL_ = process.env.TAPE_URL;
const ADMIN = process.env.TAPE_ADMIN_TOKEN;
const OUT = process.env.TAPE_ARTIFACTS || "artifacts";
const CHROMIUM = process.env.TAPE_CHROMIUM || "/usr/bin/chromium";
const BIN = process.env.TAPE_BIN;
const DATA = process.env.TAPE_DATA;
assert.ok(URL_ && ADMIN && BIN && DATA, "TAPE_URL, TAPE_ADMIN_TOKEN, TAPE_BIN and TAPE_DATA are required");
fs.mkdirSync(OUT, { recursive: true });
const PERP = "BTC-USDT-PERP";
const problems = [];
const step = (s) => console.log(`perp: ${s}`);
const gql = (token, query, variables) => data(URL_, token, query, variables);

const oracle = (prices, demo = false) =>
  execFileSync(BIN, ["oracle", "--every-ms", "10", "--data", DATA, ...(demo ? ["--demo"] : [])], { input: prices, stdio: ["pipe", "pipe", "pipe"] });

const text = (page, sel) => page.$$eval(`${sel} tr`, (trs) => trs.map((tr) => tr.textContent.replace(/\s+/g, " ").trim()).join("\n"));

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
try {
  oracle("50000\n", true);
  const accepted = (r) => assert.equal(r.status, "ACCEPTED", JSON.stringify(r));
  accepted((await gql(ADMIN, `mutation { deposit(account: 7, asset: "USDT", amount: "600", reference: "perp-7") { status } }`)).deposit);
  accepted((await gql(ADMIN, "mutation { setAccountTier(account: 7, tier: INTERMEDIATE) { status } }")).setAccountTier);
  const key = async (account) => (await gql(ADMIN, `mutation { createApiKey(role: TRADER, account: ${account}) { token } }`)).createApiKey.token;
  const [t7, t2] = [await key(7), await key(2)];
  await until("the perpetual on the read side", async () => (await gql(ADMIN, "{ perpetuals { symbol mark } }")).perpetuals.some((p) => p.symbol === PERP && p.mark));
  const sell = `mutation { placeOrder(input: {market: "${PERP}", side: SELL, kind: LIMIT, price: "50000", quantity: "0.1"}) { status } }`;
  accepted((await gql(t2, sell)).placeOrder);
  step("the demo perpetual is up; account 2 offers 0.1 at 50,000");

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  await page.goto(`${URL_}/#${PERP}`);
  await page.fill("#token", t7);
  await page.press("#token", "Enter");
  await page.waitForSelector("#whoami");
  await until("the leverage selector", async () => (await page.isVisible("#leverage")) && (await page.$$("#leverage option")).length > 1);
  await page.selectOption("#leverage", "10");
  await until("the leverage set", async () => /10x/.test(await page.textContent("#leverage-status")));
  step("trader 7 chose 10x on the page");

  await page.selectOption("#kind", "LIMIT");
  await page.fill("#order-form [name=price]", "50000");
  await page.fill("#order-form [name=quantity]", "0.1");
  await page.click("#place");
  await until("the order's fill", async () => /fill/.test(await page.textContent("#order-status")));
  await page.click("#tab-positions");
  const row = await until("the position in the panel", async () => {
    const t = await text(page, "#positions");
    return t.includes(PERP) && t.includes("10x") && t;
  });
  // 600 less the fee at 10x: liquidated near 44,201.
  const cells = await page.$$eval("#positions tr td", (tds) => tds.map((td) => td.textContent.trim()));
  const liq = Number(cells[10]);
  assert.ok(liq > 44000 && liq < 44400, `liquidation price ${liq} in ${row}`);
  step(`the positions panel shows 0.1 long at 10x, liquidation price ${liq}`);
  await page.screenshot({ path: path.join(OUT, "perp-position.png"), fullPage: true });

  // Scaling out: a reduce-only sliced sell of the whole 0.1 over 51,000–52,000
  // (within the demo market's 5% band).
  await page.selectOption("#kind", "SLICED");
  await page.check("#order-form [name=side][value=SELL]");
  await page.fill("#order-form [name=lowerPrice]", "51000");
  await page.fill("#order-form [name=upperPrice]", "52000");
  await page.fill("#order-form [name=count]", "2");
  await page.fill("#order-form [name=totalQuantity]", "0.1");
  await page.check("#order-form [name=reduceOnly]");
  await page.click("#place");
  await until("the sliced order accepted", async () => /^Accepted \(#\d+\)$/.test((await page.textContent("#order-status")).trim()));
  await page.click("#tab-open");
  await until("two reduce-only children resting", async () => {
    const t = await text(page, "#open-orders");
    return (t.match(/BTC-USDT-PERP/g) || []).length === 2 && t.includes("51000") && t.includes("52000");
  });
  // More than the position is refused with the engine's reason.
  await page.fill("#order-form [name=totalQuantity]", "0.2");
  await page.click("#place");
  await until("the larger slice refused", async () => /would_increase_position|WOULD_INCREASE_POSITION|increase/i.test(await page.textContent("#order-status")));
  // A bracket is never reduce-only: the page says why before sending it.
  await page.selectOption("#kind", "BRACKET");
  await page.click("#place");
  await until("the page's bracket note", async () => /exit is always reduce-only/.test(await page.textContent("#order-status")));
  await page.uncheck("#order-form [name=reduceOnly]");
  step("a reduce-only sliced sell rests as two children; one larger than the position is refused");

  oracle("47500\n45200\n44200\n");
  await until("the liquidation in the panel", async () => /take over/.test(await text(page, "#liquidations")));
  await until("the position gone", async () => /No open positions/.test(await text(page, "#positions")));
  await until("the fund holding the position", async () => (await text(page, "#insurance")).includes(`${PERP} 0.1`));
  step("the panel shows the liquidation and the insurance fund holding the position");
  await page.click("#tab-ledger");
  await until("the realized loss in the ledger", async () => /realized_pnl/.test(await text(page, "#ledger")));
  step("the ledger shows the realized loss");
  await page.click("#tab-positions");
  await page.screenshot({ path: path.join(OUT, "perp-liquidated.png"), fullPage: true });
  assert.equal((await page.textContent("#notice")).trim(), "", "the page's notice");
  assert.deepEqual(problems, []);
  console.log("perp page clean");
} finally {
  await browser.close();
}
