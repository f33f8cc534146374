// GraphiQL from the bundled copy (no CDN), signed in as the page's session: the
// token goes in the fetcher's headers and the websocket's connection_init.

import { start, token } from "/assets/js/common.js";

await start("GraphiQL");
const auth = token() ? { authorization: `Bearer ${token()}` } : {};
const wsClient = window.graphqlWs.createClient({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql/ws`,
  connectionParams: auth,
  lazy: true,
});
const fetcher = window.GraphiQL.createFetcher({ url: "/graphql", headers: auth, wsClient });
const theme = document.documentElement.dataset.theme;
localStorage.setItem("graphiql:theme", theme);
const root = window.ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(
  window.React.createElement(window.GraphiQL, {
    fetcher,
    defaultQuery: "# Tape's GraphQL API. Try:\n{\n  markets { symbol lastPrice status }\n  me { role account }\n}\n",
  }),
);
