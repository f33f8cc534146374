// The trading page: markets with tickers, the book (kept from depthUpdates and
// proven by its checksum) with a depth chart, candles, the trades tape, order
// entry for every kind, and the account: open orders (cancel, amend), history,
// fills, ledger, the wallet valued in a chosen asset with its equity history, and
// sliced and bracket reports; on a perpetual, the leverage, reduce-only orders
// and the positions panel (margin, liquidation prices, liquidations and the
// insurance fund). Everything live through subscriptions.

import { createChart, CandlestickSeries, HistogramSeries, LineSeries } from "/assets/vendor/lightweight-charts/lightweight-charts.standalone.production.mjs";
import { gql, subscribe, start, me, el, fillTable, num, time, showError, receiptText, reportError, attempt, onSubmit, fields, lit, dark, keepingFocus } from "/assets/js/common.js";
import { Book } from "/assets/js/book.js";

const ORDER_FIELDS = "id account market side kind status doneReason price restingPrice triggerPrice quantity quoteQuantity timeInForce postOnly clientOrderId parent filled averagePrice fees visible hidden createdMs updatedMs updatedSeq";
const INTERVALS = [["M1", "1m"], ["M5", "5m"], ["M15", "15m"], ["H1", "1h"], ["H4", "4h"], ["D1", "1d"]];

let markets = [];
let perps = new Map(); // perpetual symbol -> its collateral
let market = null; // the selected market's symbol
let interval = "M1";
let stops = []; // ends the selected market's subscriptions
const RECEIPT = "commandId status id reason message seq trades { id price quantity }";
let chart, candleSeries, volumeSeries, equityChart, equitySeries;
let stopCandles = () => {};
// The account's reload: one at a time, calls while one runs fold into one more.
let refreshing = null;
let again = false;
let liveBook = null; // the selected market's book
// The amend form open on an order, { id, form }: kept across reloads of the open
// orders (an answer or a fill can reload them while the user types).
let amending = null;

await start("Trade");
await loadMarkets();
setUpEntry();
setUpTabs();
setUpCharts();
if (me.account != null) {
  startAccount();
} else {
  document.getElementById("entry-hint").hidden = false;
  document.getElementById("entry-hint").textContent =
    me.role ? `This ${me.role.toLowerCase()} key has no account of its own: log in with a trader key to trade.` : "Log in with a trader key to trade.";
  document.getElementById("place").disabled = true;
}
selectMarket(decodeURIComponent(location.hash.slice(1)) || (markets[0] && markets[0].symbol));
addEventListener("hashchange", () => selectMarket(decodeURIComponent(location.hash.slice(1))));

// --- markets and tickers ----------------------------------------------------------

async function loadMarkets() {
  const data = await gql("{ markets { symbol base quote tickSize lotSize minNotional status lastPrice } assets { code } perpetuals { symbol collateral } }");
  markets = data.markets;
  perps = new Map(data.perpetuals.map((p) => [p.symbol, p.collateral]));
  const list = document.getElementById("market-list");
  list.replaceChildren(
    ...markets.map((m) =>
      el("li", {}, el("button", { type: "button", "data-market": m.symbol, "aria-pressed": "false", onclick: () => (location.hash = m.symbol) },
        el("span", {}, m.symbol), el("span", { class: "last num" }, m.lastPrice || "–"),
        el("span", { class: "muted" }, m.status === "ACTIVE" ? "" : m.status.toLowerCase()), el("span", { class: "chg num" }, ""))),
    ),
  );
  if (!markets.length) list.append(el("li", { class: "muted" }, "No markets yet: an operator creates them."));
  const valueIn = document.getElementById("value-in");
  valueIn.replaceChildren(...data.assets.map((a) => el("option", { value: a.code, selected: a.code === "USDT" || a.code === "USD" }, a.code)));
  document.getElementById("withdraw-asset").replaceChildren(...data.assets.map((a) => el("option", { value: a.code }, a.code)));
  for (const m of markets) {
    subscribe(`subscription($m: String!) { ticker(market: $m) { market last open high low volume quoteVolume trades bestBid bestAsk seq } }`, { m: m.symbol }, showTicker);
  }
  if (markets.length) {
    const q = markets.map((m, i) => `t${i}: ticker(market: ${lit(m.symbol)}) { market last open high low volume quoteVolume trades bestBid bestAsk }`).join(" ");
    const t = await gql(`{ ${q} }`);
    Object.values(t).forEach(showTicker);
  }
}

function showTicker(t) {
  const button = document.querySelector(`[data-market="${t.market}"]`);
  if (button) {
    button.querySelector(".last").textContent = t.last || "–";
    const chg = button.querySelector(".chg");
    if (t.last && t.open) {
      const pct = ((Number(t.last) - Number(t.open)) / Number(t.open)) * 100;
      chg.textContent = `${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%`;
      chg.className = `chg num ${pct >= 0 ? "up" : "down"}`;
    }
  }
  if (t.market !== market) return;
  const stat = (name, v, id) => el("div", {}, el("span", {}, name), el("span", { id }, v == null ? "–" : v));
  document.getElementById("ticker").replaceChildren(
    stat("Last", t.last), stat("24h open", t.open), stat("24h high", t.high), stat("24h low", t.low),
    stat("24h volume", t.volume), stat("Trades", t.trades), stat("Bid", bestOf("bids", t.bestBid), "best-bid"), stat("Ask", bestOf("asks", t.bestAsk), "best-ask"),
  );
}

// The best prices come from the live book once it is kept (the ticker's move on trades only).
function bestOf(side, fallback) {
  if (!liveBook || liveBook.seq == null) return fallback;
  const best = liveBook.side(side)[0];
  return best ? best[0] : null;
}

function selectMarket(symbol) {
  if (!symbol || !markets.some((m) => m.symbol === symbol) || symbol === market) return;
  market = symbol;
  for (const b of document.querySelectorAll("[data-market]")) b.setAttribute("aria-pressed", String(b.dataset.market === symbol));
  document.getElementById("market-name").textContent = symbol;
  document.title = `Tape · ${symbol}`;
  stops.forEach((s) => s());
  stops = [];
  gql(`{ ticker(market: ${lit(symbol)}) { market last open high low volume quoteVolume trades bestBid bestAsk } }`).then((d) => showTicker(d.ticker), reportError);
  startBook();
  startTape();
  loadCandles();
  const perp = perps.has(symbol);
  for (const e of document.querySelectorAll("[data-perp]")) e.hidden = !perp;
  if (perp && me.account != null) loadLeverage().catch(reportError);
  if (me.account != null) refreshAccount();
}

/** The leverage selector: 1x up to the most the account may use on the market. */
async function loadLeverage() {
  const d = await gql(`{ leverage(market: ${lit(market)}) { cap leverage } perpetual(symbol: ${lit(market)}) { brackets { maxLeverage } } }`);
  const most = Math.min(d.leverage.cap, d.perpetual.brackets[0].maxLeverage);
  const steps = [...new Set([1, 2, 3, 5, 10, 20, 25, 50, 75, 100, 125, d.leverage.leverage, most])].filter((x) => x <= most).sort((a, b) => a - b);
  document.getElementById("leverage").replaceChildren(...steps.map((x) => el("option", { value: String(x), selected: x === d.leverage.leverage }, `${x}x`)));
}

// --- the book ---------------------------------------------------------------------

function startBook() {
  const book = new Book();
  liveBook = book;
  let stop = () => {};
  const run = () => {
    book.clear();
    stop = subscribe(
      `subscription($m: String!) { depthUpdates(market: $m, levels: 20) { kind prevSeq seq checksum bids { price quantity } asks { price quantity } } }`,
      { m: market },
      (u) => {
        if (!book.apply(u)) {
          // A gap or a checksum that does not match: start again from a snapshot.
          const table = document.getElementById("asks").closest("table");
          table.dataset.resyncs = String(Number(table.dataset.resyncs || 0) + 1);
          stop();
          setTimeout(run, 100);
          return;
        }
        drawBook(book);
      },
      (e) => { if (e.code !== "RESYNC") reportError(e); },
    );
  };
  run();
  stops.push(() => stop());
}

function drawBook(book) {
  const asks = book.side("asks").slice(0, 10);
  const bids = book.side("bids").slice(0, 10);
  const cum = (levels) => {
    let t = 0;
    return levels.map(([p, q]) => [p, q, (t += Number(q))]);
  };
  const a = cum(asks);
  const b = cum(bids);
  const max = Math.max(a.length ? a[a.length - 1][2] : 0, b.length ? b[b.length - 1][2] : 0) || 1;
  const row = (cls) => ([p, q, t]) => {
    const tr = el("tr", { class: cls, style: `--w:${((t / max) * 100).toFixed(1)}%` }, num(p, cls), num(q), num(round(t)));
    return tr;
  };
  const asksBody = document.getElementById("asks");
  asksBody.replaceChildren(...a.map(row("ask")).reverse());
  document.getElementById("bids").replaceChildren(...b.map(row("bid")));
  if (!a.length) asksBody.append(el("tr", { class: "empty" }, el("td", { colspan: 3 }, "No asks")));
  if (!b.length) document.getElementById("bids").append(el("tr", { class: "empty" }, el("td", { colspan: 3 }, "No bids")));
  const spread = document.getElementById("spread");
  spread.textContent = asks.length && bids.length ? `Spread ${round(Number(asks[0][0]) - Number(bids[0][0]))}` : "–";
  drawDepth(book.side("bids"), book.side("asks"));
  for (const [id, side] of [["best-bid", "bids"], ["best-ask", "asks"]]) {
    const e = document.getElementById(id);
    if (e) e.textContent = bestOf(side) || "–";
  }
}

function round(x) {
  return Number(x.toPrecision(12)).toString();
}

/** The depth chart: cumulative quantity by price, bids left and asks right (SVG). */
function drawDepth(bids, asks) {
  const box = document.getElementById("depth-chart");
  const w = box.clientWidth || 600;
  const h = box.clientHeight || 140;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "depth");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  if (bids.length || asks.length) {
    const prices = [...bids, ...asks].map(([p]) => Number(p));
    const lo = Math.min(...prices);
    const hi = Math.max(...prices);
    const steps = (levels) => {
      let t = 0;
      return levels.map(([p, q]) => [Number(p), (t += Number(q))]);
    };
    const sb = steps(bids);
    const sa = steps(asks);
    const top = Math.max(sb.length ? sb[sb.length - 1][1] : 0, sa.length ? sa[sa.length - 1][1] : 0) || 1;
    const x = (p) => (hi === lo ? w / 2 : ((p - lo) / (hi - lo)) * (w - 20) + 10);
    const y = (v) => h - 4 - (v / top) * (h - 16);
    const path = (pts, cls) => {
      if (!pts.length) return;
      let d = `M${x(pts[0][0])},${h - 4}`;
      for (const [p, v] of pts) d += ` L${x(p)},${y(v)}`;
      d += ` L${x(pts[pts.length - 1][0])},${h - 4} Z`;
      const e = document.createElementNS(ns, "path");
      e.setAttribute("d", d);
      e.setAttribute("fill", cls === "bid" ? "var(--buy-bg)" : "var(--sell-bg)");
      e.setAttribute("stroke", cls === "bid" ? "var(--buy)" : "var(--sell)");
      svg.append(e);
    };
    path(sb, "bid");
    path(sa, "ask");
  }
  box.replaceChildren(svg);
}

// --- the tape ---------------------------------------------------------------------

function startTape() {
  const seen = new Map();
  let last = 0;
  const show = () => {
    const rows = [...seen.values()].sort((a, b) => b.id - a.id).slice(0, 60);
    fillTable(document.getElementById("tape"), rows.map((t) => [time(t.timeMs).slice(11), num(t.price, t.takerSide === "BUY" ? "buy" : "sell"), num(t.quantity)]), "No trades yet");
  };
  const add = (t) => {
    if (t.market !== market) return;
    seen.set(t.id, t);
    last = Math.max(last, t.seq);
    if (seen.size > 200) seen.delete(Math.min(...seen.keys()));
  };
  gql(`{ trades(market: ${lit(market)}, first: 60) { nodes { id seq timeMs market price quantity takerSide } } }`).then((d) => {
    d.trades.nodes.forEach(add);
    show();
    const stop = subscribe(
      `subscription($m: String!, $from: Int) { trades(market: $m, fromSeq: $from) { id seq timeMs market price quantity takerSide } }`,
      () => ({ m: market, from: last ? last + 1 : null }),
      (t) => {
        add(t);
        show();
        if (me.account != null) refreshAccount();
      },
    );
    stops.push(stop);
  }, reportError);
}

// --- candles ----------------------------------------------------------------------


function chartOptions() {
  const text = dark() ? "#e6e9ed" : "#1b1f24";
  const grid = dark() ? "#2a313a" : "#e3e6ea";
  return {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: text },
    grid: { vertLines: { color: grid }, horzLines: { color: grid } },
    timeScale: { timeVisible: true, secondsVisible: false },
  };
}

function setUpCharts() {
  chart = createChart(document.getElementById("candles"), chartOptions());
  candleSeries = chart.addSeries(CandlestickSeries, { upColor: "#26a269", downColor: "#e01b24", borderVisible: false, wickUpColor: "#26a269", wickDownColor: "#e01b24" });
  volumeSeries = chart.addSeries(HistogramSeries, { priceScaleId: "", priceFormat: { type: "volume" }, color: "rgba(120,130,150,0.45)" });
  volumeSeries.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  equityChart = createChart(document.getElementById("equity"), chartOptions());
  equitySeries = equityChart.addSeries(LineSeries, { color: "#2457c5", lineWidth: 2 });
  document.addEventListener("tape:theme", () => {
    chart.applyOptions(chartOptions());
    equityChart.applyOptions(chartOptions());
  });
  const box = document.getElementById("intervals");
  for (const [id, name] of INTERVALS) {
    box.append(el("button", { type: "button", class: "small", "data-interval": id, "aria-pressed": String(id === interval), onclick: () => {
      interval = id;
      for (const b of box.children) b.setAttribute("aria-pressed", String(b.dataset.interval === id));
      loadCandles();
    } }, name));
  }
}

function loadCandles() {
  stopCandles();
  const bar = (c) => ({ time: Math.floor(c.startMs / 1000), open: +c.open, high: +c.high, low: +c.low, close: +c.close });
  const vol = (c) => ({ time: Math.floor(c.startMs / 1000), value: +c.volume });
  const fields = "market interval startMs open high low close volume trades";
  gql(`{ candles(market: ${lit(market)}, interval: ${interval}, limit: 500) { ${fields} } }`).then((d) => {
    candleSeries.setData(d.candles.map(bar));
    volumeSeries.setData(d.candles.map(vol));
    chart.timeScale().fitContent();
    document.getElementById("candles").dataset.candles = String(d.candles.length);
  }, reportError);
  const stop = subscribe(`subscription($m: String!, $i: CandleInterval!) { candles(market: $m, interval: $i) { ${fields} seq } }`, { m: market, i: interval }, (c) => {
    if (c.market !== market) return;
    candleSeries.update(bar(c));
    volumeSeries.update(vol(c));
    const box = document.getElementById("candles");
    box.dataset.lastClose = c.close;
    box.dataset.lastTrades = String(c.trades);
  });
  stopCandles = stop;
}

// --- order entry ------------------------------------------------------------------

function setUpEntry() {
  const form = document.getElementById("order-form");
  const kind = form.elements.kind;
  const show = () => {
    const k = kind.value;
    const sizeBy = form.elements.sizeBy.value;
    const tif = form.elements.timeInForce.value;
    for (const e of form.querySelectorAll("[data-kinds]")) e.hidden = !e.dataset.kinds.split(" ").includes(k);
    const byQuote = (k === "MARKET" || k === "STOP_MARKET") && sizeBy === "quote";
    const quantity = form.elements.quantity.closest("label");
    quantity.hidden = !quantity.dataset.kinds.split(" ").includes(k) || byQuote;
    form.querySelector("[data-size=quote]").hidden = !byQuote;
    form.querySelector("[data-tif=GTD]").hidden = tif !== "GTD";
  };
  form.addEventListener("change", show);
  show();
  document.getElementById("leverage").addEventListener("change", async (ev) => {
    ev.stopPropagation();
    const status = document.getElementById("leverage-status");
    const leverage = Number(ev.target.value);
    const r = await attempt(status, async () => (await gql(`mutation($m: String!, $l: Int!) { setLeverage(market: $m, leverage: $l) { ${RECEIPT} } }`, { m: market, l: leverage })).setLeverage, (r) => `${receiptText(r)}: ${leverage}x`);
    if (r) refreshAccount();
  });
  const status = document.getElementById("order-status");
  const withFills = (r) => `${receiptText(r)}${r.trades && r.trades.length ? `, ${r.trades.length} fill(s)` : ""}`;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await attempt(status, () => place(fields(form, new FormData(form))), withFills, "Placing…");
    if (!r) return;
    if (r.status !== "REJECTED" && r.report) showReport(r.report, r.id);
    refreshAccount();
  });
}


async function place(f) {
  const common = { market, side: f.side, clientOrderId: f.clientOrderId };
  if (f.kind === "SLICED") {
    const input = { ...common, lowerPrice: f.lowerPrice, upperPrice: f.upperPrice, count: Number(f.count), totalQuantity: f.totalQuantity, postOnly: f.postOnly };
    if (perps.has(market) && f.reduceOnly) input.reduceOnly = true;
    const d = await gql(`mutation($i: PlaceSlicedInput!) { placeSlicedOrder(input: $i) { ${RECEIPT} } }`, { i: input });
    return { ...d.placeSlicedOrder, report: "sliced" };
  }
  if (f.kind === "BRACKET") {
    if (perps.has(market) && f.reduceOnly) throw new Error("A bracket's entry opens a position and its exit is always reduce-only: untick Reduce only to place one.");
    const input = { ...common, entryPrice: f.entryPrice, quantity: f.quantity, exitPrice: f.exitPrice };
    const d = await gql(`mutation($i: PlaceBracketInput!) { placeBracketOrder(input: $i) { ${RECEIPT} } }`, { i: input });
    return { ...d.placeBracketOrder, report: "bracket" };
  }
  const input = { ...common, kind: f.kind };
  if (perps.has(market) && f.reduceOnly) input.reduceOnly = true;
  const byQuote = (f.kind === "MARKET" || f.kind === "STOP_MARKET") && f.sizeBy === "quote";
  if (byQuote) input.quoteQuantity = f.quoteQuantity;
  else input.quantity = f.quantity;
  if (f.kind === "LIMIT" || f.kind === "STOP_LIMIT") {
    input.price = f.price;
    input.timeInForce = f.timeInForce;
    if (f.timeInForce === "GTD") input.expiresAtMs = f.expires ? new Date(f.expires).getTime() : null;
  }
  if (f.kind === "STOP_MARKET" || f.kind === "STOP_LIMIT") input.triggerPrice = f.triggerPrice;
  if (f.kind === "LIMIT") {
    input.postOnly = f.postOnly;
    if (f.displayQuantity) input.displayQuantity = f.displayQuantity;
  }
  const d = await gql(`mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { ${RECEIPT} } }`, { i: input });
  return d.placeOrder;
}

// --- positions on perpetuals -------------------------------------------------------

// A function, not a const: the account loads before this module's body has run.
function perpQuery(collateral) {
  return `
  positions { market size entryPrice mark unrealizedPnl realizedPnl funding leverage initialMargin maintenanceMargin liquidationPrice }
  margin(collateral: ${lit(collateral)}) { collateral wallet equity maintenance marginRatio unrealizedPnl notional notionalCap }
  liquidations(last: 20) { seq timeMs what market quantity price equity maintenance }
  insuranceFund { asset balance positions { market size cost } }`;
}

function showPositions(d) {
  const m = d.margin;
  const stat = (name, v, id) => el("div", {}, el("span", {}, name), el("span", { id }, v == null ? "–" : String(v)));
  document.getElementById("margin").replaceChildren(
    stat(`Equity (${m.collateral})`, m.equity, "margin-equity"), stat("Maintenance", m.maintenance, "margin-maintenance"),
    stat("Margin ratio", m.marginRatio, "margin-ratio"), stat("Unrealized", m.unrealizedPnl), stat("Notional", m.notional),
    stat("Notional cap", m.notionalCap),
  );
  const open = d.positions.filter((p) => Number(p.size) !== 0);
  fillTable(document.getElementById("positions"), open.map((p) => [
    p.market, num(p.size, Number(p.size) < 0 ? "sell" : "buy"), num(p.entryPrice), num(p.mark), num(p.unrealizedPnl), num(p.realizedPnl), num(p.funding),
    `${p.leverage}x`, num(p.initialMargin), num(p.maintenanceMargin), num(p.liquidationPrice),
    el("td", {}, el("button", { type: "button", "aria-label": `Close the ${p.market} position`, onclick: () => closePosition(p.market) }, "Close")),
  ]), "No open positions");
  fillTable(document.getElementById("liquidations"), [...d.liquidations].reverse().map((l) => [
    String(l.seq), time(l.timeMs), l.what.replace(/_/g, " "), l.market || "", num(l.quantity), num(l.price), num(l.equity), num(l.maintenance),
  ]), "No liquidations");
  fillTable(document.getElementById("insurance"), d.insuranceFund.map((f) => [
    f.asset, num(f.balance), f.positions.map((p) => `${p.market} ${p.size} (cost ${p.cost})`).join(", ") || "none",
  ]), "The fund holds nothing yet");
}

async function closePosition(symbol) {
  const status = document.getElementById("positions-status");
  const r = await attempt(status, async () => (await gql(`mutation($m: String!) { closePosition(market: $m) { ${RECEIPT} } }`, { m: symbol })).closePosition);
  if (r) refreshAccount();
}

// --- the account ------------------------------------------------------------------

function setUpTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (tab.id === "tab-wallet") equityChart && equityChart.timeScale().fitContent();
  };
  for (const t of tabs) {
    t.addEventListener("click", () => select(t));
    t.addEventListener("keydown", (ev) => {
      const i = tabs.indexOf(t);
      const next = ev.key === "ArrowRight" ? tabs[(i + 1) % tabs.length] : ev.key === "ArrowLeft" ? tabs[(i + tabs.length - 1) % tabs.length] : null;
      if (next) {
        select(next);
        next.focus();
      }
    });
  }
  document.getElementById("value-in").addEventListener("change", () => refreshAccount());
  document.getElementById("cancel-all").addEventListener("click", async () => {
    const status = document.getElementById("open-status");
    const r = await attempt(status, async () => (await gql(`mutation { cancelAllOrders(market: ${lit(market)}) { ${RECEIPT} } }`)).cancelAllOrders);
    if (r) refreshAccount();
  });
  const withdraw = document.getElementById("withdraw-form");
  onSubmit(withdraw, async (data) => {
    const f = fields(withdraw, data);
    const d = await gql(`mutation($a: String!, $x: Decimal!) { requestWithdrawal(asset: $a, amount: $x) { ${RECEIPT} } }`, { a: f.asset, x: f.amount });
    refreshAccount();
    return d.requestWithdrawal;
  });
  const reportForm = document.getElementById("report-form");
  reportForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    showReport(reportForm.elements.kind.value, Number(reportForm.elements.id.value));
  });
}

function startAccount() {
  // Each change to the account reloads what the page shows of it (coalesced), so a
  // reconnect or a RESYNC never leaves it stale; `fromSeq` resumes the streams.
  const follow = (field, seqField) => {
    let last = 0;
    subscribe(`subscription($from: Int) { ${field}(fromSeq: $from) { ${seqField} } }`, () => ({ from: last ? last + 1 : null }), (x) => {
      last = Math.max(last, x[seqField]);
      refreshAccount();
    });
  };
  if (perps.size) subscribe("subscription { myPositions { market } }", {}, () => refreshAccount());
  follow("myOrders", "updatedSeq");
  follow("myWallet", "seq");
  follow("ledger", "seq");
}

/** Reloads the account's tables; calls while one runs fold into one more run. */
function refreshAccount() {
  if (me.account == null) return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = loadAccount()
    .catch(reportError)
    .finally(() => {
      refreshing = null;
      if (again) {
        again = false;
        setTimeout(refreshAccount, 100);
      }
    });
}

async function loadAccount() {
  const valueIn = document.getElementById("value-in").value || null;
  const d = await gql(
    `query($v: String) {
      open: orders(openOnly: true, first: 100) { nodes { ${ORDER_FIELDS} } }
      history: orders(first: 100, status: [FILLED, CANCELLED, EXPIRED]) { nodes { ${ORDER_FIELDS} } }
      myTrades(first: 100) { nodes { id timeMs market price quantity takerSide makerAccount takerAccount makerFee takerFee } }
      ledger(first: 100) { nodes { seq timeMs asset kind amount balance reference } }
      portfolio(valueIn: $v) { valueIn totalValue balances { asset available held total value } }
      ${valueIn ? "equityHistory(valueIn: $v) { timeMs value }" : ""}
      ${perps.size ? perpQuery(perps.get(market) || [...perps.values()][0]) : ""}
    }`,
    { v: valueIn },
  );
  if (perps.size) showPositions(d);
  // An amend form on an order that is no longer open has nothing left to amend.
  if (amending && !d.open.nodes.some((o) => o.id === amending.id)) amending = null;
  keepingFocus(amending && amending.form, () => fillTable(document.getElementById("open-orders"), d.open.nodes.map(openRow), "No open orders"));
  fillTable(document.getElementById("history"), d.history.nodes.map((o) => [
    String(o.id), time(o.updatedMs), o.market, side(o.side), kindName(o), num(o.price), num(o.quantity || o.quoteQuantity), num(o.filled), num(o.averagePrice), o.status.toLowerCase(), o.doneReason || "",
  ]), "No orders yet");
  fillTable(document.getElementById("fills"), d.myTrades.nodes.map((t) => {
    const maker = t.makerAccount === me.account;
    const mySide = maker ? (t.takerSide === "BUY" ? "SELL" : "BUY") : t.takerSide;
    return [String(t.id), time(t.timeMs), t.market, side(mySide), maker ? "maker" : "taker", num(t.price), num(t.quantity), num(maker ? t.makerFee : t.takerFee)];
  }), "No fills yet");
  fillTable(document.getElementById("ledger"), d.ledger.nodes.map((l) => [
    String(l.seq), time(l.timeMs), l.asset, l.kind.toLowerCase(), num(l.amount, Number(l.amount) < 0 ? "sell" : "buy"), num(l.balance), l.reference == null ? "" : String(l.reference),
  ]), "No entries yet");
  fillTable(document.getElementById("wallet"), d.portfolio.balances.map((b) => [b.asset, num(b.available), num(b.held), num(b.total), num(b.value)]), "Nothing held");
  document.getElementById("wallet-total").textContent = d.portfolio.totalValue == null ? "–" : `${d.portfolio.totalValue} ${d.portfolio.valueIn}`;
  if (d.equityHistory) {
    const points = d.equityHistory.filter((p) => p.value != null).map((p) => ({ time: Math.floor(p.timeMs / 1000), value: Number(p.value) }));
    equitySeries.setData(points);
  }
}

function side(s) {
  return el("span", { class: s === "BUY" ? "buy" : "sell" }, s.toLowerCase());
}

function kindName(o) {
  const k = o.kind.toLowerCase().replace("_", "-");
  const extras = [];
  if (o.timeInForce && o.timeInForce !== "GTC") extras.push(o.timeInForce);
  if (o.postOnly) extras.push("post-only");
  if (Number(o.hidden) > 0) extras.push("iceberg");
  if (o.parent != null) extras.push(`of #${o.parent}`);
  return extras.length ? `${k} (${extras.join(", ")})` : k;
}

function openRow(o) {
  const status = document.getElementById("open-status");
  const cancel = el("button", { type: "button", class: "small", "aria-label": `Cancel order ${o.id}`, onclick: async () => {
    const r = await attempt(status, async () => (await gql(`mutation($id: Int!) { cancelOrder(orderId: $id) { ${RECEIPT} } }`, { id: o.id })).cancelOrder, () => `Order ${o.id}: cancelled`);
    if (r) refreshAccount();
  } }, "Cancel");
  const amend = el("button", { type: "button", class: "small", "aria-label": `Amend order ${o.id}`, onclick: () => {
    const price = el("input", { name: "price", value: o.restingPrice || o.price || "", "aria-label": `New price of order ${o.id}`, size: 10, inputmode: "decimal" });
    const open = o.quantity == null ? "" : `now ${o.quantity} less ${o.filled} filled`;
    const qty = el("input", { name: "quantity", placeholder: open, "aria-label": `New open quantity of order ${o.id} (empty: unchanged)`, size: 10, inputmode: "decimal" });
    const form = el("form", { class: "inline" }, price, qty, el("button", { type: "submit", class: "small" }, "Save"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const send = async () => (await gql(`mutation($id: Int!, $p: Decimal, $q: Decimal) { amendOrder(orderId: $id, price: $p, quantity: $q) { ${RECEIPT} } }`, {
        id: o.id, p: price.value || null, q: qty.value || null,
      })).amendOrder;
      if (await attempt(status, send, () => `Order ${o.id}: amended`)) {
        amending = null;
        refreshAccount();
      }
    });
    amending = { id: o.id, form };
    actions.replaceChildren(form);
    price.focus();
  } }, "Amend");
  const editing = amending && amending.id === o.id ? amending.form : null;
  const actions = editing ? el("td", {}, editing) : el("td", {}, cancel, " ", o.kind === "LIMIT" ? amend : null);
  // Where it rests now (an amend moves it), else its limit or trigger.
  return [String(o.id), o.market, side(o.side), kindName(o), num(o.restingPrice || o.price || o.triggerPrice), num(o.quantity || o.quoteQuantity), num(o.filled), o.status.toLowerCase(), actions];
}

async function showReport(kind, id) {
  const box = document.getElementById("report");
  const tab = document.getElementById("tab-reports");
  try {
    if (kind === "sliced") {
      const d = await gql(`query($id: Int!) { slicedOrder(parent: $id) { parent market filled filledQuote fees openChildren children { id price quantity filled status } } }`, { id });
      const r = d.slicedOrder;
      if (!r) return showError(box, { message: `no sliced order ${id}` });
      box.replaceChildren(
        el("p", {}, `Sliced #${r.parent} on ${r.market}: filled ${r.filled} for ${r.filledQuote} (fees ${r.fees}); ${r.openChildren} child order(s) open.`),
        table(["Child", "Price", "Quantity", "Filled", "Status"], r.children.map((c) => [String(c.id), num(c.price), num(c.quantity), num(c.filled), c.status.toLowerCase()])),
      );
    } else {
      const d = await gql(`query($id: Int!) { bracketOrder(entry: $id) { closedQuantity realizedPnl exitRejected entry { id status price filled } exit { id status price filled } } }`, { id });
      const r = d.bracketOrder;
      if (!r) return showError(box, { message: `no bracket order ${id}` });
      const leg = (name, o) => (o ? [name, String(o.id), num(o.price), num(o.filled), o.status.toLowerCase()] : [name, "–", "–", "–", "not placed yet"]);
      box.replaceChildren(
        el("p", {}, `Bracket #${id}: closed ${r.closedQuantity}, realized P&L ${r.realizedPnl} (after fees)${r.exitRejected ? `; exit rejected: ${r.exitRejected}` : ""}.`),
        table(["Leg", "Order", "Price", "Filled", "Status"], [leg("entry", r.entry), leg("exit", r.exit)]),
      );
    }
    document.getElementById("report-form").elements.id.value = id;
    document.getElementById("report-form").elements.kind.value = kind;
    if (tab.getAttribute("aria-selected") !== "true") tab.click();
  } catch (e) {
    showError(box, e);
  }
}

function table(heads, rows) {
  const body = el("tbody");
  const t = el("table", {}, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))), body);
  fillTable(body, rows);
  return t;
}
