/**
 * Every fault the suite injects, by name: the process and network faults
 * (`nemeses_process.ts`) and those of the environment production runs in
 * (`nemeses_environment.ts`: slow and lossy links, full disks and memory,
 * skewed clocks, lost boxes and sentinels, power loss).
 */

import type { Nemesis } from "./fault.ts";
import { PROCESS_NEMESES } from "./nemeses_process.ts";
import { ENVIRONMENT_NEMESES } from "./nemeses_environment.ts";

export type { Nemesis } from "./fault.ts";

/** Every nemesis, by name. */
export const NEMESES: readonly Nemesis[] = [...PROCESS_NEMESES, ...ENVIRONMENT_NEMESES];

/** Looks up nemeses by a `--nemesis` value: names, comma-separated, or `all`. */
export function selectNemeses(value: string): Nemesis[] | string {
  if (value === "all") return [...NEMESES];
  const picked: Nemesis[] = [];
  for (const name of value.split(",").map((n) => n.trim())) {
    const found = NEMESES.find((n) => n.name === name);
    if (found === undefined) {
      return `unknown nemesis "${name}"; expected one of ${
        NEMESES.map((n) => n.name).join(", ")
      }, or all`;
    }
    picked.push(found);
  }
  return picked;
}
