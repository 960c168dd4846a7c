// Lighthouse (npm `lighthouse`, pinned in package.json) on a page that a browser test has
// open in Chromium: the test starts Chromium with --remote-debugging-port, drives the page
// with Playwright, then runs this script, which connects to the same browser with
// puppeteer-core and audits the page whose address starts with --url.
//
//   node tests/browser/lighthouse_page.mjs --port 9333 --url http://127.0.0.1:8080/ \
//        --mode navigation|snapshot
//
// navigation: Lighthouse loads the page afresh (the state before joining) and audits it.
// snapshot:   Lighthouse audits the page as it is now (after joining, in a room), without
//             loading it again (Lighthouse's snapshot mode).
// Prints one JSON line: {"scores": {category: 0..100}, "failing": {category: [audit ids]}}.
// No throttling and no screen emulation: the page is audited at the viewport the test set.

import lighthouse, { snapshot } from "lighthouse";
import puppeteer from "puppeteer-core";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    url: { type: "string" },
    mode: { type: "string", default: "navigation" },
  },
});
if (!values.port || !values.url || !["navigation", "snapshot"].includes(values.mode)) {
  console.error("usage: lighthouse_page.mjs --port N --url URL --mode navigation|snapshot");
  process.exit(2);
}

const CATEGORIES = ["accessibility", "best-practices"];
const config = {
  extends: "lighthouse:default",
  settings: {
    onlyCategories: CATEGORIES,
    formFactor: "desktop",
    screenEmulation: { disabled: true },
    throttlingMethod: "provided",
    // The machine may have no network: nothing is fetched from outside the page's server.
    skipAboutBlank: false,
    disableFullPageScreenshot: true,
  },
};

const browser = await puppeteer.connect({
  browserURL: `http://127.0.0.1:${values.port}`,
  defaultViewport: null,
});
try {
  const pages = await browser.pages();
  const page = pages.find((p) => p.url().startsWith(values.url));
  if (!page) {
    console.error(`no open page at ${values.url}: ${pages.map((p) => p.url()).join(", ")}`);
    process.exit(3);
  }
  const result =
    values.mode === "snapshot"
      ? await snapshot(page, { config })
      : await lighthouse(values.url, {}, config, page);
  const lhr = result.lhr;
  const scores = {};
  const failing = {};
  for (const id of CATEGORIES) {
    const category = lhr.categories[id];
    scores[id] = category.score === null ? null : Math.round(category.score * 100);
    failing[id] = category.auditRefs
      .filter((ref) => ref.weight > 0)
      .map((ref) => lhr.audits[ref.id])
      .filter((audit) => audit.score !== null && audit.score < 1)
      .map((audit) => audit.id);
  }
  const errors = lhr.runtimeError ? [lhr.runtimeError.message] : [];
  console.log(JSON.stringify({ scores, failing, errors, version: lhr.lighthouseVersion }));
} finally {
  await browser.disconnect();
}
