/**
 * Environment variables on Node, Deno and Bun, for TSMALLOC_BACKEND and the
 * TSMALLOC_<OPTION> variables. Never throws and never prompts: on Deno the permission is
 * queried first, and a variable that may not be read counts as unset.
 *
 * @module
 */

interface EnvGlobals {
  Deno?: {
    env: { get(k: string): string | undefined };
    permissions?: { querySync?(d: { name: "env"; variable: string }): { state: string } };
  };
  process?: { env?: Record<string, string | undefined> };
}

/** The variable's value, or undefined when unset or not readable (Deno without --allow-env). */
export function readEnv(name: string, g: EnvGlobals = globalThis as EnvGlobals): string | undefined {
  try {
    if (g.Deno !== undefined) {
      const state = g.Deno.permissions?.querySync?.({ name: "env", variable: name }).state;
      if (state !== undefined && state !== "granted") return undefined;
      return g.Deno.env.get(name);
    }
    return g.process?.env?.[name];
  } catch {
    return undefined; // no permission
  }
}
