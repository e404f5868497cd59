/**
 * The README's `deno install` line for the `./cli` export works as written
 * (with the local entry point standing in for the JSR one) and grants what
 * the `cli` permission set of deno.json grants.
 */

import { assert, assertEquals } from "../_harness/assert.ts";
import { tempDir } from "../_harness/mod.ts";
import { runProcess } from "../_harness/process.ts";
import { VERSION } from "../../lib/common/version.ts";
import denoJson from "../../deno.json" with { type: "json" };
import readme from "../../README.md" with { type: "text" };

/** The README's `deno install … jsr:@mirror-neuron/redis-ha/cli` command as argv. */
function readmeInstallArgs(): string[] {
  const block = /```bash\n(deno install [^`]*?jsr:@mirror-neuron\/redis-ha\/cli)\n```/.exec(readme);
  assert(block !== null, "README has the deno install block");
  const line = block[1]!.replaceAll("\\\n", " ");
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

Deno.test("README's deno install of the ./cli export installs a working mn-redis-ha with the cli permissions", async () => {
  assertEquals(denoJson.exports["./cli"], "./main.ts");
  const args = readmeInstallArgs();
  const flag = (name: string): string[] =>
    (args.find((a) => a.startsWith(`--allow-${name}=`)) ?? "").split("=")[1]!.split(",");
  const cli = denoJson.permissions.cli;
  assertEquals(flag("run"), cli.run);
  assertEquals(flag("env"), cli.env);
  assertEquals(flag("read"), cli.read.filter((p) => p !== "./.tmp"));
  assertEquals(flag("write"), cli.write.filter((p) => p !== "./.tmp"));
  assert(args.includes("--allow-net"));

  await using root = await tempDir("install-");
  const local = args.map((a) =>
    a === "jsr:@mirror-neuron/redis-ha/cli" ? `${Deno.cwd()}/main.ts` : a
  );
  const installed = await runProcess("deno", [
    "install",
    "--root",
    root.path,
    ...local.slice(2),
  ]);
  assertEquals(installed.code, 0, installed.stderr);
  const version = await runProcess("bash", [`${root.path}/bin/mn-redis-ha`, "--version"]);
  assertEquals([version.code, version.stdout.trim()], [0, `mn-redis-ha ${VERSION}`]);
});
