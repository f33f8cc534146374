// The operator console: the engine's and projector's health (from /metrics),
// markets (create, halt, resume, disable, fees), assets, deposits, withdrawals
// waiting for approval, API keys (the secret shown once), account restrictions and
// the credentials mode; perpetuals (index freshness, open interest, funding) and the
// insurance fund with the liquidation backlog, and the engine's own count of the
// liquidation work it carries to its next commands. Admin keys act; auditor keys see.

import { gql, start, me, el, fillTable, num, time, showError, receiptText, reportError, attempt, onSubmit, fields, metrics, minorUnits, keepingFocus } from "/assets/js/common.js";

const RECEIPT = "commandId status id reason message";
// The fees form open on a market, { symbol, form }: kept across reloads.
let editingFees = null;

await start("Operator");
const isAdmin = me.role === "ADMIN";
const canRead = isAdmin || me.role === "AUDITOR";
const hint = document.getElementById("role-hint");
if (!isAdmin) {
  hint.hidden = false;
  hint.textContent = canRead ? "An auditor key sees the console; acting needs an admin key." : "Log in with an admin key (or an auditor key to look).";
  for (const e of document.querySelectorAll("[data-admin]")) e.hidden = true;
}

health();
setInterval(health, 2000);
if (canRead) {
  await reload();
  setInterval(reload, 3000);
}
setUpForms();

async function health() {
  const cards = document.getElementById("health");
  try {
    const [m, s] = await Promise.all([metrics(), gql("{ system { credentialsRequired projectedSeq lastCheckpoint { seq commandsApplied timeMs } } }")]);
    const card = (label, value, bad = false, id) => el("div", { class: `card${bad ? " bad" : ""}`, "data-metric": id }, el("span", { class: "muted" }, label), el("span", { class: "v" }, value == null || Number.isNaN(value) ? "–" : String(value)));
    const secs = (v) => (v == null ? null : `${Math.round(v * 10) / 10} s`);
    const lag = m.tape_engine_commands_lag;
    const plag = m.tape_projector_lag_events;
    const age = m.tape_engine_snapshot_age_seconds;
    const behind = m.tape_engine_trusted_time_behind_seconds;
    cards.replaceChildren(
      card("Engine: commands waiting", lag, lag > 10000, "engine-lag"),
      card("Engine: commands/s", m.tape_engine_commands_per_second, false, "engine-rate"),
      card("Engine: last seq", m.tape_engine_last_seq, false, "engine-seq"),
      card("Projector: events behind", plag, plag > 10000, "projector-lag"),
      card("Read models at seq", s.system.projectedSeq - 1, false, "projected-seq"),
      card("Snapshot age", age < 0 ? "none yet" : secs(age), age > 3600, "snapshot-age"),
      card("Trusted time behind", behind < 0 ? "none yet" : secs(behind), behind > 60, "trusted-time"),
      card("Last checkpoint", s.system.lastCheckpoint ? `seq ${s.system.lastCheckpoint.seq}` : "none yet", false, "checkpoint"),
      card("Liquidations waiting for steps", m.tape_liquidation_backlog, m.tape_liquidation_backlog > 0, "liquidation-backlog"),
      card("Perpetuals with crossed positions to check", m.tape_liquidation_sweeps, m.tape_liquidation_sweeps > 0, "liquidation-sweeps"),
    );
    const cred = document.getElementById("credentials");
    cred.textContent = s.system.credentialsRequired
      ? "Credentials: required — every command must be signed by a key allowed to issue it."
      : "Credentials: optional — unsigned commands are accepted (open mode).";
    const toggle = document.getElementById("credentials-toggle");
    toggle.textContent = s.system.credentialsRequired ? "Make credentials optional" : "Require credentials";
    toggle.dataset.required = String(s.system.credentialsRequired);
  } catch (e) {
    showError(cards, e);
  }
}

async function reload() {
  try {
    const d = await gql(`{
      markets { symbol status tickSize lotSize minNotional makerFeePpm takerFeePpm priceBandBps }
      assets { code scale enabled }
      withdrawals(status: [REQUESTED], first: 100) { nodes { id account asset amount requestedMs } }
      apiKeys { id role account }
      accountRestrictions { account canTrade canWithdraw updatedMs }
      perpetuals { symbol index indexSourceMs stale mark openInterest openInterestMax fundingRate }
      insuranceFund { asset balance liquidationsUnderWay positions { market size cost } }
      liabilityRounds { round timeMs checkpoint height root proofsAvailable totals { asset scale users fees insurance } }
    }`);
    const age = (ms) => (ms == null ? "–" : `${Math.max(0, Math.round((Date.now() - ms) / 100) / 10)} s`);
    fillTable(document.getElementById("perpetuals"), d.perpetuals.map((p) => [
      p.symbol, num(p.index), num(age(p.indexSourceMs)), p.stale ? "stale: reduce-only" : "fresh", num(p.mark), num(p.openInterest), num(p.openInterestMax), num(p.fundingRate),
    ]), "No perpetuals");
    fillTable(document.getElementById("insurance"), d.insuranceFund.map((f) => [
      f.asset, num(f.balance, Number(f.balance) < 0 ? "sell" : ""), f.positions.map((p) => `${p.market} ${p.size}`).join(", ") || "none", num(String(f.liquidationsUnderWay)),
    ]), "The fund holds nothing yet");
    const per = (r, field) => el("span", {}, ...r.totals.map((t) => el("div", { class: "num" }, `${minorUnits(t[field], t.scale)} ${t.asset}`)));
    fillTable(document.getElementById("pol-rounds"), d.liabilityRounds.map((r) => [
      String(r.round), time(r.timeMs), num(r.checkpoint), num(r.height), el("code", { title: r.root }, `${r.root.slice(0, 16)}…`),
      per(r, "users"), per(r, "fees"), per(r, "insurance"), r.proofsAvailable ? "yes" : "not here",
    ]), "No round yet");
    if (editingFees && !d.markets.some((m) => m.symbol === editingFees.symbol)) editingFees = null;
    keepingFocus(editingFees && editingFees.form, () => fillTable(document.getElementById("markets"), d.markets.map(marketRow), "No markets yet"));
    fillTable(document.getElementById("assets"), d.assets.map((a) => [a.code, num(a.scale), a.enabled ? "yes" : "no"]), "No assets yet");
    fillTable(document.getElementById("withdrawals"), d.withdrawals.nodes.map(withdrawalRow), "None waiting");
    fillTable(document.getElementById("keys"), d.apiKeys.map(keyRow), "No keys yet");
    fillTable(document.getElementById("restrictions"), d.accountRestrictions.map((r) => [String(r.account), r.canTrade ? "yes" : "no", r.canWithdraw ? "yes" : "no", time(r.updatedMs)]), "No account restricted");
  } catch (e) {
    reportError(e);
  }
}

/** A button that runs a mutation and shows its receipt in `status`. */
function act(label, ariaLabel, status, mutation, vars) {
  if (!isAdmin) return null;
  return el("button", { type: "button", class: "small", "aria-label": ariaLabel, onclick: async () => {
    const r = await attempt(status, async () => Object.values(await gql(mutation, vars))[0], (r) => `${ariaLabel}: ${receiptText(r)}`);
    if (r) reload();
  } }, label);
}

function marketRow(m) {
  const status = document.getElementById("markets-status");
  const set = (s, label) => act(label, `${label} ${m.symbol}`, status, `mutation($m: String!) { setMarketStatus(market: $m, status: ${s}) { ${RECEIPT} } }`, { m: m.symbol });
  const fees = isAdmin
    ? el("button", { type: "button", class: "small", "aria-label": `Fees of ${m.symbol}`, onclick: (ev) => {
      const maker = el("input", { type: "number", min: 0, value: m.makerFeePpm, "aria-label": `Maker fee of ${m.symbol} (ppm)`, size: 6 });
      const taker = el("input", { type: "number", min: 0, value: m.takerFeePpm, "aria-label": `Taker fee of ${m.symbol} (ppm)`, size: 6 });
      const form = el("form", { class: "inline" }, maker, taker, el("button", { type: "submit", class: "small" }, "Save"));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const set = async () => (await gql(`mutation($m: String!, $a: Int!, $b: Int!) { setMarketFees(market: $m, makerFeePpm: $a, takerFeePpm: $b) { ${RECEIPT} } }`, { m: m.symbol, a: Number(maker.value), b: Number(taker.value) })).setMarketFees;
        if (await attempt(status, set, (r) => `Fees of ${m.symbol}: ${receiptText(r)}`)) {
          editingFees = null;
          reload();
        }
      });
      editingFees = { symbol: m.symbol, form };
      ev.target.replaceWith(form);
      maker.focus();
    } }, "Fees")
    : null;
  // The fees form, once open, stays in its row across the reloads (every 3 s) until saved.
  const editing = editingFees && editingFees.symbol === m.symbol ? editingFees.form : null;
  const actions = el("td", {},
    m.status !== "HALTED" && m.status !== "DISABLED" ? set("HALTED", "Halt") : null,
    m.status !== "ACTIVE" ? set("ACTIVE", "Resume") : null,
    m.status !== "DISABLED" ? set("DISABLED", "Disable") : null,
    editing || fees);
  return [m.symbol, m.status.toLowerCase(), num(m.tickSize), num(m.lotSize), num(m.minNotional), num(`${m.makerFeePpm} / ${m.takerFeePpm}`), num(m.priceBandBps), actions];
}

function withdrawalRow(w) {
  const status = document.getElementById("withdrawals-status");
  return [String(w.id), String(w.account), w.asset, num(w.amount), time(w.requestedMs), el("td", {},
    act("Approve", `Approve withdrawal ${w.id}`, status, `mutation($id: Int!) { completeWithdrawal(id: $id) { ${RECEIPT} } }`, { id: w.id }), " ",
    act("Fail", `Fail withdrawal ${w.id}`, status, `mutation($id: Int!) { failWithdrawal(id: $id) { ${RECEIPT} } }`, { id: w.id }))];
}

function keyRow(k) {
  const status = document.getElementById("keys-status");
  const self = k.id === me.keyId;
  return [String(k.id), k.role.toLowerCase(), k.account == null ? "–" : String(k.account), el("td", {},
    self ? el("span", { class: "muted" }, "this session") : act("Revoke", `Revoke key ${k.id}`, status, `mutation($id: Int!) { revokeApiKey(id: $id) { ${RECEIPT} } }`, { id: k.id }))];
}

function setUpForms() {
  const submitted = (f) => async (data) => {
    const r = await f(data);
    reload();
    return r;
  };
  const market = document.getElementById("market-form");
  onSubmit(market, submitted(async (data) => {
    const f = fields(market, data);
    const input = { ...f, makerFeePpm: Number(f.makerFeePpm), takerFeePpm: Number(f.takerFeePpm), priceBandBps: f.priceBandBps == null ? null : Number(f.priceBandBps) };
    return (await gql(`mutation($i: CreateMarketInput!) { createMarket(input: $i) { ${RECEIPT} } }`, { i: input })).createMarket;
  }));
  const asset = document.getElementById("asset-form");
  onSubmit(asset, submitted(async (data) => {
    const f = fields(asset, data);
    return (await gql(`mutation($c: String!, $s: Int!, $l: Decimal) { createAsset(code: $c, scale: $s, dailyWithdrawalLimit: $l) { ${RECEIPT} } }`, { c: f.code, s: Number(f.scale), l: f.dailyWithdrawalLimit })).createAsset;
  }));
  const fees = document.getElementById("account-fees-form");
  onSubmit(fees, submitted(async (data) => {
    const f = fields(fees, data);
    const n = (v) => (v == null ? null : Number(v));
    return (await gql(`mutation($a: Int!, $m: String!, $x: Int, $y: Int) { setAccountFees(account: $a, market: $m, makerFeePpm: $x, takerFeePpm: $y) { ${RECEIPT} } }`, { a: Number(f.account), m: f.market, x: n(f.makerFeePpm), y: n(f.takerFeePpm) })).setAccountFees;
  }));
  const deposit = document.getElementById("deposit-form");
  onSubmit(deposit, submitted(async (data) => {
    const f = fields(deposit, data);
    return (await gql(`mutation($a: Int!, $s: String!, $x: Decimal!, $r: String!) { deposit(account: $a, asset: $s, amount: $x, reference: $r) { ${RECEIPT} } }`, { a: Number(f.account), s: f.asset, x: f.amount, r: f.reference })).deposit;
  }));
  const key = document.getElementById("key-form");
  onSubmit(key, async (data) => {
    const f = fields(key, data);
    const d = await gql(`mutation($r: Role!, $a: Int) { createApiKey(role: $r, account: $a) { key { id role account } token } }`, { r: f.role, a: f.account == null ? null : Number(f.account) });
    const k = d.createApiKey;
    document.getElementById("new-key").replaceChildren(
      el("p", {}, `Key ${k.key.id} (${k.key.role.toLowerCase()}${k.key.account != null ? `, account ${k.key.account}` : ""}). Its token is shown this once:`),
      el("p", { class: "secret", id: "new-token" }, k.token),
    );
    reload();
    return `Key ${k.key.id} created`;
  });
  const restrict = document.getElementById("restrict-form");
  onSubmit(restrict, submitted(async (data) => {
    const f = fields(restrict, data);
    return (await gql(`mutation($a: Int!, $t: Boolean!, $w: Boolean!) { setAccountRestrictions(account: $a, canTrade: $t, canWithdraw: $w) { ${RECEIPT} } }`, { a: Number(f.account), t: f.canTrade, w: f.canWithdraw })).setAccountRestrictions;
  }));
  const toggle = document.getElementById("credentials-toggle");
  const status = document.getElementById("credentials-status");
  toggle.addEventListener("click", async () => {
    const required = toggle.dataset.required !== "true";
    const set = async () => (await gql(`mutation($r: Boolean!) { requireCredentials(required: $r) { ${RECEIPT} } }`, { r: required })).requireCredentials;
    if (await attempt(status, set)) health();
  });
}

