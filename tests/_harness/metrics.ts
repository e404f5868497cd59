/** Reading Prometheus text in tests, and checking it with the real `promtool`. */

import { tempDir } from "./mod.ts";
import { runProcess } from "./process.ts";

/** A sample's value in Prometheus text, or 0 when the series is absent. */
export function sample(text: string, series: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

/** `promtool check metrics` on `text`: its exit code and complaints. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  await using dir = await tempDir("metrics-");
  const file = `${dir.path}/metrics.prom`;
  await Deno.writeTextFile(file, text);
  const r = await runProcess("bash", ["-c", `promtool check metrics < '${file}'`]);
  return { code: r.code, output: r.stdout + r.stderr };
}
