/**
 * The page `serve` answers at `/`, in a real browser (Debian's Chromium
 * driven by puppeteer-core): it renders the topology, and after a kill -9 of
 * the primary it shows the new primary and the failover on its timeline
 * without a reload, with no console error. With `MN_UPDATE_SCREENSHOT=1` it
 * refreshes the README's screenshot (`docs/images/dashboard.png`).
 *
 * Run with `deno task test:browser` (the `browser` permission set).
 */

import puppeteer from "puppeteer-core";
import { assert, assertEquals } from "../_harness/assert.ts";
import { startCluster, waitFor } from "../_harness/mod.ts";
import { MN_CLI, spawnCollecting } from "../_harness/process.ts";
import { freePort } from "../../lib/process/redis_process.ts";
import { formatEndpoint } from "../../lib/protocol/endpoint.ts";

const CHROMIUM = "/usr/bin/chromium";

Deno.test({
  name:
    "the dashboard renders the topology and shows a kill -9 failover on its timeline without a reload",
  // puppeteer keeps timers of its own between launches.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using cluster = await startCluster({ replicas: 2, sentinels: 3 });
    const sentinels = cluster.sentinelEndpoints.map(formatEndpoint).join(",");
    const port = freePort();
    const primary = cluster.nodes[0]!;
    // The box watched is a replica, so its page stays up through the primary's death.
    const box = cluster.nodes[1]!;
    const server = spawnCollecting(MN_CLI[0]!, [
      ...MN_CLI.slice(1),
      "serve",
      "--listen",
      `127.0.0.1:${port}`,
      "--self-host",
      "127.0.0.1",
      "--redis-port",
      String(box.endpoint.port),
      "--sentinels",
      sentinels,
      "--master-name",
      cluster.masterName,
    ]);
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--headless=new"],
    });
    try {
      await waitFor(
        () =>
          server.stdout().includes("serve_listening")
            ? { done: true, value: undefined }
            : { done: false, observed: server.stderr() },
        { what: "serve to listen", timeoutMs: 20_000, intervalMs: 50 },
      );
      const page = await browser.newPage();
      await page.setViewport({ width: 1000, height: 900 });
      const consoleErrors: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error") consoleErrors.push(message.text());
      });
      page.on("pageerror", (error) => consoleErrors.push(String(error)));
      await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: "load" });
      const text = (selector: string): Promise<string> =>
        page.$eval(selector, (e) => e.textContent ?? "");
      const shown = (selector: string, want: string, what: string): Promise<void> =>
        waitFor(async () => {
          const now = await text(selector);
          return now === want
            ? { done: true, value: undefined }
            : { done: false, observed: `${selector} shows ${JSON.stringify(now)}` };
        }, { what, timeoutMs: 15_000, intervalMs: 100 });
      await shown("#primary", formatEndpoint(primary.endpoint), "the page to show the primary");
      const sentinelRows = await page.$$eval("#sentinels tr", (rows) => rows.length);
      assertEquals(sentinelRows, 3);
      const replicaRows = await page.$$eval("#replicas tr", (rows) => rows.length);
      assertEquals(replicaRows, 2);
      await page.screenshot({ path: ".tmp/dashboard-before.png" });

      primary.kill("SIGKILL");
      const agreedAt = performance.now();
      const next = await cluster.waitForAgreement({
        excluding: primary.endpoint,
        timeoutMs: 30_000,
      });
      await shown("#primary", formatEndpoint(next), "the page to show the new primary");
      await waitFor(async () => {
        const marks = await page.$$eval(
          '#timeline circle[data-channel="+switch-master"]',
          (circles) => circles.length,
        );
        return marks > 0
          ? { done: true, value: undefined }
          : { done: false, observed: "no +switch-master mark on the timeline" };
      }, { what: "the failover on the timeline", timeoutMs: 10_000, intervalMs: 100 });
      await waitFor(async () => {
        const phases = await text("#phases");
        return phases.includes("promoted (+switch-master)")
          ? { done: true, value: undefined }
          : { done: false, observed: phases };
      }, { what: "the failover's phases on the page", timeoutMs: 10_000, intervalMs: 100 });
      const seconds = (performance.now() - agreedAt) / 1000;
      assert(seconds < 10, `the page caught up ${seconds.toFixed(1)} s after the sentinels agreed`);
      // MN_UPDATE_SCREENSHOT=1 refreshes the README's picture; otherwise it stays in .tmp.
      await page.screenshot({
        path: Deno.env.get("MN_UPDATE_SCREENSHOT") === "1"
          ? "docs/images/dashboard.png"
          : ".tmp/dashboard-after.png",
      });
      assertEquals(consoleErrors, []);
    } finally {
      await browser.close();
      server.kill("SIGTERM");
      await server.done;
    }
  },
});
