// What the browser tests share: polling until something holds, and GraphQL
// requests to the server under test.

import assert from "node:assert/strict";

/** Polls `f` until it returns a truthy value; fails with `what` after `ms`. */
export async function until(what, f, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A GraphQL request to `url` with `token`: the whole answer, errors included. */
export async function post(url, token, query, variables = {}) {
  const r = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return r.json();
}

/** A GraphQL request that must succeed: its data. */
export async function data(url, token, query, variables = {}) {
  const d = await post(url, token, query, variables);
  assert.ok(!d.errors, JSON.stringify(d.errors));
  return d.data;
}
