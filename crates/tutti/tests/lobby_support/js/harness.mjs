// What the Chromium scripts share: Debian's chromium (fake camera and microphone, driven by playwright-core),
// the pages a script opened, the page errors and foreign requests they collect, and `fail`, which saves a
// screenshot of every page, prints each page's state (status line, body data and the `shown` elements) and
// exits 1.
import { chromium } from 'playwright-core';

/** `prefix` names the screenshots; `shown` maps a label to a selector whose text goes into a failure's report. */
export async function harness(outDir, prefix, shown = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  });
  const pages = [];
  const step = (what) => console.log('step: ' + what);
  async function fail(what) {
    console.error('FAILED: ' + what);
    for (const p of pages) {
      await p.page.screenshot({ path: `${outDir}/${prefix}-failure-${p.name}.png` }).catch(() => {});
      const text = (selector) => p.page.textContent(selector).catch(() => '?');
      let line = `${p.name}: status=${await text('#status')}`;
      for (const [label, selector] of Object.entries(shown)) line += ` ${label}=${await text(selector)}`;
      const data = await p.page.evaluate(() => ({ ...document.body.dataset })).catch(() => ({}));
      console.error(`${line} data=${JSON.stringify(data)}`);
    }
    await browser.close();
    process.exit(1);
  }
  return { browser, pages, failures: [], foreign: [], step, fail };
}
