// The browser's verifier of a proof of liabilities (algorithm 1, docs/auditors.md):
// SHA-256 through WebCrypto and BigInt sums. It recomputes the path from the
// account's leaf to the published root and checks the sums along the way add up
// to the published totals; any failure throws an Error that says why.

const U128_MAX = (1n << 128n) - 1n;
const U64_MAX = (1n << 64n) - 1n;
const text = new TextEncoder();

function unsigned(v, bound, what) {
  const s = typeof v === "number" ? String(v) : v;
  if (typeof s !== "string" || !/^[0-9]+$/.test(s)) throw new Error(`${what} ${JSON.stringify(v)} is not an unsigned integer`);
  const n = BigInt(s);
  if (n > bound) throw new Error(`${what} ${s} is too large`);
  return n;
}

function hex32(s, what) {
  if (typeof s !== "string" || !/^[0-9a-fA-F]{64}$/.test(s)) throw new Error(`${what} is not 32 bytes of hex`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function be(n, bytes) {
  const out = new Uint8Array(bytes);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function join(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const sumsBytes = (sums) => join(...sums.map((s) => be(s, 16)));
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Checks `proof` (myLiabilityProof) against `round` (from liabilityRounds);
 * returns the leaf's balances as BigInts, or throws why it does not verify. */
export async function verifyLiabilityProof(proof, round) {
  if (!globalThis.crypto?.subtle) throw new Error("this page needs WebCrypto: open it over HTTPS (or on localhost)");
  if (round.algorithm !== 1) throw new Error(`algorithm ${round.algorithm} is not 1`);
  if (Number(proof.round) !== Number(round.round)) throw new Error("the proof and the record are of different rounds");
  const height = Number(round.height);
  if (!(height >= 1 && height <= 32) || proof.path.length !== height) {
    throw new Error(`the path has ${proof.path.length} levels; the tree has ${height}`);
  }
  const totals = round.totals.map((t) => unsigned(t.users ?? t, U128_MAX, "a total"));
  const balances = proof.balances.map((b) => unsigned(b, U128_MAX, "a balance"));
  if (balances.length !== totals.length) throw new Error("the leaf does not carry one sum per asset");
  const index = unsigned(proof.index, (1n << BigInt(height)) - 1n, "the leaf index");
  const account = unsigned(proof.account, U64_MAX, "the account");
  const salt = hex32(proof.salt, "the salt");

  const id = await sha256(join(text.encode("tape-pol/1/id"), salt, be(account, 8)));
  let node = await sha256(join(new Uint8Array([0]), id, sumsBytes(balances)));
  let sums = balances;
  for (let level = 0; level < height; level++) {
    const sib = proof.path[level];
    const other = hex32(sib.hash, `the sibling hash at level ${level}`);
    const otherSums = sib.sums.map((s) => unsigned(s, U128_MAX, `a sibling sum at level ${level}`));
    if (otherSums.length !== totals.length) throw new Error(`the sibling at level ${level} does not carry one sum per asset`);
    const right = (index >> BigInt(level)) & 1n;
    const pair = right === 0n
      ? join(node, sumsBytes(sums), other, sumsBytes(otherSums))
      : join(other, sumsBytes(otherSums), node, sumsBytes(sums));
    node = await sha256(join(new Uint8Array([1]), pair));
    sums = sums.map((s, i) => s + otherSums[i]);
    if (sums.some((s) => s > U128_MAX)) throw new Error(`a sum overflows 128 bits at level ${level}`);
  }
  if (!same(node, hex32(round.root, "the root"))) throw new Error("the path does not lead to the published root");
  if (sums.some((s, i) => s !== totals[i])) throw new Error("the path's sums at the root are not the published totals");
  return balances;
}
