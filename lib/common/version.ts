/** The package version, as in `deno.json` (a unit test keeps them equal). */
export const VERSION = "0.1.0";
