// Proof of liabilities on the auditor page: run by cli/tests/browser.rs against a
// real `tape run --demo --checkpoint-every 2`, with
//   TAPE_URL, TAPE_ADMIN_TOKEN, TAPE_ARTIFACTS, TAPE_CHROMIUM  as face.mjs
//   TAPE_BIN   the tape binary, for `tape pol build`
//   TAPE_DATA  the running tape's data directory
// Account 7 gets 600 USDT; the operator builds round 1 with `tape pol build`. The
// trader logs in on the auditor page, sees the round and clicks "Verify my
// balance": the page fetches the proof and checks it with WebCrypto. Then the
// page's verifier is run on every account's proof (each must verify) and on
// tampered copies (each must fail).

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { until, post, data } from "./lib.mjs";

const URL_ = process.env.TAPE_URL;
const ADMIN = process.env.TAPE_ADMIN_TOKEN;
const OUT = process.env.TAPE_ARTIFACTS || "artifacts";
const CHROMIUM = process.env.TAPE_CHROMIUM || "/usr/bin/chromium";
const BIN = process.env.TAPE_BIN;
const DATA = process.env.TAPE_DATA;
assert.ok(URL_ && ADMIN && BIN && DATA, "TAPE_URL, TAPE_ADMIN_TOKEN, TAPE_BIN and TAPE_DATA are required");
fs.mkdirSync(OUT, { recursive: true });
const problems = [];
const step = (s) => console.log(`pol: ${s}`);
const gql = (token, query, variables) => data(URL_, token, query, variables);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
try {
  const accepted = (r) => assert.equal(r.status, "ACCEPTED", JSON.stringify(r));
  accepted((await gql(ADMIN, `mutation { deposit(account: 7, asset: "USDT", amount: "600", reference: "pol-7") { status } }`)).deposit);
  const t7 = (await gql(ADMIN, "mutation { createApiKey(role: TRADER, account: 7) { token } }")).createApiKey.token;
  // Two more commands: a checkpoint (every 2) now stands after the deposit.
  accepted((await gql(ADMIN, `mutation { deposit(account: 8, asset: "BTC", amount: "0.5", reference: "pol-8") { status } }`)).deposit);
  accepted((await gql(ADMIN, `mutation { deposit(account: 9, asset: "ETH", amount: "3", reference: "pol-9") { status } }`)).deposit);
  const built = execFileSync(BIN, ["pol", "build", "--data", DATA, "--height", "12"], { stdio: ["ignore", "pipe", "pipe"] }).toString();
  assert.match(built, /committed round 1/);
  step("the operator committed round 1 with tape pol build");

  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  await page.goto(`${URL_}/auditor`);
  await page.fill("#token", t7);
  await page.press("#token", "Enter");
  await page.waitForSelector("#whoami");
  await until("round 1 in the table", async () => (await page.$$eval("#pol-rounds tr td:first-child", (tds) => tds.map((td) => td.textContent.trim()))).includes("1"));
  await page.click("#pol-verify");
  const said = await until("the verdict", async () => {
    const t = (await page.textContent("#pol-result")).trim();
    return /verified/i.test(t) && t;
  });
  assert.match(said, /^Verified: account 7 is in round 1 with .*600\.000000 USDT/);
  step(`one click: ${said}`);
  await page.screenshot({ path: path.join(OUT, "pol-verified.png"), fullPage: true });

  // The page's verifier on every account's proof, and on tampered copies.
  const round = (await gql(ADMIN, "{ liabilityRounds { round height algorithm root totals { asset users } } }")).liabilityRounds[0];
  const proofs = [];
  for (let account = 1; account <= 9; account++) {
    // An account with no leaf this round is answered NOT_FOUND: skipped.
    const d = await post(URL_, ADMIN, `{ myLiabilityProof(round: 1, account: ${account}) { round account salt index balances path { hash sums } } }`);
    if (d.data?.myLiabilityProof) proofs.push(d.data.myLiabilityProof);
  }
  assert.ok(proofs.length >= 3, `proofs of the accounts at the checkpoint (the demo's two and 7): ${proofs.length}`);
  const result = await page.evaluate(async ({ proofs, round }) => {
    const { verifyLiabilityProof } = await import("/assets/js/pol.js");
    const flip = (h) => h.slice(0, -1) + (h.endsWith("0") ? "1" : "0");
    let good = 0;
    const escaped = [];
    for (const p of proofs) {
      await verifyLiabilityProof(p, round);
      good++;
      const bad = [];
      const copy = () => JSON.parse(JSON.stringify(p));
      for (let k = 0; k < p.balances.length; k++) { const q = copy(); q.balances[k] = String(BigInt(q.balances[k]) + 1n); bad.push(q); }
      { const q = copy(); q.salt = flip(q.salt); bad.push(q); }
      { const q = copy(); q.account += 1; bad.push(q); }
      for (let l = 0; l < p.path.length; l++) {
        const q = copy(); q.path[l].sums[0] = String(BigInt(q.path[l].sums[0]) + 1n); bad.push(q);
        const r = copy(); r.path[l].hash = flip(r.path[l].hash); bad.push(r);
      }
      { const q = copy(); q.path[0].sums[0] = "-1"; bad.push(q); }
      { const q = copy(); q.path[1].sums[0] = ((1n << 128n) - 1n).toString(); bad.push(q); }
      for (const q of bad) {
        try { await verifyLiabilityProof(q, round); escaped.push(p.account); } catch { /* caught */ }
      }
    }
    const smaller = JSON.parse(JSON.stringify(round));
    smaller.totals[0].users = String(BigInt(smaller.totals[0].users) - 1n);
    try { await verifyLiabilityProof(proofs[0], smaller); escaped.push("smaller total"); } catch { /* caught */ }
    return { good, escaped };
  }, { proofs, round });
  assert.equal(result.good, proofs.length);
  assert.deepEqual(result.escaped, [], "tampered proofs that verified");
  step(`the page's verifier: ${result.good} proofs verified, every tampered copy refused`);
  assert.equal((await page.textContent("#notice")).trim(), "", "the page's notice");
  assert.deepEqual(problems, []);
  console.log("pol page clean");
} finally {
  await browser.close();
}
