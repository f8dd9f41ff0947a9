// A standard WoT client (Eclipse Thingweb node-wot) consumes a Thing from the tinytrain
// gateway and runs a script of interactions on it; the gateway tests drive it.
//
//   node consume.js TD_URL TOKEN SCRIPT.json      (TOKEN "-": no credentials)
//
// SCRIPT is a list of steps: {"op": "read"|"write"|"invoke"|"subscribe"|"events"|"unsubscribe",
// "name": ..., "value"/"input": ..., "wait": ms}. With "securityOverride": "nosec" (first
// step, optional) the client ignores the TD's security, as a client without credentials
// would. Prints one JSON line: {"td": {...}, "results": [{"ok": true, "value": ...} or
// {"ok": false, "error": "..."}]}.
"use strict";
const fs = require("fs");
const { Servient } = require("@node-wot/core");
const { HttpClientFactory } = require("@node-wot/binding-http");

async function value(output) {
  if (output === undefined || output === null) return null;
  try {
    return await output.value();
  } catch (e) {
    if (String(e).includes("No data")) return null;
    throw e;
  }
}

async function main() {
  const [url, token, scriptFile] = process.argv.slice(2);
  const script = JSON.parse(fs.readFileSync(scriptFile, "utf8"));
  const servient = new Servient();
  servient.addClientFactory(new HttpClientFactory(null));
  const wot = await servient.start();
  const td = await wot.requestThingDescription(url);
  if (script.length && script[0].securityOverride === "nosec") {
    td.securityDefinitions = { nosec_sc: { scheme: "nosec" } };
    td.security = ["nosec_sc"];
    script.shift();
  }
  if (token !== "-") servient.addCredentials({ [td.id]: { token } });
  const thing = await wot.consume(td);
  const events = {};
  const subscriptions = {};
  const results = [];
  for (const step of script) {
    try {
      let v = null;
      if (step.op === "read") v = await value(await thing.readProperty(step.name));
      else if (step.op === "write") await thing.writeProperty(step.name, step.value);
      else if (step.op === "invoke") v = await value(await thing.invokeAction(step.name, step.input));
      else if (step.op === "subscribe") {
        events[step.name] = [];
        subscriptions[step.name] = await thing.subscribeEvent(step.name, async (data) => {
          events[step.name].push(await value(data));
        });
      } else if (step.op === "events") {
        const deadline = Date.now() + (step.wait || 0);
        while (Date.now() < deadline && events[step.name].length < (step.atLeast || 1)) {
          await new Promise((r) => setTimeout(r, 50));
        }
        v = events[step.name];
      } else if (step.op === "unsubscribe") await subscriptions[step.name].stop();
      else throw new Error(`unknown op ${step.op}`);
      results.push({ ok: true, value: v });
    } catch (e) {
      results.push({ ok: false, error: String(e && e.message ? e.message : e) });
    }
  }
  console.log(JSON.stringify({ td, results }));
  await servient.shutdown();
  process.exit(0);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
