// The auditor page: the engine's last checkpoint and its state hash, an account's
// statement as CSV, and its balances at a seq or a time, all from the ledger read
// model over GraphQL. `tape replay verify` stays the proof; these are the look.

import { gql, start, me, el, fillTable, num, time, onSubmit, fields, download, minorUnits } from "/assets/js/common.js";
import { verifyLiabilityProof } from "/assets/js/pol.js";

await start("Auditor");
if (me.role !== "AUDITOR" && me.role !== "ADMIN") {
  const hint = document.getElementById("role-hint");
  hint.hidden = false;
  hint.textContent = me.role
    ? "A trader key sees its own account only: statements of other accounts need an auditor or admin key."
    : "Log in with an auditor key (or an admin key).";
}
if (me.account != null) {
  for (const f of document.querySelectorAll("input[name=account]")) f.value = me.account;
}

await checkpoint();
setInterval(checkpoint, 5000);

async function checkpoint() {
  const d = await gql("{ system { lastCheckpoint { seq timeMs commandOffset commandsApplied stateHash } } }");
  const c = d.system.lastCheckpoint;
  const box = document.getElementById("checkpoint");
  if (!c) {
    box.replaceChildren(el("dd", { class: "muted" }, "The engine has written no checkpoint yet."));
    return;
  }
  const item = (k, v, cls) => [el("dt", { class: "muted" }, k), el("dd", { class: cls }, v)];
  box.replaceChildren(
    ...item("Events-log seq", String(c.seq)),
    ...item("Time", `${time(c.timeMs)} UTC`),
    ...item("Commands applied", String(c.commandsApplied)),
    ...item("Last command offset", String(c.commandOffset)),
    ...item("State hash (blake3)", el("code", { id: "state-hash" }, c.stateHash), "hash"),
  );
}

const ms = (local) => (local ? Date.parse(`${local}Z`) : null);

/** Every ledger entry of `account` in [from, to], oldest first, page by page. */
async function entries(account, fromMs, toMs) {
  const out = [];
  let after = null;
  for (;;) {
    const d = await gql(
      `query($a: Int!, $f: Int, $t: Int, $after: String) {
        ledger(account: $a, fromMs: $f, toMs: $t, first: 1000, after: $after, newestFirst: false) {
          nodes { seq timeMs asset kind amount balance reference } pageInfo { hasNextPage endCursor } } }`,
      { a: account, f: fromMs, t: toMs, after },
    );
    out.push(...d.ledger.nodes);
    if (!d.ledger.pageInfo.hasNextPage) return out;
    after = d.ledger.pageInfo.endCursor;
  }
}

/** The balance of each asset just before `point` ({toSeq} or {toMs}): its last entry's. */
async function balancesAt(account, point) {
  const assets = (await gql("{ assets { code } }")).assets.map((a) => a.code);
  if (!assets.length) return [];
  const q = assets
    .map((code, i) => `a${i}: ledger(account: $a, asset: ${JSON.stringify(code)}, toSeq: $s, toMs: $t, first: 1) { nodes { seq asset balance } }`)
    .join(" ");
  const d = await gql(`query($a: Int!, $s: Int, $t: Int) { ${q} }`, { a: account, s: point.toSeq ?? null, t: point.toMs ?? null });
  return assets.map((code, i) => ({ asset: code, entry: d[`a${i}`].nodes[0] || null })).filter((b) => b.entry);
}

const csvCell = (v) => {
  const s = v == null ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

const statement = document.getElementById("statement-form");
onSubmit(statement, async (data) => {
  const f = fields(statement, data);
  const account = Number(f.account);
  const fromMs = ms(f.from);
  const toMs = ms(f.to);
  const rows = [["seq", "time", "asset", "kind", "amount", "balance", "reference"]];
  if (fromMs != null) {
    for (const b of await balancesAt(account, { toMs: fromMs - 1 })) rows.push([b.entry.seq, new Date(fromMs).toISOString(), b.asset, "opening", "", b.entry.balance, ""]);
  }
  const list = await entries(account, fromMs, toMs);
  for (const e of list) rows.push([e.seq, new Date(e.timeMs).toISOString(), e.asset, e.kind.toLowerCase(), e.amount, e.balance, e.reference]);
  download(`statement-account-${account}.csv`, rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n");
  return `${list.length} entries downloaded`;
});

const balances = document.getElementById("balances-form");
onSubmit(balances, async (data) => {
  const f = fields(balances, data);
  const point = f.seq != null ? { toSeq: Number(f.seq) } : f.at ? { toMs: ms(f.at) } : {};
  const list = await balancesAt(Number(f.account), point);
  fillTable(document.getElementById("balances"), list.map((b) => [b.asset, num(b.entry.balance), num(b.entry.seq)]), "No balance at that point");
  return f.seq != null ? `At seq ${f.seq}` : f.at ? `At ${f.at} UTC` : "Now";
});


const ROUND_FIELDS = "round timeMs checkpoint checkpointSeq stateHash height algorithm root totals { asset scale users }";
let rounds = [];

async function liabilityRounds() {
  rounds = (await gql(`{ liabilityRounds { ${ROUND_FIELDS} } }`)).liabilityRounds;
  fillTable(
    document.getElementById("pol-rounds"),
    rounds.map((r) => [
      String(r.round),
      time(r.timeMs),
      num(r.checkpoint),
      el("code", { title: r.root }, `${r.root.slice(0, 16)}…`),
      el("span", {}, ...r.totals.map((t) => el("div", { class: "num" }, `${minorUnits(t.users, t.scale)} ${t.asset}`))),
    ]),
    "No round published yet (tape pol build)",
  );
  const select = document.getElementById("pol-round");
  const chosen = select.value;
  select.replaceChildren(...rounds.map((r) => el("option", { value: String(r.round) }, `Round ${r.round}`)));
  if (chosen && rounds.some((r) => String(r.round) === chosen)) select.value = chosen;
  document.getElementById("pol-verify").disabled = rounds.length === 0;
}

if (me.role === "AUDITOR" || me.role === "ADMIN") document.getElementById("pol-account-label").hidden = false;

const polForm = document.getElementById("pol-form");
polForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = document.getElementById("pol-result");
  out.className = "status";
  out.textContent = "Verifying…";
  try {
    const f = fields(polForm, new FormData(polForm));
    const round = rounds.find((r) => String(r.round) === String(f.round));
    if (!round) throw new Error("choose a round");
    const d = await gql(
      `query($r: Int, $a: Int) { myLiabilityProof(round: $r, account: $a) { round account salt index balances assets path { hash sums } } }`,
      { r: round.round, a: f.account != null && f.account !== "" ? Number(f.account) : null },
    );
    const proof = d.myLiabilityProof;
    const balances = await verifyLiabilityProof(proof, round);
    const held = balances.map((b, i) => `${minorUnits(b, round.totals[i].scale)} ${round.totals[i].asset}`).join(", ");
    out.className = "status ok";
    out.textContent = `Verified: account ${proof.account} is in round ${round.round} with ${held}; the path leads to root ${round.root.slice(0, 16)}… and adds up to the published totals.`;
  } catch (e) {
    out.className = "status error";
    out.textContent = `NOT verified: ${e.message ?? e}`;
  }
});

await liabilityRounds();
setInterval(liabilityRounds, 10000);
