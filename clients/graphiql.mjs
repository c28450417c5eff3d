// GraphiQL in a real browser (Debian's chromium): the page loads its assets from a mirror this
// script serves from node_modules, renders, fetches the schema (introspection) and shows it in
// the docs explorer, and runs a query with the key from the headers editor. Then the same page
// with a mirror that is down must say so in plain words, naming the setting.
//
// Usage: node graphiql.mjs <server url> <api key> <mirror port> <port of a second server whose
// assets url points nowhere>
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const [server, key, mirrorPort, brokenServer] = process.argv.slice(2);

// unpkg's layout: /<package>@<version>/<file> from node_modules/<package>/<file>.
const mirror = createServer(async (request, response) => {
  const match = /^\/((?:@[^/]+\/)?[^/@]+)@[^/]+\/(.+)$/.exec(new URL(request.url, "http://x").pathname);
  try {
    if (!match) throw new Error("not a package path");
    const body = await readFile(new URL(`./node_modules/${match[1]}/${match[2]}`, import.meta.url));
    const type = match[2].endsWith(".css") ? "text/css" : "application/javascript";
    response.writeHead(200, { "content-type": type }).end(body);
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((resolve) => mirror.listen(Number(mirrorPort), "127.0.0.1", resolve));

// Debian's chromium now and then dies with SIGSEGV while starting on a fresh CI machine, before
// it has loaded a page; that says nothing about GraphiQL, so the launch (only) is tried again.
async function launch(attempts) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await chromium.launch({
        executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
        args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      });
    } catch (error) {
      if (attempt >= attempts) throw error;
      console.error(`graphiql: chromium did not start (attempt ${attempt} of ${attempts}): ${error.message.split("\n")[0]}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}
const browser = await launch(4);
try {
  const page = await browser.newPage();
  page.on("pageerror", (error) => console.error("page error:", error.message));
  await page.goto(`${server}/graphql`);
  await page.waitForSelector(".graphiql-container", { timeout: 30000 });

  // The docs explorer lists the root types once introspection has answered.
  await page.click('button[aria-label="Show Documentation Explorer"]');
  await page.getByText("QueryRoot").first().waitFor({ timeout: 30000 });

  // The headers editor starts with the Authorization header to complete.
  const headers = await page.evaluate(() => localStorage.getItem("graphiql:headers"));
  if (headers !== null && !headers.includes("Bearer")) throw new Error(`headers: ${headers}`);

  // Run a query with the key: fill the headers, then the query, then run.
  await page.evaluate((key) => {
    const editors = document.querySelectorAll(".CodeMirror");
    const query = editors[0].CodeMirror;
    query.setValue("{ viewer { role } }");
    const header = [...editors].find((e) => e.closest(".graphiql-editor-tool") && e.CodeMirror.getValue().includes("Bearer"));
    header.CodeMirror.setValue(JSON.stringify({ Authorization: `Bearer ${key}` }));
  }, key);
  await page.click(".graphiql-execute-button");
  await page.getByText('"ADMIN"').first().waitFor({ timeout: 30000 });
  console.log("graphiql: rendered, docs explorer shows QueryRoot, a query ran with the key");

  // Assets that cannot load: plain words and the setting, not "Loading…" forever.
  const broken = await browser.newPage();
  await broken.goto(`${brokenServer}/graphql`);
  const alert = broken.getByRole("alert");
  await alert.waitFor({ timeout: 30000 });
  const text = await alert.innerText();
  if (!text.includes("--graphiql-assets-url")) throw new Error(`the message lacks the setting: ${text}`);
  console.log("graphiql: a mirror that is down is reported with the setting to change");
} finally {
  await browser.close();
  mirror.close();
}
